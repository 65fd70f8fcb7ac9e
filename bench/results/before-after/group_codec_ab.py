"""A group's statement with data pages V1 against V2 (ingest/group.py's GROUP_CODEC), taking turns in one process:
`convert_group` on a one-thread DuckDB, thread CPU, ms a group of 32 batches x PER records of TYPE (the fleet's
quick set at 1,000 clusters, fleet_fixed_ab.py's cache), ROUNDS rounds of 8 groups each way.

Usage: PYTHONPATH=SRC python bench/results/before-after/group_codec_ab.py TYPE PER ROUNDS"""
import pickle, sys, time, shutil, statistics, json
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.ingest.parse import Converter
from margay.ingest import group as G
from margay.store.duckdb.engine import connect

kind, per, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = [b for b in pickle.load(open("/tmp/fleet-fixed-ab/batches-1000.pkl", "rb")) if b.log_type == kind]
batches = [(b.cluster, b"\n".join(b.body.rstrip(b"\n").split(b"\n")[:per])) for b in src[:32]]
con = connect(); con.execute("SET threads = 1")
scr = Path("/tmp/s14/codec-ab"); shutil.rmtree(scr, ignore_errors=True); scr.mkdir(parents=True)
conv = Converter(con.cursor, scr); lt = REGISTRY[kind]; now = datetime.now(UTC)
codecs = {"V1": "snappy", "V2": "snappy, PARQUET_VERSION V2"}
res = {k: [] for k in codecs}
for r in range(rounds + 1):
    for name, codec in (codecs.items() if r % 2 else reversed(codecs.items())):
        G.GROUP_CODEC = codec
        for _ in range(8):
            t = time.thread_time()
            G.convert_group(conv, lt, batches, now=now, seq_base=0).discard()
            if r:
                res[name].append((time.thread_time() - t) * 1000)
print(json.dumps({"type": kind, "per_batch": per, **{k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2)}
                                                    for k, v in res.items()}}))
