"""Profiles of a scenario's hot path: py-spy samples the server process, saved beside the results."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


@contextmanager
def profiled(bench: Any, name: str, pid: int, *, enabled: bool = True) -> Iterator[None]:
    """Record a flame graph (SVG) and raw stacks of `pid` while the block runs (needs py-spy)."""
    tool = py_spy()
    if not enabled or tool is None:
        yield
        return
    out = bench.out_dir / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    svg = out / f"{name}.svg"
    # --native shows DuckDB's C++ frames under the Python ones (it cannot be combined with --nonblocking).
    proc = subprocess.Popen([tool, "record", "--pid", str(pid), "--rate", "40", "--native", "--output", str(svg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes the file and exits
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
