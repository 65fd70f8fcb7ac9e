"""The scale scenario's memory (quick: 300,000 flows ending now) with one harness, this worktree's, against a
server of any commit: `SERVER_SRC` is put on the server's PYTHONPATH only, so old and new code are loaded,
settled and rendered the same way (959394d's own bench does not wait for the cold merge). Prints one JSON row
(appended to --out): the server's VmHWM after the ingest, after settling and after the UI pages; its CPU and
the wall time of the ingest (records/s), and its CPU while settling.

    PYTHONPATH=src .venv/bin/python bench/results/before-after/scale_ab.py SERVER_SRC --out F --work-dir D
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from margay.bench.data import flow_batches, topology
from margay.bench.harness import cpu_seconds, peak_rss_mib
from margay.bench.targets import MargayTarget
from margay.rig import children
from margay.web import bench as ui_bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server_src", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--records", type=int, default=300_000)
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
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    row: dict[str, Any] = {"server_src": str(src), "commit": commit + ("+dirty" if dirty else ""),
                           "at": now.isoformat(timespec="seconds"), "load_before": os.getloadavg()[0]}
    target = MargayTarget(args.work_dir / f"scale-{os.getpid()}").start()
    try:
        gen = flow_batches(topology(), args.records, end=end)
        loaded, cpu0, t0 = 0, cpu_seconds(target.pid), time.perf_counter()
        while part := list(islice(gen, 16)):
            loaded += target.ingest(part, 2)[0]
        wall = time.perf_counter() - t0
        row.update(records=loaded, ingest_cpu_s=round(cpu_seconds(target.pid) - cpu0, 2),
                   ingest_seconds=round(wall, 2), ingest_rps=round(loaded / wall),
                   rss_peak_after_ingest_mib=round(peak_rss_mib(target.pid), 1))
        cpu0 = cpu_seconds(target.pid)
        target.settle()
        row.update(settle_cpu_s=round(cpu_seconds(target.pid) - cpu0, 2),
                   rss_peak_after_settle_mib=round(peak_rss_mib(target.pid), 1))
        ui = ui_bench(target.url, None, time_range="now-24h", runs=3, cpu=target.cpu)
        row.update({f"ui_{k}": v for k, v in ui.items() if isinstance(v, int | float)})
        row["scale_rss_peak_mib"] = round(peak_rss_mib(target.pid), 1)
    finally:
        target.stop()
    row["load_after"] = os.getloadavg()[0]
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
