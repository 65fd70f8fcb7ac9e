"""Statements each question runs (and row groups each scans), by the code PYTHONPATH picks."""
import json, sys, re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.query.graph import GraphSpec
from margay.store.duckdb import DuckDBBackend
log = []
def wrap(s):
    orig = s.cursor
    class Cur:
        def __init__(self, c): self.c = c
        def execute(self, sql, params=None):
            if not sql.startswith("SET"):
                plan = self.c.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
                groups = [tuple(map(int, m)) for m in re.findall(r"Row Groups Scanned: (\d+) / (\d+)", plan)]
                log.append(sum(g[0] for g in groups))
            return self.c.execute(sql, params) if params is not None else self.c.execute(sql)
        def close(self): self.c.close()
    s.cursor = lambda: Cur(orig())
def flows(sel):
    return Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, size=100,
                 selector=parse_selector(sel), sort=[SortKey("end_time", True)], now=END)
def three(s, q):
    r = s.search(q); r = s.search(replace(q, after_key=r.after_key)); s.search(replace(q, after_key=r.after_key))
week = dict(start=END - timedelta(days=7), end=END, now=END)
day = Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, now=END)
out = {}
def count(name, s, f):
    f()  # the total is remembered from here on, as in the bench's repeated runs
    log.clear(); wrap(s); f(); s.cursor = type(s).cursor.__get__(s)
    out[name] = {"statements": len(log), "row_groups_scanned": sum(log)}
s = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
aq = Query(REGISTRY["audit_kube"], ["cluster"], size=100, selector=parse_selector('user.username = "system:serviceaccount:kube-system:replicaset-controller" AND verb = "create"'), **week)
count("audit", s, lambda: s.search(aq))
count("dnstop", s, lambda: s.aggregate(Query(REGISTRY["dns"], ["cluster"], **week), {"domains": {"terms": {"field": "qname", "size": 10}}}))
count("search3", s, lambda: three(s, flows('source_namespace = "shop" AND action = "allow"')))
count("flowgraph", s, lambda: s.flow_graph(day, GraphSpec()))
p = DuckDBBackend(Path(sys.argv[2]), compact_interval=3600)
count("peers_denied", p, lambda: p.search(flows('source_namespace = "shop" AND action = "deny"')))
count("peers_search3", p, lambda: three(p, flows('source_namespace = "shop" AND action = "allow"')))
import margay
print(json.dumps({"code": margay.__file__.split("/src/")[0], **out}))
