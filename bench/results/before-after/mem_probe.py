"""In-process: the ingest scenario's 40,834 flows into a fresh DuckDBBackend from N threads; VmHWM and each
engine's DuckDB memory (duckdb_memory()) after, and the peak of a 20 ms RSS sampler."""
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from margay.bench.data import flow_batches, topology
from margay.logtypes import REGISTRY
from margay.store.duckdb import DuckDBBackend

clients = int(sys.argv[1])
batches = list(flow_batches(topology(), 40_000))
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
def hwm():
    for l in open("/proc/self/status"):
        if l.startswith("VmHWM"): return int(l.split()[1]) / 1024
peak = [0.0]; stop = threading.Event()
def sampler():
    while not stop.is_set():
        peak[0] = max(peak[0], rss()); time.sleep(0.02)
with tempfile.TemporaryDirectory(dir="/tmp/mab") as tmp:
    be = DuckDBBackend(Path(tmp) / "data")
    base = rss()
    t = threading.Thread(target=sampler); t.start()
    def one(b):
        return be.ingest(REGISTRY[b.log_type], b.cluster, b.body, key=None, now=datetime.now(UTC), respond=lambda c: {"ok": c.succeeded})
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, batches))
    stop.set(); t.join()
    mem = {}
    for name in ("con", "ingest_con", "compact_con"):
        c = getattr(be, name)
        try:
            mem[name] = round(c.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] / 2**20, 1)
        except Exception as e:
            mem[name] = str(e)[:60]
    print(json.dumps({"src": os.environ.get("PYTHONPATH"), "clients": clients, "batches": len(batches), "rss_base": round(base,1), "rss_peak_sampled": round(peak[0],1), "hwm": round(hwm(),1), "rss_end": round(rss(),1), "duckdb_mib": mem, "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX")}))
    be.close()
