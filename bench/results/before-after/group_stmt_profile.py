# branch s14-stmt (issue 25 item 2): an experiment on the group statement of 32 x 20 flows, one DuckDB thread, thread CPU ms; run with PYTHONPATH=SRC (the cache of fleet_fixed_ab.py); figures in group-stmt-s14.txt and README.md
import pickle, json, shutil
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, GROUP_CLUSTER
from margay.ingest import group as G
from margay.ingest.keyscan import count_records
from margay.store.duckdb.engine import connect
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:20])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
conv = Converter(con.cursor, Path("/tmp/s14/prof")); plan = conv.plan(REGISTRY["flows"])
bodies = [b for _, b in batches]; ends = []; n = 0
for _, b in batches: n += count_records(b); ends.append(n)
T = plan.arrow.table(bodies).append_column(GROUP_CLUSTER, G._cluster_column(batches, ends))
cur = con.cursor()
cur.register("v1", T)
cur.execute("PRAGMA enable_profiling='json'"); cur.execute("PRAGMA profiling_mode='detailed'"); cur.execute("PRAGMA profiling_output='/tmp/s14/prof.json'")
for i in range(5):
    cur.execute(f"COPY (SELECT {plan.grouped_arrow} FROM v1) TO '/tmp/s14/p.parquet' (FORMAT parquet, COMPRESSION snappy)", [datetime.now(UTC), 0]).fetchall()
p = json.load(open('/tmp/s14/prof.json'))
def walk(d, depth=0):
    for k, v in d.items():
        if isinstance(v, (int, float)) and v > 0.0001 and ('timing' in k or 'time' in k or 'optimizer' in k or 'planner' in k): print(k, round(v*1000, 3) if isinstance(v,float) else v)
walk(p)
def ops(node, depth=0):
    print("  "*depth, node.get("operator_name", node.get("operator_type")), round(node.get("operator_timing",0)*1000,3), node.get("operator_cardinality"))
    for c in node.get("children", []): ops(c, depth+1)
for c in p.get("children", []): ops(c)
print(p.keys())
