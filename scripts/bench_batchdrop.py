"""Retention of a shared day, cluster by cluster against all at once (issue #25): CPU-s and wall of the drop.

    .venv/bin/python scripts/bench_batchdrop.py --clusters 100 --rows 100000 --mode each|many [--repeat 3]

Builds a fresh store per run (ingest `rows` flows of one day over `clusters` clusters, merge them into one
shared file), then expires every cluster of that day but the first `keep` (a file whose clusters all go is
deleted outright; one kept cluster costs a rewrite): `each` calls `drop(partition)` per cluster (what
retention did before drop_many, and what the code before it can run: PYTHONPATH=<old checkout>/src), `many`
one `drop_many`. Prints one JSON line per run: cpu_s (process CPU, DuckDB's threads included), wall_s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from margay.logtypes import REGISTRY, SAMPLES
from margay.store.duckdb import DuckDBBackend

FLOWS = REGISTRY["flows"]
T0 = int(datetime(2023, 11, 14, 1, tzinfo=UTC).timestamp())
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def build(root: Path, clusters: int, rows: int) -> DuckDBBackend:
    store = DuckDBBackend(root, compact_interval=3600, compact_cold_after=0)
    base = orjson.loads(SAMPLES["flows"][0])
    per = rows // clusters
    for c in range(clusters):
        body = b"\n".join(orjson.dumps(dict(base, bytes_in=c * 1_000_000 + j, start_time=T0 + j % 80_000,
                                            end_time=T0 + j % 80_000 + 5, source_namespace=f"ns{j % 7}"))
                          for j in range(per))
        store.ingest(FLOWS, f"cluster-{c:04d}", body, key=None, now=NOW, respond=lambda _: {})
    store.compact()
    store.sweep_folders()
    return store


def run(clusters: int, rows: int, mode: str, keep: int) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory(prefix="batchdrop-") as tmp:
        store = build(Path(tmp), clusters, rows)
        shared = sum(1 for (_, c, _), fs in store.catalog.parts.items() if c == "_shared" for _ in fs)
        parts = store.partitions(FLOWS)[keep:]
        cpu, wall = time.process_time(), time.perf_counter()
        if mode == "each":
            removed = sum(store.drop(p) for p in parts)
        else:
            removed = sum(store.drop_many(parts).values())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert removed == rows // clusters * len(parts) and len(store.partitions()) == keep, removed
        store.close()
    return {"mode": mode, "clusters": clusters, "kept": keep, "rows": removed, "shared_files": shared,
            "cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--mode", choices=["each", "many"], default="many")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=int, default=0, help="clusters whose day does not expire (0: all expire)")
    a = ap.parse_args()
    if a.mode == "many" and not hasattr(DuckDBBackend, "drop_many"):
        raise SystemExit("this checkout has no drop_many")
    for _ in range(a.repeat):
        print(json.dumps(run(a.clusters, a.rows, a.mode, a.keep)), flush=True)


if __name__ == "__main__":
    main()
