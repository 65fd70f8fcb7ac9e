"""Session 20: what the nested columns' JSON text costs the cold merge: one day's 995,469-row shared file (peers_ab.py load,
/tmp/pab2) merged in-process on one thread as layout.py does (sorted, zstd 9, 64 Ki-row groups), plain, with the text
computed in the sorted SELECT (`inline`) and after the sort (`after`); `SET memory_limit` as the compactor's engine
(448 MiB) or not. Usage: python shadow_merge_cost_s20.py plain after inline."""
import duckdb, time, os, glob, sys
big=max([f for f in glob.glob('/tmp/pab2/data/store/flows/_shared/20261125/*.parquet') if 'rollup' not in f], key=os.path.getsize)
fmt="FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 65536, PARQUET_VERSION V2, BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048"
nested=['source_labels','dest_labels','dest_domains','policies','process_args','nat_outgoing_ports','original_source_ips','source_ips','dest_ips']
o='ORDER BY cluster, source_namespace, action, dest_namespace, source_name_aggr, dest_name_aggr, end_time, _seq'
add=''.join(f', CAST(to_json("{c}") AS VARCHAR) AS "_json_{c}"' for c in nested)
shapes={'plain': f"SELECT * FROM read_parquet(?, union_by_name = true) {o}",
        'inline': f"SELECT *{add} FROM read_parquet(?, union_by_name = true) {o}",
        'after': f"SELECT *{add} FROM (SELECT * FROM read_parquet(?, union_by_name = true) {o})"}
for name in sys.argv[1:]:
    con=duckdb.connect(); con.execute("SET threads=1"); con.execute("SET temp_directory='/tmp/spilltest'")
    t=time.process_time(); w=time.perf_counter()
    con.execute(f"COPY ({shapes[name]}) TO '/tmp/mc_{name}.parquet' ({fmt})", [[big]])
    print(name, 'cpu', round(time.process_time()-t,2), 'wall', round(time.perf_counter()-w,2), os.path.getsize(f'/tmp/mc_{name}.parquet'))
    if name=='after':
        import pyarrow.parquet as pq
        a=pq.read_table(f'/tmp/mc_plain.parquet', columns=['_seq']).column(0).to_pylist()
        b=pq.read_table(f'/tmp/mc_after.parquet', columns=['_seq']).column(0).to_pylist()
        print('same order', a==b)
