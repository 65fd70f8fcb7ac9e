"""One group's conversion, one file per cluster (PARTITION_BY, the old group commit) against one file for the
group (the new), in-process on one thread, thread CPU per batch, over the first 192 flows batches of the fleet's
1,000-cluster dealing (~150 flows each) in groups of 1, 4, 21 and 64 batches.

Usage: .venv/bin/python bench/results/before-after/fleet_group_file_copy.py (batches cached by fleet_fixed_ab.py)."""
import pickle, time, shutil
from pathlib import Path
from datetime import datetime, UTC
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter, _READ
from margay.ingest.output import write_split, sql_path, file_facts
from margay.store.duckdb.engine import connect
batches = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == "flows"][:210]
con = connect(); con.execute("SET threads=1")
scr = Path("/tmp/fleet-fixed-ab/copyexp"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir()
conv = Converter(con.cursor, scr / "s")
lt = REGISTRY["flows"]; plan = conv.plan(lt)
for gsize in (1, 4, 21, 64):
    for mode in ("split", "one"):
        t0 = time.thread_time(); k = 0
        for i in range(0, 192, gsize):
            grp = batches[i:i + gsize]
            src = scr / "in.ndjson"; src.write_bytes(b"\n".join(b.body.rstrip(b"\n") for b in grp))
            clusters = [b.cluster for b in grp for _ in range(b.body.rstrip(b"\n").count(b"\n") + 1)]
            params = [clusters, datetime.now(UTC), 0, str(src), plan.columns, str(src)]
            select = f"SELECT {plan.grouped} FROM {_READ}"
            out = scr / f"o{mode}{gsize}-{k}"; k += 1
            if mode == "split":
                write_split(con.cursor(), select, params, out, "snappy")
            else:
                out.mkdir()
                con.execute(f"COPY ({select}) TO {sql_path(out / 'g.parquet')} (FORMAT parquet, COMPRESSION snappy)", params).fetchall()
                file_facts(out / 'g.parquet')
        dt = time.thread_time() - t0
        print(gsize, mode, "groups", k, "ms/batch", round(dt * 1000 / 192, 2), flush=True)
