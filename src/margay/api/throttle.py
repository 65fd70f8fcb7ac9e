"""Linseed's write throttle for types kept as one record per identity (policy activity,
`LogType.latest_of`): a report of an identity written less than an hour ago is answered as stored and not
written (backend/legacy/policy: `dedupWindow`, a cache of when each id was last processed).

Felix flushes policy activity every 15 s from every node, so without it a rule evaluated on 100 nodes
would be stored ~24,000 times an hour where one report an hour tells when it was last used. As in Linseed,
the state is each server's memory (a restart, or another replica, writes the next report), an identity is
marked only once a report of it was stored (a refused line marks nothing), and reports of one batch are
checked against the state before the batch. The stored record is the newest written; the one it answers
with may be up to an hour older than the newest report received.

The memory is bounded whatever writers send: an identity is remembered by a 16-byte digest of its values
(not the values, which a writer may make megabytes long), expired entries are dropped when the map has
doubled since the last sweep (amortised: no full sweep per batch once it is large; once full, at most one a minute), and at `max_entries`
live entries a new identity is not remembered — its reports are then all written, as without a throttle
(nothing acknowledged is lost; only the saving is).
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..logtypes import LogType

WINDOW = timedelta(hours=1)
_PRUNE_AT = 200_000  # entries before expired ones are dropped (Linseed's periodic cleanup)
MAX_ENTRIES = 2_000_000  # live identities remembered at most (~200 bytes each)

Identity = tuple[str, ...]
Key = tuple[str, str, bytes]


def _key(lt: LogType, cluster: str, ident: Identity) -> Key:
    """(type, cluster, digest of the identity's values): unambiguous (a JSON list) and of fixed size."""
    return lt.name, cluster, hashlib.blake2b(orjson.dumps(ident), digest_size=16).digest()


def identity(lt: LogType, doc: Any) -> Identity | None:
    """The record's `latest_of` values ('' for a missing one), or None when its shape is not the type's or a
    value is not a string (the converter reports the line, or stores the value rendered its own way — a JSON
    `true` as 'true' — which this could not tell from the string 'True': such a line is written, never
    throttled)."""
    if not isinstance(doc, dict):
        return None
    out: list[str] = []
    for key in lt.latest_of:
        value: Any = doc
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, str):
            return None
        out.append("" if value is None else str(value))
    return tuple(out)


class WriteThrottle:
    """When each (type, cluster, identity) was last written, in this server's memory."""

    def __init__(self, window: timedelta = WINDOW, *, max_entries: int = MAX_ENTRIES) -> None:
        self.window = window
        self.max_entries = max_entries
        self._last: dict[Key, datetime] = {}
        self._sweep_at = min(_PRUNE_AT, max_entries)
        self._swept: datetime | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._last)

    def admit(self, lt: LogType, cluster: str, body: bytes, now: datetime
              ) -> tuple[bytes, int, list[tuple[int, Key]]]:
        """The batch with the lines of identities written within the window blanked (line numbers are kept),
        how many were, and (line number, key of its identity) of the lines kept."""
        lines = body.split(b"\n")
        throttled = 0
        kept: list[tuple[int, Key]] = []
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
                key = _key(lt, cluster, ident)
                last = self._last.get(key)
                if last is not None and now - last < self.window:
                    lines[n - 1] = b""
                    throttled += 1
                else:
                    kept.append((n, key))
        return (b"\n".join(lines) if throttled else body), throttled, kept

    def mark(self, lt: LogType, cluster: str, kept: list[tuple[int, Key]], refused: set[int],
             now: datetime) -> None:
        """Record the identities of the stored lines (those not `refused`) as written at `now`."""
        with self._lock:
            for n, key in kept:
                if n in refused:
                    continue
                if key not in self._last and len(self._last) >= self._sweep_at:
                    full = len(self._last) >= self.max_entries
                    if not full or self._swept is None or now - self._swept >= self.window / 60:
                        self._sweep(now)  # when full, at most once a minute: not a sweep per report
                    if len(self._last) >= self.max_entries:
                        continue  # full of live identities: this one's reports are written, not throttled
                self._last[key] = now

    def _sweep(self, now: datetime) -> None:
        """Drop the expired entries; the next sweep comes once the map has doubled (or at max_entries)."""
        self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        self._swept = now
        self._sweep_at = min(max(_PRUNE_AT, 2 * len(self._last)), self.max_entries)
