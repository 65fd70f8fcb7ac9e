"""The Detector: pulls feeds, searches for their entries and evaluates alerts on the injected clock, each job in
a worker thread so a slow or failing one never holds up the others; status survives a restart."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..clock import Clock
from ..durable import atomic_write
from ..store.backend import Backend
from .alerts import evaluate
from .events import write_events
from .feeds import MAX_ERRORS, FeedPuller, FeedStatus, _iso
from .matching import search_feed
from .push import pushed_entries
from .resources import Alert, Resource, ThreatFeed

log = logging.getLogger("margay.detect")
SEARCH_PERIOD = timedelta(minutes=1)


@dataclass
class AlertStatus:
    last_executed: datetime | None = None
    last_event: datetime | None = None
    healthy: bool = True
    error_conditions: list[dict[str, str]] = field(default_factory=list)
    events: int = 0

    def as_status(self, active: bool = True) -> dict[str, Any]:
        return {"active": active, "healthy": self.healthy, "lastExecuted": _iso(self.last_executed),
                "lastEvent": _iso(self.last_event), "errorConditions": list(self.error_conditions)}


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _when(value: Any) -> datetime | None:
    """A stored time (RFC 3339 text or epoch seconds) as an aware datetime, None when it is neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    try:
        at = _dt(value)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


