"""Where the group statement's fixed cost goes (issue 25 item 2, branch s12-fleet): read_json over ONE flow record with
the plan's 63 typed columns, with fewer, with nested types as VARCHAR, with other maximum_object_size, against the
whole lean grouped SELECT; thread CPU, one DuckDB thread, 15 turns. Usage: .venv/bin/python THIS_FILE"""
import time, pickle
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import _READ, _READ_TYPED, plan_for
from margay.store.duckdb.engine import connect
lt = REGISTRY["flows"]; plan = plan_for(lt)
b = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"][0]
src = Path("/tmp/fleet-group-read-bind.ndjson"); src.write_bytes(b.body.split(b"\n")[0])
con = connect(); con.execute("SET threads = 1"); cur = con.cursor(); now = datetime.now(UTC)
read = _READ if plan.lean_raw else _READ_TYPED
print("lean_raw", plan.lean_raw, "select chars", len(plan.grouped_lean))
def t(name, sql, params):
    xs = []
    for _ in range(15):
        t0 = time.thread_time(); cur.execute(sql, params).fetchall(); xs.append(time.thread_time() - t0)
    xs.sort(); print(f"{name:45s} median {xs[7]*1000:6.2f} min {xs[0]*1000:6.2f} ms")
rp = [str(src), plan.columns] + ([str(src)] if read is _READ else [])
t("prepare-only: SELECT 1", "SELECT 1", [])
t("read typed only, *", f"SELECT * FROM {_READ_TYPED}", [str(src), plan.columns])
t("read + raw, *", f"SELECT * FROM {_READ}", [str(src), plan.columns, str(src)])
t("full select (lean grouped)", f"SELECT {plan.grouped_lean} FROM {read}", [["c"], now, 0] + rp)
t("full select (grouped, _extra)", f"SELECT {plan.grouped} FROM {_READ}", [["c"], now, 0, str(src), plan.columns, str(src)])
base = "read_json(?, columns=?, format='newline_delimited'{opt}) WITH ORDINALITY"
for opt in ["", ", maximum_object_size=4194305", ", maximum_object_size=65536", ", maximum_object_size=16384"]:
    t("typed * " + (opt or "default size"), f"SELECT * FROM {base.format(opt=opt)}", [str(src), plan.columns])
few = dict(list(plan.columns.items())[:5])
t("typed * 5 columns, 4MiB", f"SELECT * FROM {base.format(opt=', maximum_object_size=4194305')}", [str(src), few])
t("typed count(*) 4MiB", f"SELECT count(*) FROM {base.format(opt=', maximum_object_size=4194305')}", [str(src), plan.columns])
lit = "{" + ", ".join(f"'{k}': '{v}'" for k, v in plan.columns.items()) + "}"
t("typed count(*) columns literal", f"SELECT count(*) FROM read_json(?, columns={lit}, format='newline_delimited', maximum_object_size=4194305) WITH ORDINALITY", [str(src)])
t("typed * columns literal", f"SELECT * FROM read_json(?, columns={lit}, format='newline_delimited', maximum_object_size=4194305) WITH ORDINALITY", [str(src)])
nested = {k: v for k, v in plan.columns.items() if '(' in v or '[' in v}
print(len(plan.columns), "columns;", len(nested), "nested:", {k: v[:60] for k, v in nested.items()})
flat = {k: ("VARCHAR" if k in nested else v) for k, v in plan.columns.items()}
t("typed * nested as VARCHAR", f"SELECT * FROM {base.format(opt=', maximum_object_size=4194305')}", [str(src), flat])
