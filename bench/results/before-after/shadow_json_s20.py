"""Session 20 (not in the product): the day's big shared file (peers_ab.py load, action-second order) rewritten with
each list/struct column also stored as its JSON text (`_json_<column>`, to_json at the merge), the page fetch then
rendering that text instead of decoding the lists; same documents checked. Reads /tmp/fetch.sql (the fetch
statement reader.py runs for the denied page) and /tmp/pab2 (the loaded store)."""
import duckdb, time, os, re, glob
from margay.bench.peers import DAY
sql=open('/tmp/fetch.sql').read().replace('----- ','').strip()
big=[f for f in glob.glob('/tmp/pab2/data/store/flows/_shared/20261125/*.parquet') if 'rollup' not in f and os.path.getsize(f)>5e6]
big=max(big, key=os.path.getsize); print(big)
fmt="FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 65536, PARQUET_VERSION V2, BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048"
con=duckdb.connect(); con.execute("set threads=1"); con.execute("SET parquet_metadata_cache=true"); con.execute("SET TimeZone='UTC'")
nested=['source_labels','dest_labels','policies','dest_domains','process_args','nat_outgoing_ports','original_source_ips','source_ips','dest_ips']
o='cluster, source_namespace, action, dest_namespace, source_name_aggr, dest_name_aggr, end_time, _seq'
shadow=', '.join(f'to_json("{c}")::VARCHAR AS "_json_{c}"' for c in nested)
t0=time.process_time(); con.execute(f"COPY (SELECT * FROM read_parquet('{big}') ORDER BY {o}) TO '/tmp/sh_plain.parquet' ({fmt})"); a=time.process_time()-t0
t0=time.process_time(); con.execute(f"COPY (SELECT *, {shadow} FROM read_parquet('{big}') ORDER BY {o}) TO '/tmp/sh_shadow.parquet' ({fmt})"); b=time.process_time()-t0
print('copy cpu s', round(a,2), round(b,2), 'bytes', os.path.getsize('/tmp/sh_plain.parquet'), os.path.getsize('/tmp/sh_shadow.parquet'))
lo=int(DAY[0].timestamp()); hi=int(DAY[1].timestamp())
shsql=sql
for c in nested: shsql=shsql.replace(f'"{c}" := "{c}"', f'"{c}" := "_json_{c}"::JSON')
def t(q,p,n=30):
    for _ in range(3): r=con.execute(q,p).fetchall()
    s=time.process_time()
    for _ in range(n): con.execute(q,p).fetchall()
    return round((time.process_time()-s)*1000/n,2), r
for ns,act in (('shop','deny'),('shop','allow')):
    key="SELECT end_time, _seq FROM read_parquet(?) WHERE cluster='cluster' AND end_time>=? and end_time<=? and source_namespace=? AND action=? ORDER BY end_time DESC, _seq DESC LIMIT 100"
    for rnd in range(2):
        out=[]
        for p,q in (('/tmp/sh_plain.parquet',sql),('/tmp/sh_shadow.parquet',shsql)):
            rows=con.execute(key,[[p],lo,hi,ns,act]).fetchall(); seqs=[r[1] for r in rows]
            ms, res = t(q,[[p],min(seqs),max(seqs),seqs,'cluster',lo,hi,ns,act])
            out.append((ms, sorted(res)))
        print(ns, act, out[0][0], out[1][0], 'same docs', out[0][1]==out[1][1])
