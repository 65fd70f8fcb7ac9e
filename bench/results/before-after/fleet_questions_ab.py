"""The fleet scenario's questions (margay.bench.fleet.questions: search, top destinations, flow graph, the empty
all-cluster aggregation, the first index page, the cluster picker's page, the overview's calls) against the stores
a fleet run left, served by two versions of margay in turn: server CPU-ms per run (and p50 wall ms), `runs` timed
runs after 2 warm-ups, for each version, cluster count and round (versions interleaved, A B A B ...).

Usage: fleet_questions_ab.py <the fleet run's --work-dir> <src of version A> <src of version B> [rounds] [runs]
(a version's src: a folder holding `margay/`, e.g. from `git archive <commit> src | tar -x -C DIR`); prints one
JSON line per (round, version, clusters)."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from margay.bench.fleet import questions
from margay.bench.harness import cpu_seconds
from margay.rig.children import ServerProcess

work, versions = Path(sys.argv[1]), {"A": sys.argv[2], "B": sys.argv[3]}
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 20
for rnd in range(rounds):
    for label, src in versions.items():
        rev = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        for n in (10, 1000):
            w = work / f"fleet-{n}"
            s = ServerProcess(w / "data", "--config", str(w / "margay.yaml"), log=w / f"ab-{label}.log",
                              env={"PYTHONPATH": src})
            s.start()
            try:
                out = {"round": rnd, "version": label, "src": src, "rev": rev or None, "clusters": n}
                with httpx.Client(base_url=s.url, timeout=600) as http:
                    for name, q in questions().items():
                        if name == "indices":
                            continue  # every page: the same as indices_first while the list fits one page
                        for _ in range(2):
                            q(http)
                        walls = []
                        c0 = cpu_seconds(s.proc.pid)
                        for _ in range(runs):
                            t0 = time.perf_counter()
                            q(http)
                            walls.append((time.perf_counter() - t0) * 1000)
                        out[f"cpu_ms_{name}"] = round((cpu_seconds(s.proc.pid) - c0) * 1000 / runs, 1)
                        out[f"p50_ms_{name}"] = round(statistics.median(walls), 1)
                print(json.dumps(out), flush=True)
            finally:
                s.stop()
