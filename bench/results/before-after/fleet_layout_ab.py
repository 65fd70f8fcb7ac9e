"""The fleet scenario's questions against two settled stores of the same records, served by the same margay in
turn (stores interleaved A B A B ...): server CPU-ms per run and p50 wall ms, `runs` timed runs after 2 warm-ups.
Made for the interim hot merges (session 18): a 1,000-cluster store settled before them (its hot merges' files
left as they were) against one settled after (merged once more when cold).

Usage: PYTHONPATH=src fleet_layout_ab.py <store A's fleet dir> <store B's fleet dir> [rounds] [runs]
(a fleet dir: one a fleet run's --work-dir holds, e.g. WORK/fleet-1000, with data/ and margay.yaml); prints one
JSON line per (round, store)."""
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

from margay.bench.fleet import questions
from margay.bench.harness import cpu_seconds
from margay.rig.children import ServerProcess

stores = {"A": Path(sys.argv[1]), "B": Path(sys.argv[2])}
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
for rnd in range(rounds):
    for label, w in stores.items():
        files = [p for p in (w / "data" / "store").rglob("*.parquet") if ".rollup-" not in p.name]
        s = ServerProcess(w / "data", "--config", str(w / "margay.yaml"), log=w / f"layout-ab-{label}.log")
        s.start()
        try:
            out = {"round": rnd, "store": label, "dir": str(w), "data_files": len(files),
                   "bytes": sum(p.stat().st_size for p in (w / "data" / "store").rglob("*.parquet"))}
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
