"""short SQL / disabled optimizers, interleaved, at a 32x20 group and a 10,000-flow batch."""
import pickle, sys, time, shutil, statistics, re, collections
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.output import sql_path, ArrowCursor, copy_arrow
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
big = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-10.pkl", "rb")) if b.log_type == "flows"]
bigbody = b"\n".join(big[0].body.rstrip(b"\n").split(b"\n")[:10000])
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:20])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/exp6"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); plan = conv.plan(REGISTRY["flows"])
now = datetime.now(UTC)
bodies = [b for _, b in batches]; ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
T = plan.arrow.table(bodies).append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
TB = plan.arrow.table([bigbody]); print("rows", T.num_rows, TB.num_rows)
short = lambda s: re.sub(r'("[a-z_0-9]+") AS \1', r'\1', s)
OPT = "common_subexpressions,expression_rewriter,join_order,projection_placement,unused_columns,column_lifetime,statistics_propagation,filter_pushdown,build_side_probe_side,duplicate_groups,outer_join_simplification,projection_pullup,common_subplan,compressed_materialization"
a = ArrowCursor(con.cursor()); b = ArrowCursor(con.cursor()); b.cur.execute(f"SET disabled_optimizers = '{OPT}'")
out = scr / "o.parquet"
import pyarrow.parquet as pq
V = {}
for tn, tab, sel, codec, params in (("group", T, plan.grouped_arrow, "snappy", [now, 0]), ("10k", TB, plan.lean, "zstd, COMPRESSION_LEVEL 1", ["c1", now, 0])):
    for name, ac, s in (("base", a, sel), ("short", a, short(sel)), ("noopt", b, sel), ("short+noopt", b, short(sel))):
        V[f"{tn} {name}"] = (lambda ac=ac, tab=tab, s=s, codec=codec, params=params: copy_arrow(ac, tab, s, out, codec, params))
    ref = None
    for k, f in V.items():
        if k.startswith(tn):
            f(); t = pq.read_table(out)
            if ref is None: ref = t
            assert t.equals(ref), k
res = collections.defaultdict(list)
for rnd in range(int(sys.argv[1])):
    for name, f in V.items():
        for _ in range(8 if name.startswith("group") else 2):
            t = time.thread_time(); f(); res[name].append((time.thread_time() - t) * 1000)
for name, xs in res.items():
    xs.sort(); print(f"{name:18s} median {statistics.median(xs):7.2f} q1 {xs[len(xs)//4]:7.2f} min {xs[0]:7.2f} n {len(xs)}")
