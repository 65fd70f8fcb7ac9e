"""`make bench` quick of two commits taking turns, scenario by scenario (issue 16's before/after bar).

    .venv/bin/python bench/results/before-after/quick_ab.py OUT.json OLD_CHECKOUT NEW_CHECKOUT
        [--rounds 2] [--scenario ingest --scenario query ...] [--work /tmp/quick-ab]
    .venv/bin/python bench/results/before-after/quick_ab.py --table OUT.json [MORE.json ...]

Each checkout's own `margay bench --mode quick --scenario S` runs with that checkout's `src` first on
PYTHONPATH (same interpreter and packages), old then new for every scenario, `--rounds` times, so both codes
meet the same machine state. OUT.json keeps every run's metrics; `--table` prints, for each figure issue 16's
quick bench reports, both codes' medians, the change, and each code's own spread (max/min − 1 over its runs):
a change inside the larger spread is noise, not the code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

SCENARIOS = ["ingest", "query", "scale", "mixed", "aggregate", "agent", "forward"]
# Figures where more is better (rates, reductions); every other figure is a cost.
HIGHER_IS_BETTER = ("_rps", "_reduction", "lines_per_s", "mb_per_s", "mixed_queries", "rate_target")


def _bench(checkout: Path, scenario: str, out: Path, work: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str((checkout / "src").resolve()))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "margay", "bench", "--mode", "quick", "--scenario", scenario,
                           "--out", str(out), "--work-dir", str(work)], cwd=checkout, env=env,
                          capture_output=True, text=True)
    metrics: dict[str, Any] = {}
    for f in out.glob(f"*-{scenario}.json"):
        metrics.update(orjson.loads(f.read_bytes()).get("metrics", {}))
    return {"rc": proc.returncode, "seconds": round(time.monotonic() - t0, 1), "metrics": metrics,
            "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
            "load": os.getloadavg()[0]}


def run(out_file: Path, old: Path, new: Path, rounds: int, scenarios: list[str], work: Path) -> None:
    runs: list[dict[str, Any]] = []
    for rnd in range(rounds):
        for scenario in scenarios:
            for label, checkout in (("old", old), ("new", new)):
                base = work / f"r{rnd}-{scenario}-{label}"
                row = _bench(checkout, scenario, base / "out", base / "work")
                row.update(label=label, scenario=scenario, round=rnd,
                           commit=subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                                 capture_output=True, text=True).stdout.strip())
                runs.append(row)
                print(f"round {rnd} {scenario} {label}: rc {row['rc']}, {row['seconds']} s, "
                      f"load {row['load']:.1f}", flush=True)
                out_file.write_bytes(orjson.dumps({"runs": runs}, option=orjson.OPT_INDENT_2))


def table(out_files: list[Path]) -> str:
    runs = [row for f in out_files for row in orjson.loads(f.read_bytes())["runs"]]
    values: dict[str, dict[str, list[float]]] = {}
    for row in runs:
        for key, value in row["metrics"].items():
            # The peers' own figures (OpenSearch's) and the ratios against them are not margay's.
            if "opensearch" in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            values.setdefault(key, {"old": [], "new": []})[row["label"]].append(float(value))
    lines = ["| figure | old (median) | new (median) | change | old spread | new spread | verdict |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted(values):
        old, new = values[key]["old"], values[key]["new"]
        if not old or not new:
            continue
        mo, mn = statistics.median(old), statistics.median(new)
        if mo == 0:
            continue
        change = (mn - mo) / mo
        worse = -change if any(h in key for h in HIGHER_IS_BETTER) else change

        def spread(xs: list[float]) -> float:
            return max(xs) / min(xs) - 1 if min(xs) > 0 else 0.0
        noise = max(spread(old), spread(new))
        verdict = "better" if worse < -0.05 else ("within 5 %" if worse <= 0.05 else
                                                  ("worse, inside the runs' spread" if worse <= noise else "worse"))
        lines.append(f"| `{key}` | {mo:g} | {mn:g} | {change * 100:+.1f} % | {spread(old) * 100:.0f} % | "
                     f"{spread(new) * 100:.0f} % | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("old", type=Path, nargs="?", help="the old checkout (with --table: more result files)")
    p.add_argument("new", type=Path, nargs="?")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--scenario", action="append")
    p.add_argument("--work", type=Path, default=Path("/tmp/quick-ab"))
    p.add_argument("--table", action="store_true")
    a = p.parse_args()
    if a.table:
        print(table([f for f in (a.out, a.old, a.new) if f is not None]))
        return
    run(a.out, a.old, a.new, a.rounds, a.scenario or SCENARIOS, a.work)


if __name__ == "__main__":
    main()
