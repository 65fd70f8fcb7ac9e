"""Runs scenarios and records what they measured, with the machine and data size, under bench/results/."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

Scenario = Callable[["Bench"], dict[str, Any]]


def machine() -> dict[str, Any]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process's resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    data = sorted(values)
    if not data:
        return 0.0
    k = (len(data) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def parse_sizes(text: str) -> list[int]:
    """'2m,10m' -> [2000000, 10000000]: record counts, ascending, with k/m suffixes."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        digits = part[:-1] if scale > 1 else part
        if not digits.isdigit() or int(digits) == 0:
            raise ValueError(f"{part!r} is not a record count such as 500k, 10m or 2000000")
        out.append(int(digits) * scale)
    return sorted(out)


MODES = ("quick", "full", "large")  # smallest data first


@dataclass
class Bench:
    mode: str  # one of MODES
    work_dir: Path
    out_dir: Path
    log: Callable[[str], None]
    sizes: list[int] | None = None  # the query scenario's record counts, if not the mode's

    @property
    def quick(self) -> bool:
        return self.mode == "quick"


def run(scenarios: Mapping[str, Scenario], names: list[str], *, mode: str, work_dir: Path, out_dir: Path,
        log: Callable[[str], None], sizes: list[int] | None = None) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir.resolve()  # peers run with their own working directories
    work_dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(mode, work_dir, out_dir, log, sizes)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    for name in names:
        log(f"scenario {name} ({mode})")
        started = time.perf_counter()
        metrics = scenarios[name](bench)
        result = {"scenario": name, "mode": mode, "date": datetime.now(UTC).isoformat(), "machine": machine(),
                  "seconds": round(time.perf_counter() - started, 1), "metrics": metrics}
        stem = f"{date}-{name}" + ("" if mode == "quick" else f"-{mode}")  # each mode's run beside the others'
        (out_dir / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return rebuild(out_dir)


def rebuild(out_dir: Path) -> dict[str, Any]:
    """latest.json and SUMMARY.md from the newest result file of every scenario in each mode (quick, full,
    large) in `out_dir`. Quick runs are applied first and large runs last: the unsuffixed metrics a scenario
    names at its largest size (query p95s, records) come from the largest data measured."""
    newest: dict[str, dict[str, Any]] = {}
    for path in sorted(out_dir.glob("*.json")):
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "scenario" in doc and "metrics" in doc:
            mode = doc.get("mode", "quick")
            key = doc["scenario"] + ("" if mode == "quick" else f" ({mode})")
            if key not in newest or doc["date"] > newest[key]["date"]:
                newest[key] = doc
    latest: dict[str, Any] = {}
    for _, doc in sorted(newest.items(), key=lambda kv: (MODES.index(kv[1].get("mode", "quick")), kv[0])):
        latest.update({k: v for k, v in doc["metrics"].items() if isinstance(v, int | float)})
    (out_dir / "latest.json").write_bytes(orjson.dumps(latest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    (out_dir / "SUMMARY.md").write_text(markdown(sorted(newest.items()), latest))
    return latest


def markdown(summary: list[tuple[str, dict[str, Any]]], latest: dict[str, Any]) -> str:
    lines = ["# Benchmark results", ""]
    if summary:
        m = summary[0][1]["machine"]
        first = min(summary, key=lambda kv: kv[1]["date"])[1]
        last = max(summary, key=lambda kv: kv[1]["date"])[1]
        lines += [f"Runs from {first['date'][:19]}Z to {last['date'][:19]}Z on {m['cores']} cores, "
                  f"{m['memory_gib']} GiB, Python {m['python']}; each scenario's run is under its heading.", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key in sorted(latest):
        value = latest[key]
        lines.append(f"| `{key}` | {value:,.2f} |" if isinstance(value, float) else f"| `{key}` | {value:,} |")
    lines.append("")
    for name, result in summary:
        lines += [f"## {name}", "", f"Run {result['date'][:19]}Z, mode `{result['mode']}`, "
                  f"{result.get('seconds', 0):,.0f} s.", ""]
        notes = result["metrics"].get("notes")
        if notes:
            lines += [str(notes), ""]
    return "\n".join(lines)
