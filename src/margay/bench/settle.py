"""Waiting for a store's compactor to go idle before timing or sizing it (the bench's servers and in-process
engines alike)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def wait_idle(state: Callable[[], Sequence[float | None]], *, cold_at: float, quiet: float = 10.0,
              timeout: float = 3600.0, settled: Callable[[Sequence[float | None]], bool] = lambda _: True) -> bool:
    """Wait until `cold_at` (time.monotonic; when the newest partition is merged once cold), then until
    `state()` — (merges made, roll-ups built, 1 while writing one, ...) — has not changed nor been busy for
    `quiet` seconds and `settled(state)` holds. False if `timeout` seconds passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < min(cold_at, deadline):
        time.sleep(1)
    last: Sequence[float | None] = ()
    changed = time.monotonic()
    while time.monotonic() < deadline:
        now = state()
        if now != last or now[2]:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= quiet and settled(now):
            return True
        time.sleep(2)
    return False
