"""The disk guard: below a floor of free space on the data volume, ingest answers 507 instead of writing.

Checked before a request's body is read, so a refused batch has written nothing; batches already
acknowledged are untouched. Queries, retention and drops keep working, so space can be freed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InsufficientStorage


def free_bytes(path: Path) -> int:
    """Free bytes on the volume holding `path` (its nearest existing parent), as `shutil.disk_usage` counts them.

    Asked by the disk guard before an ingest request's body is read: one statvfs of the path, which exists once
    the server runs. Resolving it first (a `Path.resolve`, a readlink per component) was ~1/8 of the event loop's
    Python time under a fleet's load.
    """
    try:
        st = os.statvfs(path)
    except FileNotFoundError:
        p = Path(path).resolve()
        while not p.exists() and p != p.parent:
            p = p.parent
        st = os.statvfs(p)
    return st.f_bavail * st.f_frsize


# A reading this far above the floor may answer the requests of the next REUSE_SECONDS (the server's guard): a
# fleet's agents send hundreds of small batches a second, and each statvfs on the event loop gave the GIL away
# to the ingest threads and waited to take it back (~20 us of the loop's CPU a request in-process, a fifth of
# the ASGI app's: bench/results/before-after/README.md, "A fleet's small batches: the event loop's share").
# Crossing 1 GiB in a tenth of a second would take 10 GB/s of batches; near the floor every request reads again.
REUSE_MARGIN = 1 << 30
REUSE_SECONDS = 0.1


class DiskGuard:
    def __init__(self, path: Path, min_free_bytes: int, *, free: Callable[[Path], int] = free_bytes,
                 metrics: Any = None, reuse_for: float = 0.0) -> None:
        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)
        self.free = free
        self.metrics = metrics
        self.reuse_for = reuse_for  # seconds a reading REUSE_MARGIN above the floor answers (0: none)
        self._until = 0.0  # monotonic time until which the last reading answers
        if metrics is not None:
            metrics.describe("margay_disk_free_bytes", "gauge", "Free bytes on the data volume.")
            metrics.describe("margay_disk_refused_batches_total", "counter",
                             "Ingest batches refused with 507 because the data volume is nearly full.")
            metrics.gauge("margay_disk_free_bytes", lambda: [({}, float(self.free(self.path)))])

    def check(self) -> None:
        """Raise InsufficientStorage (507) when free space is below the floor."""
        if self.min_free_bytes <= 0:
            return
        if self.reuse_for and time.monotonic() < self._until:
            return
        free = self.free(self.path)
        if free >= self.min_free_bytes:
            if self.reuse_for and free - self.min_free_bytes >= REUSE_MARGIN:
                self._until = time.monotonic() + self.reuse_for
            return
        if self.metrics is not None:
            self.metrics.inc("margay_disk_refused_batches_total")
        raise InsufficientStorage(
            f"the data volume has {_size(free)} free, below the floor of {_size(self.min_free_bytes)} "
            "(setting min_free_bytes): new records are refused until space is freed (shorten retention, "
            "run `margay retention apply`, or grow the volume); stored records are safe",
            details={"free_bytes": free, "min_free_bytes": self.min_free_bytes, "path": str(self.path)})


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
