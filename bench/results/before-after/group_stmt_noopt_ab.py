# branch s14-stmt (issue 25 item 2): an experiment on the group statement of 32 x 20 flows, one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py); figures in group-stmt-s14.txt and README.md
import pickle, sys, time, shutil, statistics, json
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G
from margay.store.duckdb.engine import connect
kind, per, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:32]]
OPT = "common_subexpressions,expression_rewriter,join_order,projection_placement,unused_columns,column_lifetime,statistics_propagation,filter_pushdown,build_side_probe_side,duplicate_groups,outer_join_simplification,projection_pullup,common_subplan,compressed_materialization"
con = connect(); con.execute("SET threads = 1")
con2 = connect(); con2.execute("SET threads = 1"); con2.execute(f"SET GLOBAL disabled_optimizers = '{OPT}'")
scr = Path("/tmp/s14/noopt-ab"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
convs = {"base": Converter(con.cursor, scr / "a"), "noopt": Converter(con2.cursor, scr / "b")}
lt = REGISTRY[kind]; now = datetime.now(UTC)
res = {k: [] for k in convs}
for r in range(rounds + 1):
    for name, conv in (convs.items() if r % 2 else reversed(convs.items())):
        for _ in range(8):
            t = time.thread_time()
            G.convert_group(conv, lt, batches, now=now, seq_base=0).discard()
            if r: res[name].append((time.thread_time() - t) * 1000)
print(json.dumps({"type": kind, "per_batch": per, **{k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2)} for k, v in res.items()}}))
