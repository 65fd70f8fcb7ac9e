"""In-process read CPU of one store, old or new code (PYTHONPATH picks it): p25 over single calls of the query
scenario's search (3 pages), audit search, top destinations and top DNS domains. Run: python read_cpu_ab.py DATA_DIR
(a copy of cpu_per_query.py load's WORK/data)."""
import sys, time, resource, json
from datetime import timedelta
from pathlib import Path
from dataclasses import replace
from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend
def cpu(): r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
s = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
out = {}
def bench(name, f, n=25):
    for _ in range(3): f()
    xs = []
    for _ in range(n):
        c0 = cpu(); f(); xs.append((cpu() - c0) * 1000)
    xs.sort()
    out[name] = round(xs[len(xs) // 4], 2)  # p25 of single calls: contention only ever adds CPU (spinning workers)
q = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, size=100,
          selector=parse_selector('source_namespace = "shop" AND action = "allow"'), sort=[SortKey("end_time", True)], now=END)
def three():
    r = s.search(q); r = s.search(replace(q, after_key=r.after_key)); s.search(replace(q, after_key=r.after_key))
aq = Query(REGISTRY["audit_kube"], ["cluster"], start=END - timedelta(days=7), end=END, size=100,
   selector=parse_selector('user.username = "system:serviceaccount:kube-system:replicaset-controller" AND verb = "create"'), now=END)
week = dict(start=END - timedelta(days=7), end=END, now=END)
topq = Query(REGISTRY["flows"], ["cluster"], **week)
top = {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}}, "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}
dnsq = Query(REGISTRY["dns"], ["cluster"], **week)
dns = {"domains": {"terms": {"field": "qname", "size": 10}}}
for _ in range(1):
    bench("search3", three, 20)
    bench("audit", lambda: s.search(aq), 40)
    bench("topdest", lambda: s.aggregate(topq, top), 40)
    bench("dnstop", lambda: s.aggregate(dnsq, dns), 40)
import margay
print(json.dumps({"code": margay.__file__.split("/src/")[0], **out}))
s.close()
