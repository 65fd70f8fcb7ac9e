"""In-process read CPU of one store, by the code PYTHONPATH picks (959394d, main or this branch): p25 over single
calls of the query scenario's audit search, top DNS domains, top destinations and search (3 pages), and the
peers scenario's denied page. Run: python read_cpu_ab2.py QUERY_DATA_DIR [PEERS_DATA_DIR] (copies of
cpu_per_query.py load's WORK/data and peers_ab.py load's WORK/data, each written by the code measured or
by a code whose layout it reads: 959394d cannot read today's shared files, so it reads a store it wrote)."""
import json
import resource
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend

try:
    from margay.query.graph import GraphSpec
except ImportError:  # 959394d: the flow graph was built by the API module
    GraphSpec = None
    from margay.api.graph import GRAPH_KEYS, graph_sql
    from margay.store import rollup

    def graph_of(s, q):  # the API handler's store work (rows of the default 60-node graph)
        def build(run, src, ps):
            return run(graph_sql(src, False, True), ps + [[], [], [], 60, 60, 60])
        assert rollup.usable(q, GRAPH_KEYS)
        return s.run_rolled(q, build)
try:  # 959394d: aggregations ran through the API module
    from margay.api.logs import aggregate_with_path

    def aggregate(s, q, aggs):
        return aggregate_with_path(s, q, aggs)[0]
except ImportError:
    def aggregate(s, q, aggs):
        return s.aggregate(q, aggs).result


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


out = {}


def bench(name, f, n=25):
    for _ in range(3):
        f()
    xs = []
    for _ in range(n):
        c0 = cpu()
        f()
        xs.append((cpu() - c0) * 1000)
    xs.sort()
    out[name] = round(xs[len(xs) // 4], 2)  # p25 of single calls: contention only ever adds CPU
    out[name + "_p10"] = round(xs[len(xs) // 10], 2)


def flows(sel):
    return Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, size=100,
                 selector=parse_selector(sel), sort=[SortKey("end_time", True)], now=END)


def three(s, q):
    r = s.search(q)
    r = s.search(replace(q, after_key=r.after_key))
    s.search(replace(q, after_key=r.after_key))


week = dict(start=END - timedelta(days=7), end=END, now=END)
s = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
aq = Query(REGISTRY["audit_kube"], ["cluster"], size=100, selector=parse_selector(
    'user.username = "system:serviceaccount:kube-system:replicaset-controller" AND verb = "create"'), **week)
assert s.search(aq).items, "the audit search finds nothing: this code cannot read this store"
bench("audit", lambda: s.search(aq), 40)
dnsq = Query(REGISTRY["dns"], ["cluster"], **week)
bench("dnstop", lambda: aggregate(s, dnsq, {"domains": {"terms": {"field": "qname", "size": 10}}}), 40)
topq = Query(REGISTRY["flows"], ["cluster"], **week)
bench("topdest", lambda: aggregate(s, topq, {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {
    "bytes": "desc"}}, "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}), 40)
bench("search3", lambda: three(s, flows('source_namespace = "shop" AND action = "allow"')), 15)
day = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, now=END)
bench("flowgraph", lambda: s.flow_graph(day, GraphSpec()) if GraphSpec else graph_of(s, day), 25)
s.close()
if len(sys.argv) > 2:
    p = DuckDBBackend(Path(sys.argv[2]), compact_interval=3600)
    bench("peers_denied", lambda: p.search(flows('source_namespace = "shop" AND action = "deny"')), 40)
    bench("peers_search3", lambda: three(p, flows('source_namespace = "shop" AND action = "allow"')), 15)
    bench("peers_flowgraph", lambda: p.flow_graph(day, GraphSpec()) if GraphSpec else graph_of(p, day), 25)
    p.close()
import margay  # noqa: E402

print(json.dumps({"code": margay.__file__.split("/src/")[0], **out}))
