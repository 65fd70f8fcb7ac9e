"""Server CPU per question of the peers scenario over a stored copy of its margay store (a `margay serve` on it).

    python peers_store_probe.py PID URL [search|denied|graph|topdest ...]

PID: the server's process (its CPU from /proc, 10 ms ticks: 20 runs a figure after 2 warm-ups); the questions
are the scenario's own (bench/targets.py), against its fixed END. The A/B runs started one server from each side's
`src` (PYTHONPATH) in turn on the same copy of the full run's sim store.
"""
import sys, time, httpx, os
from datetime import datetime, timedelta, UTC
END = datetime(2026, 11, 26, tzinfo=UTC)
pid = int(sys.argv[1]); url = sys.argv[2]; which = sys.argv[3:] or ["search", "denied", "graph"]
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
day = {"from": (END - timedelta(hours=24)).isoformat(), "to": END.isoformat()}
h = httpx.Client(base_url=url, headers={"x-cluster-id": "cluster"}, timeout=600)
def search():
    body = {"time_range": day, "max_page_size": 100, "selector": 'source_namespace = "shop" AND action = "allow"',
            "sort": [{"field": "end_time", "descending": True}]}
    for _ in range(3):
        p = h.post("/api/v1/flows/logs", json=body).json()
        if "after_key" not in p: break
        body["after_key"] = p["after_key"]
def denied():
    h.post("/api/v1/flows/logs", json={"time_range": day, "max_page_size": 100, "selector": 'source_namespace = "shop" AND action = "deny"', "sort": [{"field": "end_time", "descending": True}]}).raise_for_status()
def graph():
    h.post("/api/v1/flows/graph", json={"time_range": day}).raise_for_status()
week = {"from": (END - timedelta(days=7)).isoformat(), "to": END.isoformat()}
def topdest():
    h.post("/api/v1/flows/logs/aggregation", json={"time_range": week, "aggregations": {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}}, "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}).raise_for_status()
Q = {"search": search, "denied": denied, "graph": graph, "topdest": topdest}
for name in which:
    q = Q[name]; q(); q()
    n = 20; c0 = cpu(); t0 = time.perf_counter()
    for _ in range(n): q()
    print(f"{name}: {(cpu()-c0)*1000/n:.1f} CPU-ms, wall {(time.perf_counter()-t0)*1000/n:.1f} ms")
