"""In-process ingest CPU per batch: the fleet batches, K threads calling DuckDBBackend.ingest (no HTTP), and with
TIMED=1 the thread CPU of the group commit's parts (conversion, journal, fsyncs, footers).

Usage: TIMED=1 .venv/bin/python bench/results/before-after/fleet_fixed_inproc.py CLUSTERS THREADS REPS
(the batches cached by fleet_fixed_ab.py in /tmp/fleet-fixed-ab/; stores under /tmp/fleet-fixed-ab/inproc-N)."""
import pickle, sys, time, threading, shutil, json, hashlib, collections, os
from datetime import datetime, UTC
from pathlib import Path
from margay.logtypes import REGISTRY
from margay.store.duckdb import engine as E

if os.environ.get("GROUP_BELOW"): E.GROUP_BELOW = int(os.environ["GROUP_BELOW"])  # the engine's grouping threshold (E.SMALL_BATCH before GROUP_BELOW existed)
n = int(sys.argv[1]); clients = int(sys.argv[2]); reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
batches = pickle.load(open(f"/tmp/fleet-fixed-ab/batches-{n}.pkl", "rb"))
times = collections.defaultdict(float); counts = collections.Counter()
def timed(obj, name):
    f = getattr(obj, name)
    def w(*a, **k):
        t = time.thread_time()
        try: return f(*a, **k)
        finally: times[name] += time.thread_time() - t; counts[name] += 1
    setattr(obj, name, w)
if os.environ.get("TIMED"):
    import margay.store.duckdb.combiner as C, margay.ingest.group as G, margay.ingest.output as O
    timed(C, "convert_group"); timed(C.Combiner, "_journal"); timed(C, "fsync_path"); timed(E, "fsync_path")
    timed(O.pq, "read_metadata")
    import margay.store.journal as J; timed(J, "fsync_dir"); timed(J.Journal, "append"); timed(J, "apply_moves")
for rep in range(reps):
    d = Path(f"/tmp/fleet-fixed-ab/inproc-{n}"); shutil.rmtree(d, ignore_errors=True)
    b = E.DuckDBBackend(d, compact_interval=3600)
    todo = list(batches); lock = threading.Lock(); stored = [0]
    def respond(conv):
        return {"total": conv.total, "succeeded": conv.succeeded, "failed": conv.failed_lines, "errors": [e.as_dict() for e in conv.errors]}
    def worker():
        while True:
            with lock:
                if not todo: return
                x = todo.pop(0)
            key = hashlib.blake2b(x.body, digest_size=16).hexdigest()
            r, _ = b.ingest(REGISTRY[x.log_type], x.cluster, x.body, key=key, now=datetime.now(UTC), respond=respond)
            with lock: stored[0] += r["succeeded"]
    c0 = time.process_time(); w0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(clients)]
    [t.start() for t in ts]; [t.join() for t in ts]
    cpu = time.process_time() - c0; wall = time.perf_counter() - w0
    st = b.stats()
    print(json.dumps({"clusters": n, "clients": clients, "batches": len(batches), "stored": stored[0], "cpu_s": round(cpu, 2),
                      "cpu_ms_per_batch": round(cpu * 1000 / len(batches), 2), "wall_s": round(wall, 1),
                      "groups": b.combiner.groups, "grouped": b.combiner.grouped, "files": st["files"], "folders": st["folders"]}), flush=True)
    if times:
        print({k: (round(v, 2), counts[k]) for k, v in times.items()}); times.clear(); counts.clear()
    b.close()
