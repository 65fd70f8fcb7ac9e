# session 16: a search in-process with each DuckDB statement's CPU apart (cursor wrapped). Usage: PYTHONPATH=SRC python search_statements_s16.py DATA_DIR SELECTOR SIZE N
import sys, time
from pathlib import Path
from margay.store.duckdb import DuckDBBackend
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.logtypes import REGISTRY
from margay.bench.peers import DAY, CLUSTER
import duckdb
b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
sel = sys.argv[2]; size = int(sys.argv[3]); n = int(sys.argv[4])
q = Query(REGISTRY["flows"], [CLUSTER], size=size, selector=parse_selector(sel), selector_text=sel,
          sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1], total_hits=True)
r = b.search(q); print("items", len(r.items), "total", r.total)
stmts = {}; SQLS = {}
import margay.store.duckdb.reader as R
orig = R.Reader.cursor
def cursor(self, rows):
    c = orig(self, rows)
    class W:
        def __init__(s, c): s.c = c
        def execute(s, sql, params=None):
            t = time.process_time(); res = s.c.execute(sql, params).fetchall(); dt = time.process_time() - t
            key = sql[:60].replace("\n", " ")
            stmts.setdefault(key, []).append(dt); SQLS[key] = (sql, params)
            class F:
                def fetchall(_): return res
            return F()
        def close(s): s.c.close()
    return W(c)
R.Reader.cursor = cursor
t = time.process_time()
for _ in range(n):
    b.search(q)
tot = (time.process_time() - t) * 1000 / n
print("ms/search", round(tot, 2))
for k, v in stmts.items(): print(round(sum(v) * 1000 / n, 2), len(v) / n, k)
if len(sys.argv) > 5:
    for k in stmts: pass
b.close()
import pickle; pickle.dump(SQLS, open("search_statements_s16.pkl", "wb"))  # the statements, for a standalone replay
