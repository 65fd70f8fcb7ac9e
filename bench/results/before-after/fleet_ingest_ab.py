"""The fleet scenario's ingest alone (issue 25's 1.3x target), with each batch's latency and the hot day's reads.

The `fleet` scenario's records and dealing (margay.bench.fleet: full mode, 3,000,000 flows and 7 days of DNS and
audit, one batch per cluster, type and day, 256 batches per call from 32 senders), into a fresh server whose code
is the `margay` on PYTHONPATH (so `PYTHONPATH=/tmp/fleet-main/src python ...` runs main's server); no settle and
none of the scenario's questions but three over the hot last day, asked at once after the load while the day is
still hot (the store's cold-after is 60 s): the search page (24 h), the top destinations (7 d), the flow graph
(24 h), all clusters, 5 runs after a warm-up (the compactor may be merging older, cold days meanwhile).

Usage: PYTHONPATH=SRC .venv/bin/python bench/results/before-after/fleet_ingest_ab.py WORK_DIR CLUSTERS [FLOWS]
Prints one JSON line: server CPU-s per million records over the load, CPU-ms per batch, the 2xx latencies'
p50/p95 (ms, per request as a sender saw it), files and folders at the end of the load, the hot reads."""
import gzip, hashlib, json, sys, threading, time
from itertools import chain, islice
from pathlib import Path

import httpx

import margay
from margay.bench import fleet as F
from margay.bench.data import flow_batches, other_batches, topology
from margay.bench.harness import percentile
from margay.bench.targets import MargayTarget
from margay.logtypes import REGISTRY

work, clusters = Path(sys.argv[1]), int(sys.argv[2])
flows = int(sys.argv[3]) if len(sys.argv) > 3 else 3_000_000
target = MargayTarget(work / f"fleet-{clusters}").start()
lat: list[float] = []


def send_all(part):
    todo = [(b, gzip.compress(b.body, 1)) for b in part]
    lock = threading.Lock()
    sent = [0]

    def worker():
        with httpx.Client(base_url=target.url, timeout=600, verify=False) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    b, gz = todo.pop(0)
                key = hashlib.blake2b(b.body, digest_size=16).hexdigest()
                t0 = time.perf_counter()
                r = http.post("/api/v1" + REGISTRY[b.log_type].bulk_path, content=gz,
                              headers={"content-type": "application/x-ndjson", "content-encoding": "gzip",
                                       "x-cluster-id": b.cluster, "idempotency-key": f"bench-{key}"})
                r.raise_for_status()
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    lat.append(dt)
                    sent[0] += int(r.json()["succeeded"])

    threads = [threading.Thread(target=worker) for _ in range(F.CLIENTS)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return sent[0]


try:
    topo = topology()
    source = F.fleet_batches(chain(flow_batches(topo, flows), F.by_type(other_batches(topo, 24 * 7))), clusters)
    sent = batches = 0
    cpu = 0.0
    t0 = time.perf_counter()
    while part := list(islice(source, 256)):
        c0 = target.cpu()
        sent += send_all(part)
        cpu += target.cpu() - c0
        batches += len(part)
    wall = time.perf_counter() - t0
    folders, files = target.folders()
    out = {"margay": str(Path(margay.__file__).parent), "clusters": clusters, "records": sent, "batches": batches,
           "ingest_wall_s": round(wall, 1), "ingest_cpu_s": round(cpu, 2),
           "cpu_s_per_million": round(cpu / sent * 1e6, 2), "cpu_ms_per_batch": round(cpu * 1000 / batches, 2),
           "latency_p50_ms": round(percentile(lat, 0.5), 1), "latency_p95_ms": round(percentile(lat, 0.95), 1),
           "folders_at_end": folders, "files_at_end": files}
    qs = F.questions()
    with httpx.Client(base_url=target.url, timeout=600) as http:
        for name in ("search", "topdest", "flowgraph"):
            qs[name](http)
            walls = []
            c0 = target.cpu()
            for _ in range(5):
                t1 = time.perf_counter()
                qs[name](http)
                walls.append((time.perf_counter() - t1) * 1000)
            out[f"hot_{name}_p50_ms"] = round(percentile(walls, 0.5), 1)
            out[f"hot_{name}_cpu_ms"] = round((target.cpu() - c0) * 1000 / 5, 1)
    out["hot_reads_s_after_load"] = round(time.perf_counter() - t0 - wall, 1)
    print(json.dumps(out), flush=True)
finally:
    target.stop()
