"""In-process CPU-ms (p25 of 30 calls) of the flow graph over the last 24 h of every cluster, by_cluster false and
true, by the code PYTHONPATH picks. Run: python graph_by_cluster_cpu.py DATA_DIR ... (cpu_per_query.py / peers_ab.py
load's WORK/data)."""
import json
import resource
import sys
from datetime import timedelta
from pathlib import Path

from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.graph import GraphSpec
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
out = {}
for path in sys.argv[1:]:
    s = DuckDBBackend(Path(path), compact_interval=3600)
    cl = s.clusters(REGISTRY["flows"])
    day = Query(REGISTRY["flows"], cl, start=END - timedelta(hours=24), end=END, now=END)
    for bc in (False, True):
        f = lambda: s.flow_graph(day, GraphSpec(by_cluster=bc))
        for _ in range(3): f()
        xs = []
        for _ in range(30):
            c0 = cpu(); f(); xs.append((cpu()-c0)*1000)
        xs.sort(); out[f"{Path(path).parent.name}_bc{int(bc)}"] = round(xs[7], 2)
    s.close()
print(json.dumps(out))
