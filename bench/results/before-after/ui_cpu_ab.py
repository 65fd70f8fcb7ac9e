"""Interleaved old/new first loads of a UI page (s12-ui): render ms, the renderer's main-thread CPU (CDP ThreadTime) and process CPU
(ProcessTime) at the render, the server's CPU: CPU figures stretch less than walls on a loaded machine.

    .venv/bin/python bench/results/before-after/ui_cpu_ab.py SERVERS.json RUNS [overview|graph] [OUT.json]

SERVERS.json: what `ui_split.py --serve-only` writes (the old and the new server, loaded alike); a fresh
Chromium context per load, old and new taking turns (round 0 warms both and is not kept).
"""

import json
import os
import statistics
import sys

from margay.rig.chromium import chromium_browser

servers = json.load(open(sys.argv[1]))
runs = int(sys.argv[2])
page_name = sys.argv[3] if len(sys.argv) > 3 else "overview"


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


init = (
    "localStorage.setItem('margay.range', " + json.dumps(json.dumps({"from": "now-24h", "to": "now"})) + ");"
)
rows = {"old": [], "new": []}
with chromium_browser() as b:
    for r in range(runs + 1):
        for lab in ("old", "new") if r % 2 else ("new", "old"):
            s = servers[lab]
            ctx = b.new_context(viewport={"width": 1440, "height": 900})
            page = ctx.new_page()
            page.add_init_script(init)
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            c0 = cpu(s["pid"])
            page.goto(s["url"] + "/ui/#/" + page_name, wait_until="commit")
            page.wait_for_function(
                f"() => window.__margayRendered && window.__margayRendered.{page_name}", timeout=60000
            )
            sc = cpu(s["pid"]) - c0
            m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            ms = page.evaluate(f"window.__margayRendered.{page_name}")
            if r:
                rows[lab].append(
                    (
                        ms,
                        m.get("ThreadTime"),
                        m.get("ProcessTime"),
                        m["ScriptDuration"],
                        m["LayoutDuration"],
                        sc,
                    )
                )
            ctx.close()
names = [
    "render ms",
    "renderer thread CPU s",
    "renderer process CPU s",
    "script s",
    "layout s",
    "server CPU s",
]
for i, n in enumerate(names):
    o = statistics.median(x[i] for x in rows["old"])
    nw = statistics.median(x[i] for x in rows["new"])
    print(f"{n:24} old {o:8.3f}  new {nw:8.3f}  {(nw - o) / o * 100:+.0f} %")
json.dump(rows, open(sys.argv[4] if len(sys.argv) > 4 else "ui-cpu-ab.json", "w"))
