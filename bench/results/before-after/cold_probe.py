"""The compactor's cold merge alone, in a process of its own: `prep DIR` stores the scale scenario's 300,000
flows (compactor idle); `merge DIR MiB [THREADS]` runs each (type, day)'s cross-cluster merge as the compactor
does (layout.py's COPY ... ORDER BY, then its roll-up) on an engine capped at MiB, and prints the VmHWM over
the RSS before, the CPU and the wall time. Nothing is moved: each merge's output is deleted."""
import json
import os
import sys
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from margay.bench.data import flow_batches, topology
from margay.logtypes import REGISTRY


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024


mode, d = sys.argv[1], Path(sys.argv[2])
from margay.store.duckdb import DuckDBBackend  # noqa: E402

if mode == "prep":
    be = DuckDBBackend(d, compact_interval=10**6)
    now = datetime.now(UTC)
    for b in flow_batches(topology(), 300_000, end=now):
        be.ingest(REGISTRY[b.log_type], b.cluster, b.body, key=None, now=now, respond=lambda c: {})
    be.close()
    sys.exit()
mib = int(sys.argv[3])
be = DuckDBBackend(d, compact_interval=10**6, memory_bytes=2 * mib << 20)
if len(sys.argv) > 4:
    be.compact_con.execute(f"SET threads = {int(sys.argv[4])}")
for stmt in filter(None, os.environ.get("PROBE_SETS", "").split(";")):  # settings tried on the compactor's engine
    be.compact_con.execute(stmt)
from margay.store.duckdb.layout import _groups  # noqa: E402

with be.catalog.lock:
    parts = {k: list(v) for k, v in be.catalog.parts.items()}
days: dict = {}
for key, files in parts.items():
    days.setdefault((key[0], key[2]), []).extend((key, f) for f in files)
r0, t0, c0 = status("VmRSS"), time.perf_counter(), os.times()
rows = 0
for (t, day), items in sorted(days.items()):
    for group in _groups(items, be.compact_target_rows):
        new, moves, _ = be._write_shared(REGISTRY[t], day, group)
        rows += new.rows
        for src, _ in moves:
            Path(src).unlink()
c1 = os.times()
print(json.dumps({"src": os.environ.get("PYTHONPATH"), "cap_mib": mib, "threads": sys.argv[4] if len(sys.argv) > 4 else 1,
                  "rows": rows, "sets": os.environ.get("PROBE_SETS"), "rss0": round(r0, 1), "hwm_delta": round(status("VmHWM") - r0, 1),
                  "cpu_s": round(c1.user + c1.system - c0.user - c0.system, 2),
                  "wall_s": round(time.perf_counter() - t0, 2)}))
be.close()
