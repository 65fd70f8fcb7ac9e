"""Server CPU per request of the query scenario's five questions, old and new code on the same stored data.

    python cpu_per_query.py load WORK            # the query scenario's quick data (120 k flows + 6 h of the rest)
    python cpu_per_query.py measure WORK SRC     # `margay serve` from SRC (a checkout's src/) over WORK's data

CPU is the server process's user+system time from /proc, summed over `runs` requests of each question and
divided (the clock tick is 10 ms, so one request alone is too coarse); rounds interleave the questions.
"""

from __future__ import annotations

import json
import os
import sys
import time
from itertools import islice
from pathlib import Path

import httpx

from margay.bench.data import END, flow_batches, flow_start, other_batches, topology
from margay.bench.harness import cpu_seconds, percentile
from margay.bench.scenarios import _load
from margay.bench.targets import MargayTarget

try:
    from margay.rig.children import ServerProcess
except ImportError:  # 959394d's tree (PYTHONPATH=/tmp/old959/src for its own store's load)
    from margay.testing.server import ServerProcess  # type: ignore[no-redef]


def load(work: Path) -> None:
    topo = topology()
    target = MargayTarget(work).start()
    try:
        _load(target, list(other_batches(topo, 6)))
        end = END
        for size in (40_000, 80_000):  # the quick sizes, grown newest-first as the scenario does
            gen = flow_batches(topo, size, end=end)
            end = flow_start(topo, size, end)
            while part := list(islice(gen, 32)):
                _load(target, part)
        target.settle()
        print("flows stored:", target.count("flows"))
    finally:
        target.stop()


def measure(work: Path, src: Path, runs: int = 40, rounds: int = 3) -> dict[str, object]:
    server = ServerProcess(work / "data", "--config", str(work / "margay.yaml"),
                           env={"PYTHONPATH": str(src)}, log=work / f"measure-{src.parent.name}.log")
    server.start()
    target = MargayTarget.__new__(MargayTarget)
    target.server = server
    try:
        time.sleep(5)
        queries = target.queries()
        cpu: dict[str, list[float]] = {n: [] for n in queries}
        wall: dict[str, list[float]] = {n: [] for n in queries}
        with httpx.Client(base_url=server.url, timeout=600) as http:
            for name, q in list(queries.items()):
                try:
                    for _ in range(3):
                        q(http)
                except httpx.HTTPStatusError as exc:  # an older code without this endpoint (959394d: processes)
                    if exc.response.status_code != 404:
                        raise
                    del queries[name], cpu[name], wall[name]
            for _ in range(rounds):
                for name, q in queries.items():
                    before = cpu_seconds(server.proc.pid)  # type: ignore[union-attr]
                    for _ in range(runs):
                        started = time.perf_counter()
                        q(http)
                        wall[name].append((time.perf_counter() - started) * 1000)
                    cpu[name].append((cpu_seconds(server.proc.pid) - before) * 1000 / runs)  # type: ignore[union-attr]
        out: dict[str, object] = {"rounds": {n: [round(x, 2) for x in v] for n, v in cpu.items()}}
        for name in queries:
            out[f"cpu_ms_{name}"] = round(sorted(cpu[name])[len(cpu[name]) // 2], 2)
            out[f"wall_p50_ms_{name}"] = round(percentile(wall[name], 0.5), 2)
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(Path(sys.argv[2]))
    else:
        print(json.dumps({"src": sys.argv[3], "pid": os.getpid(),
                          **measure(Path(sys.argv[2]), Path(sys.argv[3]))}, indent=1))
