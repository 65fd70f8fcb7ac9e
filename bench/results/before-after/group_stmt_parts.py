"""A group commit's statement, part by part (issue 25 item 2, branch s14-stmt): a group of 32 batches x 20
records of one type from 32 clusters (the fleet's quick set at 1,000 clusters, fleet_fixed_ab.py's cache),
`convert_group` on a one-thread DuckDB cursor as the ingest pool runs it, thread CPU, median of REPS turns.

Usage: PYTHONPATH=SRC python bench/results/before-after/group_stmt_parts.py TYPE REPS [BATCHES PER_BATCH]"""
import pickle, sys, time, shutil, statistics, json
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G
from margay.store.duckdb.engine import connect

kind = sys.argv[1]; reps = int(sys.argv[2])
nb = int(sys.argv[3]) if len(sys.argv) > 3 else 32; per = int(sys.argv[4]) if len(sys.argv) > 4 else 20
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:nb]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/parts"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr)
lt = REGISTRY[kind]
now = datetime.now(UTC)
xs = []
for i in range(reps + 3):
    t = time.thread_time()
    g = G.convert_group(conv, lt, batches, now=now, seq_base=1000 * i)
    dt = time.thread_time() - t
    assert sum(p.succeeded for p in g.parts) == sum(b.count(b"\n") + 1 for _, b in batches), [p.errors for p in g.parts][:3]
    g.discard()
    if i >= 3:
        xs.append(dt * 1000)
xs.sort()
print(json.dumps({"type": kind, "batches": nb, "per_batch": per, "ms_median": round(statistics.median(xs), 2),
                  "ms_min": round(xs[0], 2), "ms_q1": round(xs[len(xs) // 4], 2), "ms_q3": round(xs[3 * len(xs) // 4], 2)}))
