"""Server CPU of an all-cluster request that reads nothing (a minute with no data), of a one-cluster one, and of
the UI picker's GET /api/v1/clusters?limit=50, at 10 and 1,000 clusters: 40 runs after 3, twice, over the stores
a fleet run left (usage: fleet_fixed_cost.py <the fleet run's --work-dir>, e.g. /tmp/f2fullw)."""
import sys
from pathlib import Path
import httpx, json
from margay.bench.harness import cpu_seconds
from margay.rig.children import ServerProcess
empty = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T00:01:00Z"}
aggs = {"a": {"terms": {"field": "action"}}}
for rep in range(2):
    for n in (10, 1000):
        w = Path(sys.argv[1]) / f"fleet-{n}"
        s = ServerProcess(w / "data", "--config", str(w / "margay.yaml"), log=w / "fixed-cost.log")
        s.start()
        try:
            out = {"clusters": n, "rep": rep}
            with httpx.Client(base_url=s.url, timeout=120) as http:
                for label, body, hdr in (("all_clusters", {"time_range": empty, "aggregations": aggs, "all_clusters": True}, {"x-cluster-id": "_MULTI_"}),
                                         ("one_cluster", {"time_range": empty, "aggregations": aggs}, {"x-cluster-id": "fleet-0001"}),
                                         ("clusters_page", None, None)):
                    def call():
                        if body is None:
                            return http.get("/api/v1/clusters", params={"limit": "50"}).raise_for_status()
                        return http.post("/api/v1/flows/logs/aggregation", json=body, headers=hdr).raise_for_status()
                    for _ in range(3): call()
                    c0 = cpu_seconds(s.proc.pid)
                    for _ in range(40): call()
                    out[label] = round((cpu_seconds(s.proc.pid) - c0) * 1000 / 40, 1)
            print(json.dumps(out), flush=True)
        finally:
            s.stop()
