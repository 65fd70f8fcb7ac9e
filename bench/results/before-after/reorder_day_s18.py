"""Rewrite one day's flow shared files of a store in another sort order and row-group size, every other option
as Layout._format (session 18). Usage: reorder_day_s18.py DATA_DIR YYYYMMDD ORDER [ROW_GROUP_SIZE]"""
import sys, duckdb, glob, os
order = sys.argv[3]
con = duckdb.connect()
for f in sorted(glob.glob(sys.argv[1] + f"/store/flows/_shared/{sys.argv[2]}/*.parquet")):
    if "rollup" in f: continue
    tmp = f + ".tmp"
    con.execute(f"COPY (SELECT * FROM read_parquet(?) ORDER BY {order}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE {int(sys.argv[4]) if len(sys.argv) > 4 else 65536}, PARQUET_VERSION V2, BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048)", [f])
    print(f.split("/")[-1], os.path.getsize(f), os.path.getsize(tmp), flush=True)
    os.replace(tmp, f)
