"""The UI's first render split into its parts, two commits side by side (issue 16's last open figure).

    .venv/bin/python bench/results/before-after/ui_split.py OUT.json OLD_CHECKOUT NEW_CHECKOUT [--runs 6]
        [--work /tmp/ui-split]
    .venv/bin/python bench/results/before-after/ui_split.py --table OUT.json

Each checkout's own server (its `src` first on PYTHONPATH, same interpreter) loads the `scale` scenario's
data (300 k level-0 flows ending now, 16 batches at a time, then the compactor settles); then one Chromium
opens each page (`#/overview`, `#/graph`, the last 24 h as `margay bench` asks) on the old and the new server
in turn, `--runs` times, a fresh context each. Per run it keeps what `web/bench.py` measures (ms from navigation
start until `window.__margayRendered[page]`) and what that time is made of:

- Resource Timing of every script, style and API call: when it was asked for (`startTime`), when its request
  left (`requestStart`: the wait before is Chromium's queue, six connections per host), the first byte
  (`responseStart`: the server's time for an API call on loopback) and the last (`responseEnd`);
- the server's CPU seconds over the run (/proc/PID/stat), and the server's CPU per API call is that over
  the calls;
- the renderer's main-thread work from CDP `Performance.getMetrics` at the render (ScriptDuration,
  LayoutDuration, RecalcStyleDuration, TaskDuration: seconds since the page was opened), and the long tasks
  (> 50 ms) the page had until then.

`--table` prints, per page and code, the medians of the phases: shell (document's responseEnd), scripts loaded
(last script's responseEnd), first API call asked for, last API response, render, queue and server time summed
over the API calls, the renderer's script/layout/style/task seconds and the server's CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PAGES = {"overview": "#/overview", "graph": "#/graph"}

SERVE = r"""
import os, sys, json
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from margay.bench.data import flow_batches, topology
from margay.bench.targets import MargayTarget
work = Path(sys.argv[1])
now = datetime.now(UTC)
end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
t = MargayTarget(work).start()
try:
    gen = flow_batches(topology(), 300_000, end=end)
    n = 0
    while part := list(islice(gen, 16)):
        n += t.ingest(part, 2)[0]
    t.settle()
    print(json.dumps({"url": t.url, "pid": t.pid, "records": n}), flush=True)
    sys.stdin.read()
finally:
    t.stop()
