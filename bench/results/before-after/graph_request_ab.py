"""Server CPU-ms of the graph page's request (POST /api/v1/flows/graph, all clusters, 60 nodes) with by_cluster false
and true, `margay serve` from SRC over WORK's data. python gsrv.py WORK SRC [ROUNDS]"""
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from margay.bench.data import END
from margay.bench.harness import cpu_seconds
from margay.rig.children import ServerProcess

work, src = Path(sys.argv[1]), Path(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
s = ServerProcess(work / "data", "--config", str(work / "margay.yaml"), env={"PYTHONPATH": str(src)},
                  log=work / "gsrv.log").start()
out = {}
try:
    time.sleep(3)
    with httpx.Client(base_url=s.url, timeout=120) as h:
        for _ in range(rounds):
            for bc in (False, True):
                b = {"time_range": {"from": (END - timedelta(hours=24)).isoformat(), "to": END.isoformat()},
                     "expand": [], "max_nodes": 60, "all_clusters": True, **({"by_cluster": True} if bc else {})}
                hdr = {"x-cluster-id": "_MULTI_"}
                if h.post("/api/v1/flows/graph", json=b, headers=hdr).status_code != 200:
                    continue  # 959394d has no by_cluster
                h.post("/api/v1/flows/graph", json=b, headers=hdr).raise_for_status()
                c0 = cpu_seconds(s.proc.pid)
                for _ in range(20):
                    r = h.post("/api/v1/flows/graph", json=b, headers=hdr); r.raise_for_status()
                out.setdefault(f"graph_by_cluster_{bc}", []).append(round((cpu_seconds(s.proc.pid) - c0) * 1000 / 20, 2))
                out[f"edges_{bc}"] = len(r.json().get("edges", []))
finally:
    s.stop()
print(json.dumps(out))
