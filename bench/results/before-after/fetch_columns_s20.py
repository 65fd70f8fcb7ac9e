"""Session 20: where the denied page's document fetch spends its time, by column: the fetch statement as reader.py runs
it on a settled 2 M-flow day (peers_ab.py load), then with each list column (and all of them) rendered as NULL
instead of decoded. One thread, 40 runs after 3. Usage: python fetch_columns_s20.py DAY_FOLDER FETCH_SQL_FILE."""
import duckdb, time, glob, re
from margay.bench.peers import DAY
import sys
files=[f for f in sorted(glob.glob(sys.argv[1] + '/*.parquet')) if 'rollup' not in f]
sql=open(sys.argv[2]).read().replace('----- ','').strip()
con=duckdb.connect(); con.execute("set threads=1"); con.execute("SET parquet_metadata_cache=true"); con.execute("SET TimeZone='UTC'")
lo=int(DAY[0].timestamp()); hi=int(DAY[1].timestamp())
key = """SELECT end_time, _seq FROM read_parquet(?) WHERE cluster='cluster' AND end_time>=? and end_time<=? and source_namespace='shop' AND action='deny' ORDER BY end_time DESC, _seq DESC LIMIT 100"""
rows = con.execute(key,[files,lo,hi]).fetchall()
seqs=[r[1] for r in rows]
p=[files,min(seqs),max(seqs),seqs,'cluster',lo,hi,'shop','deny']
def t(q,n=40):
    for _ in range(3): r=con.execute(q,p).fetchall()
    s=time.process_time()
    for _ in range(n): con.execute(q,p).fetchall()
    return round((time.process_time()-s)*1000/n,2)
lists=['source_labels','dest_labels','dest_domains','policies','process_args','nat_outgoing_ports','original_source_ips','source_ips','dest_ips']
def nul(q, cols):
    for c in cols: q=q.replace(f'"{c}" := "{c}"', f'"{c}" := NULL')
    return q
print('as is', t(sql))
print('no lists', t(nul(sql, lists)))
for c in lists: print(c, t(nul(sql,[c])))
print('only seq', t(re.sub(r'to_json\(struct_pack\(.*\)\) FROM', '1 FROM', sql)))