"""

LONGTASKS = """
window.__longtasks = [];
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longtasks.push([e.startTime, e.duration]); })
    .observe({ type: "longtask", buffered: true });
} catch (e) { /* no long-task timing */ }
"""

COLLECT = """(page) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').map((r) => ({
    name: r.name.replace(location.origin, ''), type: r.initiatorType, start: r.startTime,
    req: r.requestStart, first: r.responseStart, end: r.responseEnd, size: r.encodedBodySize }));
  return { render: window.__margayRendered[page], shell: nav.responseEnd, dcl: nav.domContentLoadedEventEnd,
           resources: res, longtasks: window.__longtasks || [] };
}"""


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(checkout: Path, work: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str((checkout / "src").resolve()))
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(work)], cwd=checkout, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the server of {checkout} did not start (see {work}/server.log)")
    return proc, json.loads(line)


def _one(browser: Any, url: str, pid: int, page_name: str) -> dict[str, Any]:
    init = "localStorage.setItem('margay.range', " + json.dumps(json.dumps({"from": "now-24h", "to": "now"})) + ");"
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(init + LONGTASKS)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        cpu0 = _cpu(pid)
        page.goto(url.rstrip("/") + "/ui/" + PAGES[page_name], wait_until="commit")
        page.wait_for_function(f"() => window.__margayRendered && window.__margayRendered[{json.dumps(page_name)}]",
                               timeout=60_000)
        cpu = _cpu(pid) - cpu0
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        got: dict[str, Any] = page.evaluate(COLLECT, page_name)
        errors = page.evaluate("[...document.querySelectorAll('.error')].map((e) => e.textContent)")
        if errors:
            raise RuntimeError(f"{page_name}: {errors[:3]}")
        got["server_cpu_s"] = cpu
        got["cdp"] = {k: metrics.get(k) for k in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration",
                                                  "TaskDuration", "LayoutCount", "RecalcStyleCount")}
        return got
    finally:
        context.close()


def serve(old: Path, new: Path, work: Path) -> tuple[list[subprocess.Popen[str]], dict[str, Any]]:
    procs = []
    servers = {}
    for label, checkout in (("old", old), ("new", new)):
        proc, info = _serve(checkout, work / label)
        procs.append(proc)
        info["commit"] = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
        servers[label] = info
        print(f"{label}: {info}", flush=True)
    return procs, servers


def run(out: Path, old: Path, new: Path, runs: int, work: Path, servers_file: Path | None) -> None:
    procs: list[subprocess.Popen[str]] = []
    try:
        if servers_file:  # servers another `--serve-only` run keeps up (static files are read on each request)
            servers = json.loads(servers_file.read_text())
            for label, checkout in (("old", old), ("new", new)):
                servers[label]["commit"] = subprocess.run(
                    ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                    text=True).stdout.strip() + ("+" if subprocess.run(
                        ["git", "-C", str(checkout), "diff", "--quiet", "HEAD"]).returncode else "")
        else:
            procs, servers = serve(old, new, work)
        probe(out, servers, runs)
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=120)


def probe(out: Path, servers: dict[str, Any], runs: int) -> None:
    from margay.rig.chromium import chromium_browser

    rows: list[dict[str, Any]] = []
    with chromium_browser() as browser:
        for rnd in range(runs + 1):  # round 0 warms both servers' caches and is not kept
            for page_name in PAGES:
                for label in ("old", "new") if rnd % 2 else ("new", "old"):
                    s = servers[label]
                    got = _one(browser, s["url"], s["pid"], page_name)
                    if rnd:
                        got.update(label=label, page=page_name, round=rnd, commit=s["commit"],
                                   load=os.getloadavg()[0])
                        rows.append(got)
                        print(f"{rnd} {page_name} {label}: {got['render']:.0f} ms, server "
                              f"{got['server_cpu_s']:.2f} CPU-s", flush=True)
            out.write_text(json.dumps({"servers": servers, "runs": rows}, indent=1))


def phases(row: dict[str, Any]) -> dict[str, float]:
    res = row["resources"]
    api = [r for r in res if "/api/" in r["name"] and r["end"] <= row["render"] + 1]
    scripts = [r for r in res if r["name"].endswith(".js")]
    cdp = row["cdp"]
    return {
        "render ms": row["render"],
        "shell ms (document loaded)": row["shell"],
        "scripts loaded ms (last .js end)": max(r["end"] for r in scripts),
        "scripts fetched (count)": len(scripts),
        "first API call asked ms": min(r["start"] for r in api),
        "last API response ms": max(r["end"] for r in api),
        "render − last API response ms": row["render"] - max(r["end"] for r in api),
        "API calls (count)": len(api),
        "API queue ms (sum of requestStart − start)": sum(max(0.0, r["req"] - r["start"]) for r in api),
        "API server ms (sum of responseStart − requestStart)": sum(r["first"] - r["req"] for r in api),
        "API longest server ms": max(r["first"] - r["req"] for r in api),
        "renderer script s": cdp["ScriptDuration"],
        "renderer layout s": cdp["LayoutDuration"],
        "renderer style s": cdp["RecalcStyleDuration"],
        "renderer task s": cdp["TaskDuration"],
        "long tasks (count)": len(row["longtasks"]),
        "long tasks ms (sum)": sum(d for _, d in row["longtasks"]),
        "server CPU s": row["server_cpu_s"],
    }


def table(files: list[Path]) -> str:
    rows = [r for f in files for r in json.loads(f.read_text())["runs"]]
    lines = []
    for page in PAGES:
        by = {lab: [phases(r) for r in rows if r["page"] == page and r["label"] == lab] for lab in ("old", "new")}
        if not by["old"] or not by["new"]:
            continue
        lines += [f"**{page}** (median of {len(by['old'])} / {len(by['new'])} runs)", "",
                  "| part | old | new | change |", "|---|---|---|---|"]
        for key in by["old"][0]:
            o = statistics.median(p[key] for p in by["old"])
            n = statistics.median(p[key] for p in by["new"])
            ch = f"{(n - o) / o * 100:+.0f} %" if o else "–"
            lines.append(f"| {key} | {o:.3g} | {n:.3g} | {ch} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("old", type=Path, nargs="?")
    p.add_argument("new", type=Path, nargs="?")
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--work", type=Path, default=Path("/tmp/ui-split"))
    p.add_argument("--table", action="store_true")
    p.add_argument("--serve-only", action="store_true", help="load both servers, write their url/pid to OUT, "
                   "keep them up until stdin closes")
    p.add_argument("--servers", type=Path, help="probe the servers a --serve-only run wrote")
    a = p.parse_args()
    if a.table:
        print(table([f for f in (a.out, a.old, a.new) if f is not None]))
        return
    assert a.old and a.new
    t0 = time.monotonic()
    if a.serve_only:
        procs, servers = serve(a.old, a.new, a.work)
        a.out.write_text(json.dumps(servers))
        sys.stdin.read()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=120)
        return
    run(a.out, a.old, a.new, a.runs, a.work, a.servers)
    print(f"{time.monotonic() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
