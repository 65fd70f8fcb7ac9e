"""Group conversion CPU by group shape (session 18): convert_group on one thread over the fleet cache's flows
(/tmp/fleet-fixed-ab/batches-1000.pkl, fleet_fixed_ab.py), batches x lines, median thread CPU-ms and us a record.
Usage: PYTHONPATH=src scale_s18.py TYPE"""
import pickle, sys, time, shutil, statistics
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G
from margay.store.duckdb.engine import connect
kind = sys.argv[1]
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
print("batches", len(src), "lines/batch", statistics.median(b.body.count(b"\n")+1 for b in src))
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s18/parts"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); lt = REGISTRY[kind]; now = datetime.now(UTC)
allines = [l for b in src for l in b.body.rstrip(b"\n").split(b"\n")]
print("lines", len(allines))
for nb, per in [(1,200),(5,200),(15,200),(30,200),(1,3000),(1,10000),(50,200),(1,20000)]:
    if nb*per > len(allines): continue
    batches = [(src[j].cluster, b"\n".join(allines[j*per:(j+1)*per])) for j in range(nb)]
    xs=[]
    for i in range(8):
        t=time.thread_time(); g=G.convert_group(conv, lt, batches, now=now, seq_base=10**6*i); dt=time.thread_time()-t; g.discard()
        if i>=2: xs.append(dt*1000)
    m=statistics.median(xs); print(f"{nb}x{per}: {m:.1f} ms, {m*1000/(nb*per):.2f} us/rec")
