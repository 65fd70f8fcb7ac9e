"""Injected time: the system clock in production, a FakeClock that tests move by hand."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        with self._lock:
            self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


def epoch_seconds(when: datetime) -> float:
    return when.timestamp()


def monotonic() -> float:
    return time.monotonic()


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def day_start(when: datetime) -> datetime:
    """The start of the UTC day holding `when`."""
    d = when.astimezone(UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


ONE_DAY = timedelta(days=1)
