# branch s14-stmt (issue 25 item 2): an experiment on the group statement of 32 x 20 flows, one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py); figures in group-stmt-s14.txt and README.md
import pickle, sys, time, shutil, statistics, collections, threading
from datetime import datetime, UTC
from pathlib import Path
import pyarrow as pa
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.output import sql_path, file_facts
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:20])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/exp5"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); plan = conv.plan(REGISTRY["flows"])
now = datetime.now(UTC)
bodies = [b for _, b in batches]; ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
T = plan.arrow.table(bodies).append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
sel = plan.grouped_arrow
cur = con.cursor(); out = scr / "o.parquet"
class Holder:
    table = None
    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)
h = Holder(); h.table = T
cur.register("vh", h)
def base():
    cur.register("v1", T)
    cur.execute(f"COPY (SELECT {sel} FROM v1) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", [now, 0]).fetchall()
    cur.unregister("v1")
def holder():
    h.table = T
    cur.execute(f"COPY (SELECT {sel} FROM vh) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", [now, 0]).fetchall()
    h.table = None
def repl():
    tbl_arrow_x = T
    cur.execute(f"COPY (SELECT {sel} FROM tbl_arrow_x) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", [now, 0]).fetchall()
def nocopy_cursor():
    c = con.cursor(); c.close()
V = {"base": base, "holder": holder, "replacement": repl, "cursor open/close": nocopy_cursor,
     "cluster_column": lambda: G._cluster_column(batches, ends), "file_facts": lambda: file_facts(out),
     "reg/unreg": lambda: (cur.register("v1", T), cur.unregister("v1"))}
base(); holder()
import pyarrow.parquet as pq
a = pq.read_table(out); base(); b = pq.read_table(out); assert a.equals(b)
res = collections.defaultdict(list)
for rnd in range(5):
    for name, f in V.items():
        for _ in range(8):
            t = time.thread_time(); f(); res[name].append((time.thread_time() - t) * 1000)
for name, xs in res.items():
    xs.sort(); print(f"{name:20s} median {statistics.median(xs):6.2f} min {xs[0]:6.2f}")
