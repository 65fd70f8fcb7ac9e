# branch s14-stmt (issue 25 item 2): an experiment on the group statement of 32 x 20 flows, one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py); figures in group-stmt-s14.txt and README.md
import pickle, sys, time, shutil, statistics, collections
from datetime import datetime, UTC
from pathlib import Path
import pyarrow as pa
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.output import sql_path
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:20])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/exp4"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); plan = conv.plan(REGISTRY["flows"])
now = datetime.now(UTC)
bodies = [b for _, b in batches]; ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
T = plan.arrow.table(bodies).append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
T2 = T.append_column("_gt", pa.array([now] * T.num_rows, pa.timestamp("us", "UTC"))).append_column("_gs", pa.array(range(1, T.num_rows + 1), pa.int64()))
sel2 = plan.grouped_arrow.replace("?::TIMESTAMPTZ", '"_gt"').replace("?::BIGINT + ordinality", '"_gs"')
cur = con.cursor(); out = scr / "o.parquet"
cur.register("v2", T2); cur.execute("CREATE TEMP TABLE g AS SELECT * FROM v2"); cur.execute("CREATE TEMP TABLE g0 AS SELECT * FROM v2 LIMIT 0"); cur.unregister("v2")
for t in ("g", "g0"):
    cur.execute(f"PREPARE c{t} AS COPY (SELECT {sel2} FROM {t}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)")
    cur.execute(f"PREPARE s{t} AS SELECT {sel2} FROM {t}")
V = {}
for t in ("g", "g0"):
    V[f"fresh copy {t}"] = (lambda t=t: cur.execute(f"COPY (SELECT {sel2} FROM {t}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)").fetchall())
    V[f"exec copy {t}"] = (lambda t=t: cur.execute(f"EXECUTE c{t}").fetchall())
    V[f"fresh select {t}"] = (lambda t=t: cur.execute(f"SELECT {sel2} FROM {t}").fetchall())
    V[f"exec select {t}"] = (lambda t=t: cur.execute(f"EXECUTE s{t}").fetchall())
    V[f"copy * {t}"] = (lambda t=t: cur.execute(f"COPY (SELECT * FROM {t}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)").fetchall())
    V[f"select * {t}"] = (lambda t=t: cur.execute(f"SELECT * FROM {t}").fetchall())
res = collections.defaultdict(list)
for rnd in range(5):
    for name, f in V.items():
        for _ in range(8):
            t = time.thread_time(); f(); res[name].append((time.thread_time() - t) * 1000)
for name, xs in res.items():
    xs.sort(); print(f"{name:20s} median {statistics.median(xs):6.2f} min {xs[0]:6.2f}")
