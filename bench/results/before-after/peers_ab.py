"""Server CPU per question of the peers scenario's margay part (bench/peers.py: MargayPeer), old and new code on
the same stored data.

    python peers_ab.py load WORK [RECORDS]        # the sim variant's flows (100 k, quick), ingested and settled
    python peers_ab.py measure WORK SRC [ROUNDS]  # `margay serve` from SRC (a checkout's src/) over WORK's data

Each round asks every question 2 times untimed, then `runs` times, and divides the server process's CPU (user +
system from /proc, 10 ms ticks) by `runs`; the median of the rounds is reported, with each round's figure.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from margay.bench.data import flow_batches, topology
from margay.bench.harness import cpu_seconds
from margay.bench.peers import MargayPeer
from margay.bench.targets import MargayTarget
from margay.rig.children import ServerProcess


def load(work: Path, records: int) -> None:
    peer = MargayPeer(work).start()
    try:
        batches = list(flow_batches(topology(), records))
        n, _, cpu = peer.ingest(batches)
        peer.settle()
        print(json.dumps({"records": n, "stored": peer.count(), "ingest_cpu_s": round(cpu, 2),
                          "bytes_per_flow": round(peer.bytes_per_flow(), 2)}))
    finally:
        peer.stop()


def measure(work: Path, src: Path, rounds: int = 3, runs: int = 20) -> dict[str, object]:
    server = ServerProcess(work / "data", "--config", str(work / "margay.yaml"),
                           env={"PYTHONPATH": str(src)}, log=work / f"measure-{src.parent.name}.log")
    server.start()
    peer = MargayPeer.__new__(MargayPeer)
    peer.target = MargayTarget.__new__(MargayTarget)
    peer.target.server = server
    try:
        time.sleep(5)
        questions = peer.questions()
        cpu: dict[str, list[float]] = {n: [] for n in questions}
        for _ in range(rounds):
            for name, q in questions.items():
                for _ in range(2):
                    q()
                before = cpu_seconds(server.proc.pid)  # type: ignore[union-attr]
                for _ in range(runs):
                    q()
                cpu[name].append(round((cpu_seconds(server.proc.pid) - before) * 1000 / runs, 2))  # type: ignore[union-attr]
        return {**{f"cpu_ms_{n}": sorted(v)[len(v) // 2] for n, v in cpu.items()}, "rounds": cpu}
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 100_000)
    else:
        print(json.dumps({"src": sys.argv[3], **measure(Path(sys.argv[2]), Path(sys.argv[3]),
                                                         int(sys.argv[4]) if len(sys.argv) > 4 else 3)}))
