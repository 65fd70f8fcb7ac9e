"""One store's delivery loop: follow the store by `_seq`, deliver batches, advance a durable cursor.

Each store runs in its own thread, so a slow or absent destination delays only itself; ingest never
waits for a forwarder. A batch is read from the backend up to its safe watermark (`safe_seq`, below every
batch still being committed), handed to the sink, and only once the destination acknowledged it does the
cursor move past it. A failed delivery is retried with exponential backoff and jitter until it succeeds
or the forwarder stops; after a crash the batch in flight is sent again (the only duplicates).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..logtypes import LogType
from ..metrics import Registry
from .config import StoreConfig
from .cursor import Cursor

log = logging.getLogger(__name__)

LAG_EVERY = 1.0  # seconds between lag measurements


class DeliveryError(Exception):
    """The destination did not acknowledge a batch; it will be retried."""


class Sink(Protocol):
    def deliver(self, lt: LogType, records: list[dict[str, Any]]) -> int:
        """Send one batch; return how many records the destination refused for good. Raise to retry."""
        ...

    def close(self) -> None: ...


def drop_fields(record: dict[str, Any], paths: list[str]) -> None:
    """Remove fields (dotted paths reach into objects) from one record, in place."""
    for path in paths:
        parts = path.split(".")
        node: Any = record
        for p in parts[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)


class Forwarder:
    """Delivers one store's log types in `_seq` order, at least once, in a thread of its own."""

    def __init__(self, config: StoreConfig, backend: Any, sink: Sink, data_dir: Path, *,
                 metrics: Registry | None = None, rng: random.Random | None = None) -> None:
        self.config = config
        self.backend = backend
        self.sink = sink
        self.cursor = Cursor.for_store(data_dir, config.name)
        self.metrics = metrics or Registry()
        self.rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._where = {lt.name: config.where(lt) for lt in config.types}
        self._pending_since: dict[str, float] = {}
        self._lag_at = 0.0
        self.lag_records = 0
        self.lag_seconds = 0.0
        self.last_error: str | None = None
        self.attempts = 0  # consecutive failed attempts of the current batch
        if not self.cursor.exists:
            start = backend.head_seq() if config.start_from == "latest" else 0
            for lt in config.types:
                self.cursor.positions[lt.name] = start
            self.cursor.save()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"margay-forward-{self.config.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout if timeout is not None else self.config.timeout + 5)
        self.sink.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = any([self.step(lt) for lt in self.config.types])
                self._measure_lag()
            except Exception:  # noqa: BLE001 - a read failure must not end the thread; it is retried
                log.exception("forwarder %s: reading the store failed", self.config.name)
                busy = False
            if not busy:
                self._stop.wait(self._idle())

    def _idle(self) -> float:
        if self._pending_since:  # a partial batch waits for its flush interval
            return min(max(self.config.flush_interval / 20, 0.05), 2.0)
        return 0.1

    # -- one batch ---------------------------------------------------------------------------------------

    def step(self, lt: LogType) -> bool:
        """Deliver at most one batch of `lt`; True if the cursor moved."""
        pos = self.cursor.get(lt.name) or 0
        upto = self.backend.safe_seq()
        if upto <= pos:
            self._pending_since.pop(lt.name, None)
            return False
        size = self.config.batch_size
        records = self.backend.records_after(lt, pos, size, upto=upto, where=self._where[lt.name])
        full = len(records) >= size
        if records and not full and self.config.flush_interval > 0:
            since = self._pending_since.setdefault(lt.name, time.monotonic())
            if time.monotonic() - since < self.config.flush_interval:
                return False  # not enough for a full batch yet, and the oldest has not waited long enough
        self._pending_since.pop(lt.name, None)
        next_pos = records[-1]["_seq"] if full else upto
        if records:
            if self.config.drop_fields:
                for r in records:
                    drop_fields(r, self.config.drop_fields)
            if not self._deliver(lt, records):
                return False  # stopping
        self.cursor.advance(lt.name, next_pos)
        return True

    def _deliver(self, lt: LogType, records: list[dict[str, Any]]) -> bool:
        store = self.config.name
        self.attempts = 0
        while not self._stop.is_set():
            try:
                failed = self.sink.deliver(lt, records)
            except Exception as exc:  # noqa: BLE001 - any failure of the destination is retried
                self.attempts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.inc("margay_forward_retries_total", store=store)
                delay = self.backoff(self.attempts)
                log.warning("forwarder %s: %d %s records not delivered (%s); retry %d in %.2fs", store,
                            len(records), lt.name, self.last_error, self.attempts, delay)
                deadline = time.monotonic() + delay
                while not self._stop.is_set() and time.monotonic() < deadline:
                    self._measure_lag()
                    self._stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                continue
            self.attempts = 0
            self.last_error = None
            if failed:
                self.metrics.inc("margay_forward_failed_records_total", failed, store=store, type=lt.name)
            self.metrics.inc("margay_forward_delivered_records_total", len(records) - failed, store=store,
                             type=lt.name)
            return True
        return False

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half the capped delay fixed, half random."""
        cap = min(self.config.retry_max, self.config.retry_initial * (2 ** min(attempt - 1, 30)))
        return cap / 2 + self.rng.uniform(0, cap / 2)

    # -- lag ---------------------------------------------------------------------------------------------

    def _measure_lag(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._lag_at < LAG_EVERY:
            return
        self._lag_at = now
        records, oldest = 0, None
        for lt in self.config.types:
            n, t = self.backend.backlog(lt, self.cursor.get(lt.name) or 0, where=self._where[lt.name])
            records += n
            if t is not None:
                oldest = t if oldest is None else min(oldest, t)
        self.lag_records = records
        self.lag_seconds = max(0.0, time.time() - oldest) if oldest is not None else 0.0

    def status(self) -> dict[str, Any]:
        m, store = self.metrics, self.config.name
        return {
            "store": store, "types": [lt.name for lt in self.config.types], "cursor": dict(self.cursor.positions),
            "lag_records": self.lag_records, "lag_seconds": round(self.lag_seconds, 3),
            "delivered": int(sum(m.get("margay_forward_delivered_records_total", store=store, type=lt.name)
                                 for lt in self.config.types)),
            "failed": int(sum(m.get("margay_forward_failed_records_total", store=store, type=lt.name)
                              for lt in self.config.types)),
            "retried": int(m.get("margay_forward_retries_total", store=store)),
            "truncated": int(m.get("margay_forward_truncated_total", store=store)),
            "last_error": self.last_error,
        }
