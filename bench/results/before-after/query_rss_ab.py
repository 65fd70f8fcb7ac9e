"""The query scenario's memory (quick sizes) with one harness, this worktree's, against a server of any commit:
`SERVER_SRC` is put on the server's PYTHONPATH only, so old and new code are loaded, settled and queried the
same way (the query scenario's own steps: the other types, then the flows grown to each size and settled, then
its queries but `processes` (959394d has not that route), 2 warm-ups + `--runs` each). Prints one JSON row (appended to --out): the server's VmRSS and
VmHWM after each step, its CPU while loading (ingest + settle) and while querying.

    PYTHONPATH=src .venv/bin/python bench/results/before-after/query_rss_ab.py SERVER_SRC --out F --work-dir D
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from margay.bench.data import flow_batches, flow_start, other_batches, topology
from margay.bench.harness import cpu_seconds, peak_rss_mib
from margay.bench.scenarios import END, SIZES, _load, _size_label, _time
from margay.bench.targets import MargayTarget
from margay.rig import children


def _grow(target: Any, topo: Any, sizes: list[int]) -> Iterator[tuple[int, int]]:
    """The scenario's _grow without its count check: 959394d's server counts the stored flows otherwise
    (56,141 where 40,834 were sent); the count is reported instead."""
    loaded, end = 0, END
    for size in sizes:
        gen = flow_batches(topo, size - loaded, end=end)
        end = flow_start(topo, size - loaded, end)
        while part := list(islice(gen, 32)):
            loaded += _load(target, part)
        target.settle()
        yield size, loaded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server_src", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--idle", type=float, default=15.0, help="seconds idle after the queries, then RSS again")
    args = ap.parse_args()
    src = args.server_src.resolve()
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "."],
                           capture_output=True, text=True).stdout.strip()
    init = children.ServerProcess.__init__

    def server_init(self: Any, *a: Any, env: dict[str, str] | None = None, **kw: Any) -> None:
        init(self, *a, env={**(env or {}), "PYTHONPATH": str(src)}, **kw)

    children.ServerProcess.__init__ = server_init  # type: ignore[method-assign]
    now = datetime.now(UTC)
    row: dict[str, Any] = {"server_src": str(src), "commit": commit + ("+dirty" if dirty else ""),
                           "at": now.isoformat(timespec="seconds"), "load_before": os.getloadavg()[0]}
    target = MargayTarget(args.work_dir / f"query-{os.getpid()}").start()

    def mark(step: str) -> None:
        row[f"rss_{step}_mib"] = round(target.rss(), 1)
        row[f"hwm_{step}_mib"] = round(peak_rss_mib(target.pid), 1)

    try:
        mark("start")
        topo = topology()
        cpu0 = cpu_seconds(target.pid)
        _load(target, list(other_batches(topo, 6)))
        mark("other_types")
        load_cpu, query_cpu = cpu_seconds(target.pid) - cpu0, 0.0
        cpu0 = cpu_seconds(target.pid)
        for size, loaded in _grow(target, topo, SIZES["quick"]):
            label = _size_label(size)
            load_cpu += cpu_seconds(target.pid) - cpu0
            mark(f"settled_{label}")
            cpu0 = cpu_seconds(target.pid)
            for name, q in target.queries().items():
                if name != "processes":  # 959394d has no /api/v1/processes: left out for both codes
                    _time(q, target.url, args.runs)
            query_cpu += cpu_seconds(target.pid) - cpu0
            mark(f"queries_{label}")
            row[f"records_{label}"] = loaded
            row[f"stored_{label}"] = target.count("flows")
            cpu0 = cpu_seconds(target.pid)
        time.sleep(args.idle)
        mark("idle")
        row.update(load_cpu_s=round(load_cpu, 2), query_cpu_s=round(query_cpu, 2))
    finally:
        target.stop()
    row["load_after"] = os.getloadavg()[0]
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
