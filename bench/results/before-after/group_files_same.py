"""The files a side's converter writes for the same batches, kept for group_files_compare.py (branch s14-stmt): groups
of 32 batches x 20 and x 150 records of flows, DNS and kube audit from the fleet's quick set, and single batches
(a 200-flow one, the group's first batch, and a 10,000-flow one from the 10-cluster set), `now` and `_seq` fixed.

Usage: PYTHONPATH=SRC python bench/results/before-after/group_files_same.py OUT_DIR"""
import pickle, shutil, sys
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G
from margay.store.duckdb.engine import connect

out = Path(sys.argv[1]); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
small = pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb"))
large = pickle.load(open("/tmp/fleet-fixed-ab/batches-10.pkl", "rb"))
con = connect(); con.execute("SET threads = 1")
conv = Converter(con.cursor, out / "scratch")
now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
for kind in ("flows", "dns", "audit_kube"):
    src = [b for b in small if b.log_type == kind]
    for per in (20, 150):
        batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:32]]
        g = G.convert_group(conv, REGISTRY[kind], batches, now=now, seq_base=1000)
        for i, (day, path, rows, _) in enumerate(g.files):
            shutil.copy(path, out / f"group-{kind}-{per}-{i}-{day}.parquet")
        g.discard()
for name, body, cluster in (("single-flows-small", small[0].body, small[0].cluster),
                            ("single-flows-10k", b"\n".join([b for b in large if b.log_type == "flows"][0].body.split(b"\n")[:10000]), "c1")):
    r = Converter.convert(conv, REGISTRY["flows"], body, cluster=cluster, now=now, seq_base=5000)
    for i, (day, path, rows) in enumerate(r.files):
        shutil.copy(path, out / f"{name}-{i}-{day}.parquet")
    r.discard()
getattr(conv, "close", lambda: None)()  # (main's converter has no close)
