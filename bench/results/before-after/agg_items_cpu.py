"""Server CPU per aggregation request, each of the overview's items sent alone to its own route on the old and
the new server in turn (s12-ui).

    .venv/bin/python bench/results/before-after/agg_items_cpu.py SERVERS.json RUNS [ITEMS.json]
"""

import json, os, sys, httpx

servers = json.load(open(sys.argv[1]))
n = int(sys.argv[2])


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


b = json.load(
    open(
        sys.argv[3]
        if len(sys.argv) > 3
        else os.path.join(os.path.dirname(__file__), "overview-batch-items.json")
    )
)["batch"]
R = {
    "flows": "flows/logs",
    "dns": "dns/logs",
    "audit": "audit/logs",
    "bgp": "bgp/logs",
    "l7": "l7/logs",
    "events": "events",
}
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
