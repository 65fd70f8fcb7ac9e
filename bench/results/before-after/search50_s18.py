"""The query scenario's 3-page search on a 50 M store, in-process: CPU-ms per 3 pages (median of 15) and each
statement's CPU-ms (session 18). Usage: PYTHONPATH=src search50_s18.py DATA_DIR"""
import sys, time, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from datetime import timedelta
from margay.store.duckdb import DuckDBBackend
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.logtypes import REGISTRY
from margay.bench.data import END
b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
sel = 'source_namespace = "shop" AND action = "allow"'
DAY = (END - timedelta(hours=24), END)
def pages():
    after = None; out = []
    for _ in range(3):
        q = Query(REGISTRY["flows"], ["cluster"], size=100, selector=parse_selector(sel), selector_text=sel,
                  sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1], after_key=after)
        r = b.search(q); out.append((len(r.items), r.total)); after = r.after_key
    return out
print(pages())
for _ in range(3): pages()
xs=[]; ws=[]
for _ in range(15):
    t = time.process_time(); w=time.perf_counter(); pages(); xs.append((time.process_time() - t) * 1000); ws.append((time.perf_counter()-w)*1000)
xs.sort(); ws.sort()
print("cpu ms median", round(xs[7],1), "min", round(xs[0],1), "wall median", round(ws[7],1))
b.close()
b = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
captured = []
oc = DuckDBBackend.cursor.__get__(b)
class Wrap:
    def __init__(s, c): s.c = c
    def execute(s, sql, params=None):
        t = time.process_time(); w=time.perf_counter(); r = s.c.execute(sql, params); rows = r.fetchall(); captured.append((round((time.process_time()-t)*1000, 2), round((time.perf_counter()-w)*1000,2), sql[-200:].replace("\n", " "), len(rows), len(params or [])))
        class R:
            def fetchall(self_): return rows
        return R()
    def __getattr__(s, n): return getattr(s.c, n)
    def close(s): s.c.close()
b.cursor = lambda *a, **k: Wrap(oc(*a, **k))
pages(); captured.clear(); pages()
for c in captured: print(c)
