"""(Runs against commit 626ec9e, which had ARROW_DISABLED_OPTIMIZERS; reverted in d48dccb.) The Arrow statements planned with and without output.ARROW_DISABLED_OPTIMIZERS, taking turns in one process:
`convert_group` (and, for `single`, `Converter.convert` of one 10,000-flow batch) on a one-thread DuckDB, thread
CPU, ms, ROUNDS rounds of 8 (2 for single) each way (branch s14-stmt).

Usage: PYTHONPATH=SRC python bench/results/before-after/arrow_noopt_ab.py TYPE PER ROUNDS  (PER=single: one big batch)"""
import pickle, sys, time, shutil, statistics, json
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G, output as O
from margay.store.duckdb.engine import connect

kind, per, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/arrow-noopt-ab"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
lt = REGISTRY[kind]; now = datetime.now(UTC)
FEWER = O.ARROW_DISABLED_OPTIMIZERS
convs = {name: Converter(con.cursor, scr / name.replace(" ", "-")) for name in ("optimized", "fewer optimizers")}
if per == "single":
    big = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-10.pkl", "rb")) if b.log_type == kind][0]
    body = b"\n".join(big.body.split(b"\n")[:10000])
    run = lambda conv: conv.convert(lt, body, cluster="c1", now=now, seq_base=0).discard()
    turns = 2
else:
    src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
    batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:int(per)])) for b in src[:32]]
    run = lambda conv: G.convert_group(conv, lt, batches, now=now, seq_base=0).discard()
    turns = 8
for name, conv in convs.items():  # each converter's first cursor made (and its view registered) with its setting
    O.ARROW_DISABLED_OPTIMIZERS = "" if name == "optimized" else FEWER  # read as the view is registered
    run(conv)
O.ARROW_DISABLED_OPTIMIZERS = FEWER
res = {k: [] for k in convs}
for r in range(rounds):
    for name, conv in (convs.items() if r % 2 else reversed(convs.items())):
        for _ in range(turns):
            t = time.thread_time(); run(conv); res[name].append((time.thread_time() - t) * 1000)
print(json.dumps({"type": kind, "per_batch": per, **{k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2)} for k, v in res.items()}}))
