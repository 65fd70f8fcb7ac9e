# session 15 (issue 25 item 2): group_stmt_options.py with row-group sizes, a bare `SELECT *` COPY and the SELECT alone; one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py)
import pickle, sys, time, shutil, statistics, re, collections
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.output import sql_path
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
kind = "flows"; per = int(sys.argv[1]) if len(sys.argv) > 1 else 20
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s15/exp"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); plan = conv.plan(REGISTRY[kind])
now = datetime.now(UTC)
bodies = [b for _, b in batches]; ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
T = plan.arrow.table(bodies).append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
print("rows", T.num_rows)
sel = plan.grouped_arrow
short = re.sub(r'("[a-z_0-9]+") AS \1', r'\1', sel)
print(len(sel), len(short))
cur = con.cursor()
curno = con.cursor()
OPT = "common_subexpressions,expression_rewriter,join_order,projection_placement,unused_columns,column_lifetime,statistics_propagation,filter_pushdown,build_side_probe_side,duplicate_groups,outer_join_simplification,projection_pullup,common_subplan,compressed_materialization"
curno.execute(f"SET disabled_optimizers = '{OPT}'")
out = scr / "o.parquet"
def copy(c, s, opts="COMPRESSION snappy"):
    def f():
        c.register("v1", T)
        c.execute(f"COPY (SELECT {s} FROM v1) TO {sql_path(out)} (FORMAT parquet, {opts})", [] if s == "*" else [now, 0]).fetchall()
        c.unregister("v1")
    return f
V = {"base": copy(cur, sel), "rg2048": copy(cur, sel, "COMPRESSION snappy, ROW_GROUP_SIZE 2048"),
     "rg640": copy(cur, sel, "COMPRESSION snappy, ROW_GROUP_SIZE 1024"),
     "star": copy(cur, "*"), "star_rg1024": copy(cur, "*", "COMPRESSION snappy, ROW_GROUP_SIZE 1024"),
     "select_only": (lambda: (cur.register("v1", T), cur.execute(f"SELECT {sel} FROM v1", [now, 0]).to_arrow_table(), cur.unregister("v1"))), "nodict": copy(cur, sel, "COMPRESSION snappy, DICTIONARY_SIZE_LIMIT 0"),
     "uncomp": copy(cur, sel, "COMPRESSION uncompressed"), "nobloom": copy(cur, sel, "COMPRESSION snappy, WRITE_BLOOM_FILTER false")}
res = collections.defaultdict(list)
for f in V.values(): f(); f()
for rnd in range(int(sys.argv[2]) if len(sys.argv) > 2 else 6):
    for name, f in V.items():
        for _ in range(8):
            t = time.thread_time(); f(); res[name].append((time.thread_time() - t) * 1000)
for name, xs in res.items():
    xs.sort(); print(f"{name:14s} median {statistics.median(xs):6.2f} q1 {xs[len(xs)//4]:6.2f} min {xs[0]:6.2f}")
