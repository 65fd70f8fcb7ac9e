"""In-process CPU and wall per read, the read engine at one thread and at two, on one store: `read_threads_ab.py WORK`
(WORK/data: a store of the query scenario, e.g. `cpu_per_query.py load WORK`). Medians of 30 calls, 3 rounds.
Run it with a `src` from before s10-dns (PYTHONPATH=...): since then reads this small go to the one-thread engine
whatever `con`'s setting."""
import sys, time, resource, shutil, tempfile, os
from datetime import timedelta
from pathlib import Path
from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.model import Query
from margay.query.graph import GraphSpec
from margay.store.duckdb import DuckDBBackend
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
work = Path(tempfile.mkdtemp(prefix="dns-thr-", dir="/tmp")); shutil.copytree(Path(sys.argv[1]) / "data", work / "data")
s = DuckDBBackend(work / "data", compact_interval=3600)
week = dict(start=END - timedelta(days=7), end=END, now=END)
dnsq = Query(REGISTRY["dns"], ["cluster"], **week)
topq = Query(REGISTRY["flows"], ["cluster"], **week)
day = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, now=END)
allday = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, now=END, size=100)
qs = {"dnstop": lambda: s.aggregate(dnsq, {"domains": {"terms": {"field": "qname", "size": 10}}}),
      "topdest": lambda: s.aggregate(topq, {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}}, "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}),
      "flowgraph": lambda: s.flow_graph(day, GraphSpec()),
      "search": lambda: s.search(allday)}
res = {}
for rnd in range(3):
    for t in (1, 2):
        s.con.execute(f"SET threads = {t}")
        for n, f in qs.items():
            for _ in range(3): f()
            xs, ws = [], []
            for _ in range(30):
                c0 = cpu(); w0 = time.perf_counter(); f(); xs.append((cpu() - c0) * 1000); ws.append((time.perf_counter() - w0) * 1000)
            xs.sort(); ws.sort()
            res.setdefault((n, t), []).append((xs[15], ws[15]))
for (n, t), v in sorted(res.items()):
    print(n, "threads", t, "cpu med", [round(a, 2) for a, _ in v], "wall med", [round(b, 2) for _, b in v])
s.close(); shutil.rmtree(work)
