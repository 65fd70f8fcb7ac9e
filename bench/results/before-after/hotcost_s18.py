"""A hot tier merge's COPY (16 group-like files of 4,000 flows, 64,000 rows) by sort and format (session 18):
process CPU-ms, bytes a row. Usage: PYTHONPATH=src hotcost_s18.py (reads a settled fleet store's shared file)"""
import duckdb, time, glob, os
from margay.ingest.group import GROUP_CODEC
from margay.store.duckdb.layout import layout_sort, Layout
from margay.logtypes import REGISTRY
src = "/tmp/s17/f-c/data/store/flows/_shared/20261125/0000000000000001-0000000003015075-996038.1796635651814934.parquet"
os.makedirs("/tmp/s18/hot", exist_ok=True)
con = duckdb.connect(); con.execute("SET threads=1")
con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{src}') ORDER BY _seq LIMIT 64000")
for i in range(16):
    con.execute(f"COPY (SELECT * FROM t ORDER BY _seq LIMIT 4000 OFFSET {i*4000}) TO '/tmp/s18/hot/g{i}.parquet' (FORMAT parquet, COMPRESSION {GROUP_CODEC})")
files = sorted(glob.glob("/tmp/s18/hot/g*.parquet"))
order = ", ".join(f'"{c}"' for c in layout_sort(REGISTRY["flows"]))
L = Layout.__new__(Layout)
fmt9 = Layout._format(L)
variants = {
 "current(sorted,L9,V2,bloom)": (f"ORDER BY {order}", fmt9),
 "sorted,L1": (f"ORDER BY {order}", "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"),
 "sorted,L3,V2": (f"ORDER BY {order}", "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, PARQUET_VERSION V2"),
 "unsorted,L1": ("", "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"),
 "group codec unsorted": ("", f"FORMAT parquet, COMPRESSION {GROUP_CODEC}"),
}
print("GROUP_CODEC", GROUP_CODEC)
for rep in range(2):
  for name, (o, fmt) in variants.items():
    xs=[]
    for _ in range(3):
        t=time.process_time()
        con.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name=true) {o}) TO '/tmp/s18/hot/out.parquet' ({fmt})", [files])
        xs.append((time.process_time()-t)*1000)
    print(f"{name:32s} {min(xs):7.1f} ms  {os.path.getsize('/tmp/s18/hot/out.parquet')/64000:.1f} B/row")
print("---")
for name, (o, fmt) in {"cluster-sorted L1": ('ORDER BY "cluster"', "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"),
                       "cluster-sorted L1 rg64k": ('ORDER BY "cluster"', "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 65536"),
                       "unsorted L1": ("", "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"),
                       "full sorted L9": (f"ORDER BY {order}", fmt9)}.items():
    xs=[]
    for _ in range(3):
        t=time.process_time()
        con.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name=true) {o}) TO '/tmp/s18/hot/out.parquet' ({fmt})", [files])
        xs.append((time.process_time()-t)*1000)
    print(f"{name:32s} {min(xs):7.1f} ms  {os.path.getsize('/tmp/s18/hot/out.parquet')/64000:.1f} B/row")
