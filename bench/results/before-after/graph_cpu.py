"""Server CPU of the graph page's request, by_cluster false and true, on a stored ui run's data (new code)."""
import json
import sys
from pathlib import Path

import httpx

try:
    from margay.rig.children import ServerProcess
except ImportError:
    from margay.testing.server import ServerProcess
from margay.bench.harness import cpu_seconds

d = Path(sys.argv[1])
s = ServerProcess(d / "data", "--config", str(d / "margay.yaml"), log=Path("/tmp/mab/graph-probe.log")).start()
out = {}
try:
    with httpx.Client(base_url=s.url, timeout=120) as h:
        for rnd in range(3):
            for bc in ((False, True) if len(sys.argv) < 3 else (False,)):
                body = {"time_range": {"from": "now-24h", "to": "now"}, "expand": [], "max_nodes": 60, **({"by_cluster": bc} if len(sys.argv) < 3 else {})}
                hdr = {"x-cluster-id": "_MULTI_"}
                b = dict(body, all_clusters=True)
                for _ in range(2):
                    h.post("/api/v1/flows/graph", json=b, headers=hdr).raise_for_status()
                c0 = cpu_seconds(s.proc.pid)
                for _ in range(10):
                    r = h.post("/api/v1/flows/graph", json=b, headers=hdr); r.raise_for_status()
                out.setdefault(f"by_cluster_{bc}", []).append(round((cpu_seconds(s.proc.pid) - c0) * 100, 1))
                out[f"nodes_{bc}"] = len(r.json().get("nodes", []))
finally:
    s.stop()
print(json.dumps(out))
