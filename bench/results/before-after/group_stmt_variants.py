# branch s14-stmt (issue 25 item 2): an experiment on the group statement of 32 x 20 flows, one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py); figures in group-stmt-s14.txt and README.md
import pickle, sys, time, shutil, statistics, uuid
from datetime import datetime, UTC
from pathlib import Path
import pyarrow.parquet as pq, pyarrow as pa
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.output import sql_path, file_facts
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
kind = "flows"
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:20])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/exp1"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr)
lt = REGISTRY[kind]; plan = conv.plan(lt)
now = datetime.now(UTC)
bodies = [b for _, b in batches]
ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
cur = con.cursor()
def table():
    t = plan.arrow.table(bodies)
    return t.append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
T = table()
out = scr / "o.parquet"
def run(name, f, reps=30):
    xs = []
    for i in range(reps + 3):
        t = time.thread_time(); f(); dt = time.thread_time() - t
        if i >= 3: xs.append(dt * 1000)
    xs.sort(); print(f"{name:40s} median {statistics.median(xs):6.2f} min {xs[0]:6.2f}", flush=True)
def reg():
    cur.register("v1", T); cur.unregister("v1")
sel = plan.grouped_arrow
def copy(opts="COMPRESSION snappy"):
    def f():
        cur.register("v1", T)
        cur.execute(f"COPY (SELECT {sel} FROM v1) TO {sql_path(out)} (FORMAT parquet, {opts})", [now, 0]).fetchall()
        cur.unregister("v1")
    return f
def select_arrow():
    cur.register("v1", T)
    r = cur.execute(f"SELECT {sel} FROM v1", [now, 0]).to_arrow_table()
    cur.unregister("v1")
    return r
R = select_arrow()
def pqw(**kw):
    def f():
        r = select_arrow()
        pq.write_table(r, out, **kw)
    return f
def explain():
    cur.register("v1", T)
    cur.execute(f"EXPLAIN SELECT {sel} FROM v1", [now, 0]).fetchall()
    cur.unregister("v1")
def limit0():
    cur.register("v1", T)
    cur.execute(f"SELECT {sel} FROM v1 LIMIT 0", [now, 0]).to_arrow_table()
    cur.unregister("v1")
which = sys.argv[1:] or ["all"]
run("parse+table", table)
run("register+unregister", reg)
run("select limit 0 -> arrow", limit0)
run("select -> arrow", select_arrow)
run("COPY snappy (now)", copy())
run("COPY uncompressed", copy("COMPRESSION uncompressed"))
run("COPY snappy dict limit 0", copy("COMPRESSION snappy, DICTIONARY_SIZE_LIMIT 0"))
run("COPY snappy rgs 100000", copy("COMPRESSION snappy, ROW_GROUP_SIZE 100000"))
run("COPY snappy V2", copy("COMPRESSION snappy, PARQUET_VERSION V2"))
for o in ["WRITE_BLOOM_FILTER false", "BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.5", "STRING_DICTIONARY_PAGE_SIZE_LIMIT 1"]:
    try: run("COPY snappy " + o, copy("COMPRESSION snappy, " + o))
    except Exception as e: print(o, "ERR", str(e)[:100])
run("footer read", lambda: file_facts(out))
run("COPY select * (no checks)", lambda: (cur.register("v1", T), cur.execute(f"COPY (SELECT * FROM v1) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)").fetchall(), cur.unregister("v1")))
run("COPY limit 0", copy2 := (lambda: (cur.register("v1", T), cur.execute(f"COPY (SELECT {sel} FROM v1 LIMIT 0) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", [now, 0]).fetchall(), cur.unregister("v1"))))
run("extract_statements", lambda: cur.extract_statements(f"COPY (SELECT {sel} FROM v1) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)"))
run("select->arrow + pq snappy", pqw(compression="snappy"))
run("select->arrow + pq snappy nostats", pqw(compression="snappy", write_statistics=False))
run("select->arrow + pq none", pqw(compression="none"))
run("pq write only", lambda: pq.write_table(R, out, compression="snappy"))
