"""Server CPU per aggregation request, each of the overview's items sent alone to its own route on the old and
the new server in turn (s12-ui).

    .venv/bin/python bench/results/before-after/agg_items_cpu.py SERVERS.json RUNS [ITEMS.json]
"""

import json, sys, httpx

from agg_common import ROUTES, cpu, items

servers = json.load(open(sys.argv[1]))
n = int(sys.argv[2])


b = items(sys.argv[3] if len(sys.argv) > 3 else None)
R = ROUTES
tot = {"old": 0, "new": 0}
for it in b:
    body = {k: v for k, v in it.items() if k != "log_type"}
    out = {}
    for lab in ("old", "new"):
        s = servers[lab]
        with httpx.Client(base_url=s["url"], timeout=60, headers={"x-cluster-id": "_MULTI_"}) as http:
            path = f"/api/v1/{R[it['log_type']]}/aggregation"
            r = http.post(path, json=body)
            if r.status_code != 200:
                out[lab] = None
                continue
            c0 = cpu(s["pid"])
            for _ in range(n):
                http.post(path, json=body)
            out[lab] = (cpu(s["pid"]) - c0) / n * 1000
            tot[lab] += out[lab]
    print(
        f"{str(round(out['old'], 1)) if out['old'] is not None else '-':>7} {out['new']:7.1f}  {it['log_type']:6} {json.dumps(it['aggregations'])[:80]} {(it.get('selector') or '')[:20]}"
    )
print(tot)
