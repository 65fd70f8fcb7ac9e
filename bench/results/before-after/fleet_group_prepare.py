"""The group statement prepared once and executed again (issue 25 item 2, branch s12-fleet): the COPY with its
paths and columns as constants (what a prepared statement needs: DuckDB binds read_json's arguments at PREPARE),
the cluster a constant and `_seq`'s base the one parameter, fresh (`execute` with the parameter) against
`EXECUTE`, thread CPU, 12 turns each, for a group of 1 record and of 23 batches (the fleet's quick-sized flow
batches at 1,000 clusters, fleet_fixed_ab.py's cache). Equal figures mean DuckDB binds again on EXECUTE.

Usage: .venv/bin/python bench/results/before-after/fleet_group_prepare.py"""
import time, shutil, pickle
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import _READ, _READ_TYPED, plan_for
from margay.ingest.output import sql_path
from margay.store.duckdb.engine import connect
lt = REGISTRY["flows"]; plan = plan_for(lt)
batches = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"]
d = Path("/tmp/fleet-group-prepare"); shutil.rmtree(d, ignore_errors=True); d.mkdir()
con = connect(); con.execute("SET threads = 1"); cur = con.cursor()
now = datetime.now(UTC)
read = _READ if plan.lean_raw else _READ_TYPED
fsrc = d / "in.ndjson"; out = d / "out.parquet"
cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in plan.columns.items()) + "}"
rd = read.replace("read_json(?,", "read_json(" + sql_path(fsrc) + ",", 1).replace("columns=?", "columns=" + cols, 1)
sel = plan.grouped_lean.replace("(?::VARCHAR[])[ordinality]", "'c'").replace("?::TIMESTAMPTZ", "now()::TIMESTAMPTZ").replace("?::BIGINT", "$1::BIGINT")
for k in (1, 23):
    fsrc.write_bytes(b"\n".join(b.body for b in batches[:k]) if k > 1 else batches[0].body.split(b"\n")[0])
    cur.execute(f"PREPARE g{k} AS COPY (SELECT {sel} FROM {rd}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)")
    res = {"fresh": [], "prepared": []}
    for _ in range(12):
        t = time.thread_time(); cur.execute(f"COPY (SELECT {sel.replace('$1', '?')} FROM {rd}) TO {sql_path(out)} (FORMAT parquet, COMPRESSION snappy)", [0]).fetchall(); res["fresh"].append(time.thread_time() - t)
        t = time.thread_time(); cur.execute(f"EXECUTE g{k}(0)").fetchall(); res["prepared"].append(time.thread_time() - t)
    for n, xs in res.items():
        xs.sort(); print(k, n, f"median {xs[6]*1000:.2f} min {xs[0]*1000:.2f}")
