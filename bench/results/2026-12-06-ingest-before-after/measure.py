"""Ingest server CPU before and after, on the same data, interleaved: `python measure.py BEFORE_SRC OUT.json`.

BEFORE_SRC is the `src` folder of the older commit (`git archive <commit> src | tar -x -C DIR`); the server of
each run is started with PYTHONPATH pointing at that code or at this checkout's, while the load generator is
the same. Each run posts gzip NDJSON flow batches with idempotency keys (as the bench's ingest scenario does)
to a fresh store: 10,000-record batches from 4 clients, and 10-record batches from 16 clients.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from margay.bench.data import Batch, flow_batches, topology
from margay.bench.targets import MargayTarget

LARGE = 100_000
SMALL = 20_000


def rebatch(batches: list[Batch], size: int, limit: int) -> list[Batch]:
    out: list[Batch] = []
    for b in batches:
        lines = [x for x in b.body.split(b"\n") if x.strip()]
        out += [Batch(b.log_type, b.cluster, b.day, b"\n".join(lines[i:i + size])) for i in range(0, len(lines), size)]
    return out[:limit // size]


def run(src: str | None, batches: list[Batch], clients: int, work: Path) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        os.environ["PYTHONPATH"] = src
    try:
        target = MargayTarget(work).start()
    finally:
        os.environ.clear()
        os.environ.update(env)
    try:
        cpu0 = target.cpu()
        n, seconds = target.ingest(batches, clients)
        cpu = target.cpu() - cpu0
    finally:
        target.stop()
    return {"records": n, "batches": len(batches), "cpu_s_per_million": round(cpu / n * 1e6, 2),
            "cpu_ms_per_batch": round(cpu / len(batches) * 1e3, 2), "records_per_s": round(n / seconds)}


def main() -> None:
    before, out = sys.argv[1], Path(sys.argv[2])
    after = str(Path(__file__).resolve().parents[3] / "src")
    large = list(flow_batches(topology(), LARGE))
    small = rebatch(large, 10, SMALL)
    work = Path(os.environ.get("MEASURE_WORK", "/tmp/margay-measure"))
    results: dict[str, list[dict[str, float]]] = {}
    for rnd in range(int(os.environ.get("ROUNDS", "2"))):
        for code, src in (("before", before), ("after", after)):
            for name, batches, clients in (("batch10000_4c", large, 4), ("batch10_16c", small, 16)):
                r = run(src, batches, clients, work / f"{code}-{name}")
                results.setdefault(f"{code}_{name}", []).append(r)
                print(rnd, code, name, r, flush=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": results},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
