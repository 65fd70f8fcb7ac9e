"""The renderer's CPU to parse and run echarts' full build against its common build, in fresh contexts, taking
turns (s12-ui).   .venv/bin/python bench/results/before-after/echarts_build_cpu.py RUNS"""

import statistics
import sys

from margay.rig.chromium import chromium_browser

D = str(__import__("margay.web.pages", fromlist=["NODE_MODULES"]).NODE_MODULES / "echarts" / "dist") + "/"
files = {"full": D + "echarts.min.js", "common": D + "echarts.common.min.js"}
res = {k: [] for k in files}
with chromium_browser() as b:
    for r in range(int(sys.argv[1])):
        for k, f in files.items():
            ctx = b.new_context()
            page = ctx.new_page()
            page.goto("about:blank")
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            m0 = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            page.add_script_tag(path=f)
            m1 = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            res[k].append(m1["ThreadTime"] - m0["ThreadTime"])
            ctx.close()
for k, v in res.items():
    print(
        k, "thread CPU ms median", round(statistics.median(v) * 1000, 1), sorted(round(x * 1000) for x in v)
    )
