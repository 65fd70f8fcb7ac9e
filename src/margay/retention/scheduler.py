"""Drops expired partitions through the Backend: on demand, or every few minutes inside `margay serve`.

Time comes from an injected Clock, so tests move a FakeClock across UTC midnights instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from ..clock import Clock, SystemClock
from ..store.backend import Partition
from .policy import RetentionPolicy

log = logging.getLogger(__name__)


class RetentionScheduler:
    """Applies a RetentionPolicy to a Backend (anything with `partitions()` and `drop_many(partitions)`)."""

    def __init__(self, backend: Any, policy: RetentionPolicy | None = None, *, clock: Clock | None = None,
                 interval: float = 900.0, metrics: Any = None) -> None:
        self.backend = backend
        self.policy = policy or RetentionPolicy()
        self.clock = clock or SystemClock()
        self.interval = interval
        self.metrics = metrics
        self.last_run: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def expired(self, now: datetime | None = None) -> list[Partition]:
        when = now or self.clock.now()
        return [p for p in self.backend.partitions() if self.policy.expired(p, when)]

    def run_once(self, *, dry_run: bool = False) -> list[Partition]:
        """Drop every expired partition (or only list them with dry_run); returns them.

        The partitions of a type and day go in one `drop_many`: most often every cluster of a type expires the
        same day, and the embedded store then rewrites each shared file of that day once, not once per cluster.
        A failed group stops the run (the next run tries again); the groups before it are logged and counted."""
        with self._lock:
            now = self.clock.now()
            gone = self.expired(now)
            if dry_run:
                return gone
            days: dict[tuple[str, str], list[Partition]] = defaultdict(list)
            for p in gone:
                days[(p.log_type, p.day)].append(p)
            for _, group in sorted(days.items()):
                self.backend.drop_many(group)
                for p in group:
                    log.info("retention dropped %s (%d records, %d bytes)", p.index, p.docs, p.bytes)
                    if self.metrics is not None:
                        self.metrics.inc("margay_retention_dropped_partitions_total", type=p.log_type,
                                         cluster=p.cluster)
                        self.metrics.inc("margay_retention_dropped_records_total", p.docs, type=p.log_type,
                                         cluster=p.cluster)
                        self.metrics.inc("margay_retention_freed_bytes_total", p.bytes, type=p.log_type)
            self.last_run = now
            return gone

    def status(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Per log type and cluster: days, what is kept, what expires next and when, bytes held."""
        when = now or self.clock.now()
        groups: dict[tuple[str, str], list[Partition]] = defaultdict(list)
        for p in self.backend.partitions():
            groups[(p.log_type, p.cluster)].append(p)
        rows = []
        for (lt, cluster), parts in sorted(groups.items()):
            parts.sort(key=lambda p: p.day)
            kept = [p for p in parts if not self.policy.expired(p, when)]
            overdue = [p for p in parts if self.policy.expired(p, when)]
            nxt = kept[0] if kept else None
            rows.append({
                "type": lt, "cluster": cluster, "days": self.policy.days_for(lt),
                "partitions": len(kept), "first_day": kept[0].day if kept else None,
                "last_day": kept[-1].day if kept else None,
                "records": sum(p.docs for p in kept), "bytes": sum(p.bytes for p in kept),
                "next_expiry_day": nxt.day if nxt else None,
                "next_expiry_at": self.policy.expires_at(nxt).isoformat() if nxt else None,
                "next_expiry_bytes": nxt.bytes if nxt else 0,
                "overdue": [p.day for p in overdue], "overdue_bytes": sum(p.bytes for p in overdue),
            })
        return rows

    # -- background thread inside `margay serve` --------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="margay-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # The first round comes one interval after start, so a restarting server does not race its clients.
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a failed round is logged and retried next round
                log.exception("retention run failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
