"""The one Query model, and how Linseed-shaped request bodies become one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import QueryError
from ..logtypes import LogType
from .restriction import NONE, Restriction, selector_keys
from .selector import Node

MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1000

_RELATIVE = re.compile(r"^now(?:\s*-\s*(\d+)\s*([smhdw]))?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: Any, now: datetime, *, what: str = "time") -> datetime:
    """An absolute RFC 3339 time, epoch seconds, or relative `now`, `now-15m`, `now-7d`."""
    if isinstance(value, bool):
        raise QueryError(f"{what}: expected a time, got {value!r}")
    if isinstance(value, int | float):
        return _epoch(value, what)
    if not isinstance(value, str) or not value.strip():
        raise QueryError(f"{what}: expected RFC 3339, epoch seconds or now-<n><s|m|h|d>, got {value!r}")
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        if m.group(1) is None:
            return now
        try:
            return now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        except OverflowError:
            raise QueryError(f"{what}: {value!r} reaches before year 1") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            return _epoch(float(text), what)
        except ValueError:
            raise QueryError(f"{what}: cannot read {value!r}: expected RFC 3339 (2026-01-02T15:04:05Z), "
                             "epoch seconds or now-<n><s|m|h|d>") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _epoch(value: float, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise QueryError(f"{what}: epoch seconds {value!r} are out of range") from None


@dataclass(frozen=True)
class SortKey:
    key: str
    descending: bool = False


@dataclass
class Query:
    """A read of one log type over some clusters and a time range, filtered, sorted, paged."""

    logtype: LogType
    clusters: list[str]
    also: list[LogType] = field(default_factory=list)  # same-schema types read together (audit ee+kube)
    start: datetime | None = None
    end: datetime | None = None
    time_field: str | None = None  # None: the type's time field
    selector: Node | None = None  # a parsed selector
    selector_text: str | None = None  # as typed, for error carets
    now: datetime | None = None  # the request's clock reading, for relative times in selectors
    restriction: Restriction = NONE  # the reader's grant: namespace-scoped clusters and required sides
    sort: list[SortKey] = field(default_factory=list)
    size: int = DEFAULT_PAGE_SIZE
    after_key: dict[str, Any] | None = None
    total_hits: bool = True

    @property
    def logtypes(self) -> list[LogType]:
        return [self.logtype, *self.also]

    @property
    def time_key(self) -> str:
        return self.time_field or self.logtype.time_field

    def naming(self, keys: Iterable[str] = ()) -> Query:
        """This query as an engine runs it: its restriction narrowed to the rows where every endpoint it names
        is in scope -- in its selector, its sort and `keys` (what an aggregation, a hint or a grouping reads).
        Each engine calls it on every read, whatever built the query, so no path can skip it (restriction.py)."""
        if not self.restriction.scoped:
            return self
        named = selector_keys(self.selector) | {s.key for s in self.sort} | set(keys)
        return replace(self, restriction=self.restriction.naming(self.logtype, named))


def time_range(body: dict[str, Any], now: datetime, *, default_last: timedelta | None = None,
               from_only: bool = False) -> tuple[datetime | None, datetime | None, str | None]:
    """Linseed's `time_range {from, to, field}`; a missing range means all time (or the default window).
    `from_only` (Linseed's runtime list): only `from` bounds, `to` and `field` are read as nothing."""
    tr = body.get("time_range")
    if tr is None:
        if default_last is None:
            return None, None, None
        return now - default_last, now, None
    if not isinstance(tr, dict):
        raise QueryError("time_range: expected an object {from, to, field}")
    start = parse_time(tr["from"], now, what="time_range.from") if tr.get("from") not in (None, "") else None
    if from_only:
        return start, None, None
    end = parse_time(tr["to"], now, what="time_range.to") if tr.get("to") not in (None, "") else now
    if start is not None and end is not None and start > end:
        raise QueryError(f"time_range: from ({start.isoformat()}) is after to ({end.isoformat()})")
    fld = tr.get("field") or None
    if fld not in (None, "start_time", "generated_time", "end_time", "time", "logtime",
                   "requestReceivedTimestamp"):
        raise QueryError(f"time_range.field: unknown time field {fld!r}")
    return start, end, fld


def sort_keys(body: dict[str, Any]) -> list[SortKey]:
    raw = body.get("sort") or []
    if not isinstance(raw, list):
        raise QueryError("sort: expected a list of {field, descending}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise QueryError(f"sort[{i}]: expected {{\"field\": NAME, \"descending\": BOOL}}")
        out.append(SortKey(item["field"], bool(item.get("descending", False))))
    return out


def page_size(body: dict[str, Any]) -> int:
    """Linseed's `max_page_size`: absent, null or 0 mean its default page of 1000 (Calico's Go client always
    sends 0 unless it sets a size)."""
    size = body.get("max_page_size")
    if size is None:
        return DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > MAX_PAGE_SIZE:
        raise QueryError(f"max_page_size: expected an integer from 0 to {MAX_PAGE_SIZE}, got {size!r}")
    return size or DEFAULT_PAGE_SIZE
