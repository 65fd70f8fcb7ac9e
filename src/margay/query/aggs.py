"""Aggregation requests (Elasticsearch-shaped), told apart the same way by every engine and every API: their
parts, and the one set of interval rules for date histograms (Linseed's API, the `/es/` API and roll-ups).

store/duckdb/ compiles them to SQL (aggs.py for Linseed's API, esaggs*.py for `/es/`, both over levels.py);
OpenSearch runs them natively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError

METRICS = ("sum", "avg", "min", "max", "cardinality", "value_count")
BUCKETS = ("terms", "date_histogram")
MAX_BUCKETS = 65_535

# -- intervals (one set of rules) ---------------------------------------------------------------------------
FIXED_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_FIXED = re.compile(r"^(\d+)(ms|s|m|h|d)$")
# Calendar intervals (and their one-unit spellings) to a unit letter, as Elasticsearch's date math writes them.
CALENDAR = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
            "month": "M", "1M": "M", "quarter": "q", "1q": "q", "year": "y", "1y": "y"}
TRUNC = {"m": "minute", "h": "hour", "d": "day", "w": "week", "M": "month", "q": "quarter", "y": "year"}
# Calendar units of one length (in UTC): their buckets are fixed-width there.
CALENDAR_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@dataclass(frozen=True)
class Interval:
    """A date histogram's bucket: `unit` "fixed" (then `ms` is its width) or a calendar unit letter (`ms` is the
    width in UTC for the fixed-length ones, else 0)."""

    unit: str
    ms: int

    @property
    def whole_hours(self) -> bool:
        """Each bucket is a union of whole UTC hours (a roll-up can answer it)."""
        if self.unit == "fixed":
            return self.ms % 3_600_000 == 0
        return self.unit != "m"


class IntervalError(ValueError):
    """A bad interval: `what` is fixed_interval, calendar_interval or missing; each API words the message."""

    def __init__(self, what: str, value: Any) -> None:
        super().__init__(what)
        self.what = what
        self.value = value


def histogram_interval(params: dict[str, Any]) -> tuple[Any, Any]:
    """A date histogram's (fixed_interval, calendar_interval), the legacy `interval` sorted into one."""
    fixed, calendar, legacy = params.get("fixed_interval"), params.get("calendar_interval"), params.get("interval")
    if legacy is not None:
        if legacy in CALENDAR:
            calendar = legacy
        else:
            fixed = legacy
    return fixed, calendar


def interval(params: dict[str, Any]) -> Interval:
    """The interval a date histogram asks for; IntervalError when it names none or a bad one."""
    fixed, calendar = histogram_interval(params)
    if fixed is not None:
        m = _FIXED.match(str(fixed))
        if not m or int(m.group(1)) <= 0:
            raise IntervalError("fixed_interval", fixed)
        return Interval("fixed", int(m.group(1)) * FIXED_MS[m.group(2)])
    if calendar is not None:
        if not isinstance(calendar, str) or calendar not in CALENDAR:
            raise IntervalError("calendar_interval", calendar)
        unit = CALENDAR[calendar]
        return Interval(unit, CALENDAR_MS.get(unit, 0))
    raise IntervalError("missing", None)


def _split(spec: dict[str, Any], name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    if not isinstance(spec, dict):
        raise QueryError(f"aggregation {name!r}: expected an object")
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise QueryError(f"aggregation {name!r}: expected exactly one aggregation type, got {kinds}")
    kind = kinds[0]
    if kind not in METRICS + BUCKETS:
        raise QueryError(f"aggregation {name!r}: unsupported aggregation type {kind!r}; "
                         f"supported: {', '.join(BUCKETS + METRICS)}")
    if kind in METRICS and subs:
        raise QueryError(f"aggregation {name!r}: a {kind} aggregation cannot have sub-aggregations")
    return kind, spec[kind], subs
