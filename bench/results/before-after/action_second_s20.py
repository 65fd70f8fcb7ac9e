"""Session 20: a settled 2 M-flow day's big shared file (peers_ab.py load) rewritten in two sort orders (`cur`: cluster,
source_namespace, dest_namespace, action, ...; `act2`: cluster, source_namespace, action, dest_namespace, ...),
each page of 100 (sort keys, then the documents of their `_seq`s, as reader.py) timed in-process on one thread,
30 runs after 3, two rounds. Usage: python action_second_s20.py BIG_FILE FETCH_SQL_FILE (the fetch statement
reader.py runs for the denied page, as printed by a statement log)."""
import duckdb, time, os, re
from margay.bench.peers import DAY
import sys
big=sys.argv[1]
sql=open(sys.argv[2]).read().replace('----- ','').strip()
fmt="FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 65536, PARQUET_VERSION V2, BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048"
orders={'cur':'cluster, source_namespace, dest_namespace, action, source_name_aggr, dest_name_aggr, end_time, _seq',
        'act2':'cluster, source_namespace, action, dest_namespace, source_name_aggr, dest_name_aggr, end_time, _seq'}
con=duckdb.connect(); con.execute("set threads=1"); con.execute("SET parquet_metadata_cache=true"); con.execute("SET TimeZone='UTC'")
lo=int(DAY[0].timestamp()); hi=int(DAY[1].timestamp())
for name,o in orders.items():
    p=f'/tmp/sort_{name}.parquet'
    if not os.path.exists(p):
        con.execute(f"COPY (SELECT * FROM read_parquet('{big}') ORDER BY {o}) TO '{p}' ({fmt})")
for rnd in range(2):
  for name in orders:
    p=f'/tmp/sort_{name}.parquet'
    res={}
    for ns,act in (('shop','deny'),('shop','allow'),('frontend','deny'),('payments','allow')):
        key = f"SELECT end_time, _seq FROM read_parquet(?) WHERE cluster='cluster' AND end_time>=? and end_time<=? and source_namespace=? AND action=? ORDER BY end_time DESC, _seq DESC LIMIT 101"
        def run():
            rows=con.execute(key,[[p],lo,hi,ns,act]).fetchall()[:100]
            seqs=[r[1] for r in rows]
            if seqs: con.execute(sql,[[p],min(seqs),max(seqs),seqs,'cluster',lo,hi,ns,act]).fetchall()
        for _ in range(3): run()
        s=time.process_time()
        for _ in range(30): run()
        res[f'{ns}/{act}']=round((time.process_time()-s)*1000/30,2)
    print(name, os.path.getsize(p), res)
