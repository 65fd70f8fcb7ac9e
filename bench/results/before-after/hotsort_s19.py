"""A hot tier merge's COPY (16 group-like files of 4,000 flows from hotcost_s18.py, 64,000 rows: one row group) by sort
key, at the shared files' format (zstd 9, Parquet 2, blooms), one thread: process CPU-ms and bytes a row (session 19).
Usage: PYTHONPATH=src hotsort_s19.py (after hotcost_s18.py wrote /tmp/s18/hot/g*.parquet)"""
import duckdb, time, glob, os
from margay.store.duckdb.layout import layout_sort, Layout
from margay.logtypes import REGISTRY
files = sorted(glob.glob("/tmp/s18/hot/g*.parquet"))
con = duckdb.connect(); con.execute("SET threads=1")
order = ", ".join(f'"{c}"' for c in layout_sort(REGISTRY["flows"]))
L = Layout.__new__(Layout); fmt9 = Layout._format(L)
V = {"full sort, L9 (now)": f"ORDER BY {order}", "cluster,_seq, L9": 'ORDER BY "cluster", "_seq"',
     "cluster,ns,action,_seq L9": 'ORDER BY "cluster", "source_namespace", "dest_namespace", "action", "_seq"',
     "unsorted, L9": ""}
for rep in range(3):
  for name, o in V.items():
    xs=[]
    for _ in range(3):
        t=time.process_time()
        con.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name=true) {o}) TO '/tmp/s19/out.parquet' ({fmt9})", [files])
        xs.append((time.process_time()-t)*1000)
    print(f"{name:30s} {min(xs):7.1f} ms  {os.path.getsize('/tmp/s19/out.parquet')/64000:.2f} B/row", flush=True)
