"""Linseed's write throttle for types kept as one record per identity (policy activity,
`LogType.latest_of`): a report of an identity written less than an hour ago is answered as stored and not
written (backend/legacy/policy: `dedupWindow`, a cache of when each id was last processed).

Felix flushes policy activity every 15 s from every node, so without it a rule evaluated on 100 nodes
would be stored ~24,000 times an hour where one report an hour tells when it was last used. As in Linseed,
the state is each server's memory (a restart, or another replica, writes the next report), an identity is
marked only once a report of it was stored (a refused line marks nothing), and reports of one batch are
checked against the state before the batch. The stored record is the newest written; the one it answers
with may be up to an hour older than the newest report received.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..logtypes import LogType

WINDOW = timedelta(hours=1)
_PRUNE_AT = 200_000  # entries before expired ones are dropped (Linseed's periodic cleanup)

Identity = tuple[str, ...]


def identity(lt: LogType, doc: Any) -> Identity | None:
    """The record's `latest_of` values ('' for a missing one), or None when its shape is not the type's (the
    converter then reports the line)."""
    if not isinstance(doc, dict):
        return None
    out: list[str] = []
    for key in lt.latest_of:
        value: Any = doc
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, str | int | float):
            return None
        out.append("" if value is None else str(value))
    return tuple(out)


class WriteThrottle:
    """When each (type, cluster, identity) was last written, in this server's memory."""

    def __init__(self, window: timedelta = WINDOW) -> None:
        self.window = window
        self._last: dict[tuple[str, str, Identity], datetime] = {}
        self._lock = threading.Lock()

    def admit(self, lt: LogType, cluster: str, body: bytes, now: datetime
              ) -> tuple[bytes, int, list[tuple[int, Identity]]]:
        """The batch with the lines of identities written within the window blanked (line numbers are kept),
        how many were, and (line number, identity) of the lines kept."""
        lines = body.split(b"\n")
        throttled = 0
        kept: list[tuple[int, Identity]] = []
        with self._lock:
            for n, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    ident = identity(lt, orjson.loads(line))
                except orjson.JSONDecodeError:
                    ident = None
                if ident is None:
                    continue
                last = self._last.get((lt.name, cluster, ident))
                if last is not None and now - last < self.window:
                    lines[n - 1] = b""
                    throttled += 1
                else:
                    kept.append((n, ident))
        return (b"\n".join(lines) if throttled else body), throttled, kept

    def mark(self, lt: LogType, cluster: str, kept: list[tuple[int, Identity]], refused: set[int],
             now: datetime) -> None:
        """Record the identities of the stored lines (those not `refused`) as written at `now`."""
        with self._lock:
            for n, ident in kept:
                if n not in refused:
                    self._last[(lt.name, cluster, ident)] = now
            if len(self._last) > _PRUNE_AT:
                self._last = {k: t for k, t in self._last.items() if now - t < self.window}
