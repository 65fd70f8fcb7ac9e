"""Ingest CPU of several margay servers on the same peers data, taking turns (issue 21/25's ingest regression).

    .venv/bin/python bench/results/before-after/ingest_ab.py OUT.json LABEL=SRC [LABEL=SRC ...]
        [--records 100000] [--rounds 2] [--variant sim|highcard] [--clients 4] [--no-settle] [--profile DIR]

SRC is a checkout's `src` folder (e.g. an old commit's `git archive ... src` in /tmp) put first on the
server's PYTHONPATH, or `.` for this checkout. Each round starts every server on a fresh store in turn, posts
the peers scenario's batches (10,000 records, gzip, 4 clients, as bench/peers.py does), and reads the
server's CPU-seconds at three points (and the compactor thread's apart, by its nice 10): after the last 2xx (`ingest`), once the compactor settled (`settle`:
the merges, shared-file rewrites and roll-ups the server did after ingest), and their sum (`total`: all the
work the server did for these records); `--no-settle` stops after ingest, as the `ingest` scenario does
(`--records 40000 --clients 1,4,16` is its quick mode's load). `--profile` records py-spy (raw folded stacks) over the timed ingest.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from margay.bench.data import flow_batches, topology
from margay.bench.peers import high_cardinality
from margay.bench.targets import MargayTarget


def _threads(pid: int) -> tuple[float, float]:
    """(CPU-seconds of the compactor thread -- the one that set nice 10 --, of every other thread)."""
    tick = os.sysconf("SC_CLK_TCK")
    low = rest = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(fields[16]) > 0:  # nice
            low += cpu
        else:
            rest += cpu
    return low, rest


def _run(label: str, src: str, batches: list[Any], work: Path, profile: Path | None, rnd: int, clients: int,
         settle: bool) -> dict[str, Any]:
    target = MargayTarget(work / label)
    if src != ".":
        target.server.env["PYTHONPATH"] = str(Path(src).resolve())
    target.start()
    spy = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(target.pid),
                                "-r", "100", "-f", "raw", "-o", str(profile / f"{label}-r{rnd}.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    try:
        cpu0, t0 = target.cpu(), _threads(target.pid)
        n, wall = target.ingest(batches, clients)
        cpu1, t1 = target.cpu(), _threads(target.pid)
        if spy is not None:  # the profile covers the timed ingest only
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            spy = None
        if settle:
            target.settle()
        cpu2, t2 = target.cpu(), _threads(target.pid)
        out = {"label": label, "round": rnd, "clients": clients, "records": n, "ingest_wall_s": round(wall, 2),
               "ingest_cpu_s_per_million": round((cpu1 - cpu0) / n * 1e6, 2),
               "settle_cpu_s_per_million": round((cpu2 - cpu1) / n * 1e6, 2),
               "total_cpu_s_per_million": round((cpu2 - cpu0) / n * 1e6, 2),
               "ingest_compactor_cpu_s_per_million": round((t1[0] - t0[0]) / n * 1e6, 2),
               "settle_compactor_cpu_s_per_million": round((t2[0] - t1[0]) / n * 1e6, 2),
               "bytes_per_flow": round(target.bytes_per_record("flows"), 2)}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        target.stop()
    print(orjson.dumps(out).decode(), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("servers", nargs="+")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variant", default="sim")
    ap.add_argument("--clients", default="4")
    ap.add_argument("--no-settle", action="store_true")
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--work", type=Path, default=Path(".bench/ingest-ab"))
    a = ap.parse_args()
    batches = list(flow_batches(topology(), a.records))
    if a.variant == "highcard":
        batches = list(high_cardinality(iter(batches)))
    days = sorted({b.day for b in batches})
    print(f"{sum(b.records for b in batches):,} flows in {len(batches)} batches, days {days[0]}..{days[-1]}, "
          f"load {os.getloadavg()}", flush=True)
    results = []
    for rnd in range(a.rounds):
        for clients in (int(c) for c in a.clients.split(",")):
            for spec in a.servers:
                label, src = spec.split("=", 1)
                results.append(_run(label, src, batches, a.work, a.profile, rnd, clients, not a.no_settle))
    Path(a.out).write_bytes(orjson.dumps({"records": a.records, "variant": a.variant, "runs": results,
                                          "load_after": os.getloadavg()}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
