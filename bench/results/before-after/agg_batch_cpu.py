"""Server CPU of the overview's aggregations as one POST /api/v1/aggregations (JSON and NDJSON) against the
same items sent one by one to their own routes, interleaved (s12-ui).

    .venv/bin/python bench/results/before-after/agg_batch_cpu.py SERVERS.json RUNS [ITEMS.json]

ITEMS.json: {"batch": [...items...]} (default: overview-batch-items.json beside this file, the 25 items the
overview sent before it derived three panels from others).
"""

import json
import sys

import httpx

from agg_common import ROUTES, cpu, items

s = json.load(open(sys.argv[1]))["new"]
n = int(sys.argv[2])


b = items(sys.argv[3] if len(sys.argv) > 3 else None)
R = ROUTES
res = {"batch": [], "batch-ndjson": [], "one by one": []}
with httpx.Client(base_url=s["url"], timeout=60, headers={"x-cluster-id": "_MULTI_"}) as http:
    for r in range(n):
        for mode in res:
            c0 = cpu(s["pid"])
            if mode == "one by one":
                for it in b:
                    http.post(
                        f"/api/v1/{R[it['log_type']]}/aggregation",
                        json={k: v for k, v in it.items() if k != "log_type"},
                    )
            else:
                http.post(
                    "/api/v1/aggregations",
                    json={"requests": b},
                    headers={"accept": "application/x-ndjson"} if "nd" in mode else {},
                )
            res[mode].append(cpu(s["pid"]) - c0)
import statistics

for k, v in res.items():
    print(
        k, round(statistics.median(v) * 1000), "CPU-ms median of", len(v), sorted(round(x * 1000) for x in v)
    )