class Detector:
    """Owns the loaded feeds and alerts and runs whatever is due at each `tick()`."""

    def __init__(self, backend: Backend, clock: Clock, *, puller: FeedPuller | None = None,
                 state_path: Path | None = None, workers: int = 4) -> None:
        self.backend, self.clock = backend, clock
        self.puller = puller or FeedPuller()
        self.state_path = state_path
        self.feeds: dict[str, ThreatFeed] = {}
        self.alerts: dict[str, Alert] = {}
        self.feed_status: dict[str, FeedStatus] = {}
        self.alert_status: dict[str, AlertStatus] = {}
        self._last_search: dict[str, datetime] = {}
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="margay-detect")
        self._load_state()

    # -- resources ---------------------------------------------------------------------------------------
    def put(self, resource: Resource) -> None:
        with self._lock:
            if isinstance(resource, ThreatFeed):
                self.feeds[resource.name] = resource
                self.feed_status.setdefault(resource.name, FeedStatus())
            elif resource.kind == "GlobalAlert":
                self.alerts[resource.name] = resource
                self.alert_status.setdefault(resource.name, AlertStatus())

    def delete(self, kind: str, name: str) -> bool:
        with self._lock:
            table: dict[str, Any] = self.feeds if kind == "GlobalThreatFeed" else self.alerts
            return table.pop(name, None) is not None

    # -- running -----------------------------------------------------------------------------------------
    def due(self, now: datetime) -> list[tuple[str, Any]]:
        jobs: list[tuple[str, Any]] = []
        for name, feed in self.feeds.items():
            st = self.feed_status[name]
            if not feed.enabled:
                continue
            if feed.url is not None and (st.last_attempt is None or now - st.last_attempt >= feed.period):
                jobs.append((f"feed-pull/{name}", lambda f=feed, s=st: self.puller.sync(f, s, now)))
            last = self._last_search.get(name)
            if last is None or now - last >= SEARCH_PERIOD:
                jobs.append((f"feed-search/{name}", lambda f=feed, s=st: self.search(f, s, now)))
        for name, alert in self.alerts.items():
            if alert.disabled:
                continue
            ast = self.alert_status[name]
            if ast.last_executed is None or now - ast.last_executed >= alert.period:
                jobs.append((f"alert/{name}", lambda a=alert, s=ast: self.run_alert(a, s, now)))
        return jobs

    def tick(self, timeout: float = 60.0) -> dict[str, str]:
        """Start every due job (pulls before searches) and wait up to `timeout` seconds; a job still running
        is left to finish and skipped until it does. Returns job -> "ok" | "error: ..." | "running"."""
        now = self.clock.now()
        results: dict[str, str] = {}
        jobs = self.due(now)
        for phase in ("feed-pull", "feed-search", "alert"):
            started: dict[str, Future[None]] = {}
            for key, fn in jobs:
                if not key.startswith(phase + "/"):
                    continue
                if key in self._running and not self._running[key].done():
                    results[key] = "running"
                    continue
                started[key] = self._running[key] = self._pool.submit(fn)
            wait(list(started.values()), timeout=timeout)
            for key, fut in started.items():
                if not fut.done():
                    results[key] = "running"
                elif fut.exception() is not None:
                    results[key] = f"error: {fut.exception()}"
                else:
                    results[key] = "ok"
        self.save_state()
        return results

    def load_pushed(self, feed: ThreatFeed, status: FeedStatus) -> None:
        """A push feed's set is what was last pushed to Linseed's threat-feed endpoints (none: empty)."""
        entries, docs = pushed_entries(self.backend, feed.content, feed.name)
        status.entries, status.skipped = entries.values, entries.skipped
        pushed = [t for t in (_when(d.get("generated_time")) or _when(d.get("created_at")) for d in docs) if t]
        status.last_successful_sync = max(pushed, default=None)

    def search(self, feed: ThreatFeed, status: FeedStatus, now: datetime) -> None:
        try:
            if feed.url is None:
                self.load_pushed(feed, status)
            hits = search_feed(self.backend, feed, status)
            for cluster, events in hits.events.items():
                write_events(self.backend, cluster, events, now)
        except Exception as exc:
            status.error("SearchFailed", f"{type(exc).__name__}: {exc}")
            raise
        status.cursor[("flows" if feed.content == "IPSet" else "dns")] = hits.upto
        status.last_successful_search = now
        self._last_search[feed.name] = now
        status.error_conditions = [e for e in status.error_conditions if e["type"] != "SearchFailed"]

    def run_alert(self, alert: Alert, status: AlertStatus, now: datetime) -> None:
        try:
            written = 0
            for cluster, events in evaluate(self.backend, alert, now).items():
                written += write_events(self.backend, cluster, events, now)
        except Exception as exc:
            status.healthy = False
            status.error_conditions = [*status.error_conditions,
                                       {"type": "QueryFailed", "message": f"{type(exc).__name__}: {exc}"}
                                       ][-MAX_ERRORS:]
            status.last_executed = now
            raise
        status.last_executed, status.healthy, status.error_conditions = now, True, []
        if written:
            status.last_event, status.events = now, status.events + written

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- state -------------------------------------------------------------------------------------------
    def save_state(self) -> None:
        if self.state_path is None or not (self.feed_status or self.alert_status or self.state_path.exists()):
            return  # nothing to remember: a server without detection resources writes nothing
        doc = {"feeds": {n: {"entries": list(s.entries), "cursor": s.cursor, "skipped": s.skipped,
                             "sync": _iso(s.last_successful_sync), "search": _iso(s.last_successful_search),
                             "attempt": _iso(s.last_attempt), "errors": s.error_conditions}
                         for n, s in self.feed_status.items()},
               "alerts": {n: {"executed": _iso(s.last_executed), "event": _iso(s.last_event), "healthy": s.healthy,
                              "errors": s.error_conditions, "events": s.events}
                          for n, s in self.alert_status.items()}}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state_path, orjson.dumps(doc))

    def _load_state(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        doc = orjson.loads(self.state_path.read_bytes())
        for n, s in doc.get("feeds", {}).items():
            self.feed_status[n] = FeedStatus(tuple(s["entries"]), _dt(s["sync"]), _dt(s["search"]),
                                             _dt(s["attempt"]), list(s["errors"]), s["skipped"], dict(s["cursor"]))
        for n, s in doc.get("alerts", {}).items():
            self.alert_status[n] = AlertStatus(_dt(s["executed"]), _dt(s["event"]), s["healthy"], list(s["errors"]),
                                               s["events"])
