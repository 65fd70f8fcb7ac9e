"""Ingest CPU per batch at 1,000 clusters (quick-sized data dealt by flow), 4 vs 32 senders, interleaved.

Usage: .venv/bin/python bench/results/before-after/fleet_senders.py (stores under /tmp/f2prof/c-<senders>)."""
import json, sys
from itertools import chain, islice
from pathlib import Path
from margay.bench import fleet as F
from margay.bench.data import flow_batches, other_batches, topology
from margay.bench.targets import MargayTarget

topo = topology()
batches = list(F.fleet_batches(chain(flow_batches(topo, 150_000), F.by_type(other_batches(topo, 24))), 1000))
for rep, clients in enumerate([4, 32, 4, 32]):
    t = MargayTarget(Path(f"/tmp/f2prof/c-{clients}")).start()
    try:
        cpu = 0.0; sent = 0; wall = 0.0
        for i in range(0, len(batches), 256):
            c0 = t.cpu()
            n, w = t.ingest(batches[i:i + 256], clients)
            cpu += t.cpu() - c0; sent += n; wall += w
        print(json.dumps({"rep": rep, "clients": clients, "batches": len(batches), "records": sent,
                          "cpu_s": round(cpu, 2), "cpu_ms_per_batch": round(cpu * 1000 / len(batches), 2),
                          "wall_s": round(wall, 1)}), flush=True)
    finally:
        t.stop()
