"""DuckDB's JSON profile of a search page's fetch on a 50 M store (session 18). Usage: PYTHONPATH=src
fetchprof_s18.py DATA_DIR"""
import sys, time, warnings, json
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
cap=[]
oc = DuckDBBackend.cursor.__get__(b)
class Wrap:
    def __init__(s, c): s.c = c
    def execute(s, sql, params=None):
        cap.append((sql, params)); return s.c.execute(sql, params)
    def __getattr__(s, n): return getattr(s.c, n)
    def close(s): s.c.close()
b.cursor = lambda *a, **k: Wrap(oc(*a, **k))
q = Query(REGISTRY["flows"], ["cluster"], size=100, selector=parse_selector(sel), selector_text=sel, sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1])
r=b.search(q); q2 = Query(REGISTRY["flows"], ["cluster"], size=100, selector=parse_selector(sel), selector_text=sel, sort=[SortKey("end_time", True)], start=DAY[0], end=DAY[1], now=DAY[1], after_key=r.after_key)
cap.clear(); b.search(q2)
sql, params = cap[-1]
print(len(params[0]) if isinstance(params[0], list) else params[0])
import duckdb
con = oc()
con.execute("PRAGMA enable_profiling='json'"); con.execute("PRAGMA profiling_output='/tmp/s18/fp.json'")
for _ in range(3): con.execute(sql, params).fetchall()
con.execute("PRAGMA disable_profiling")
p=json.load(open('/tmp/s18/fp.json'))
def walk(n,d=0):
    print(' '*d, n.get('operator_type') or n.get('name'), round(n.get('operator_timing',0)*1000,2), n.get('operator_cardinality'), (n.get('extra_info') or {}).get('Total Files Read') if isinstance(n.get('extra_info'),dict) else '')
    for c in n.get('children',[]): walk(c,d+1)
print({k:p[k] for k in p if k not in ('children','extra_info')})
for c in p['children']: walk(c)
# variants
t=time.process_time()
for _ in range(10): con.execute(sql, params).fetchall()
print("fetch cpu ms", (time.process_time()-t)*100)
# only _seq + count (scan cost without big projection)
import re
sql2 = re.sub(r'SELECT "_seq", to_json\(.*\) FROM read_parquet', 'SELECT "_seq" FROM read_parquet', sql, flags=re.S)
t=time.process_time()
for _ in range(10): con.execute(sql2, params).fetchall()
print("seq-only cpu ms", (time.process_time()-t)*100)
