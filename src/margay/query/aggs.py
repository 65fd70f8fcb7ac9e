"""Aggregation requests (Elasticsearch-shaped), parsed and checked once for every API and every engine: the one
table of aggregation types, the one `split`, the parameters each type allows, the one set of date-histogram
interval rules (also what decides roll-ups) and the shapes of keys (Java's double printing).

Two dialects read the same table: the `/es/` API takes every type below; Linseed's API takes a subset and
words its errors its own way (`LINSEED`; query/linseed_aggs.py maps its other differences). store/duckdb/aggs.py
compiles both to SQL with one compiler; OpenSearch runs them natively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError

METRICS = ("sum", "avg", "min", "max", "value_count", "cardinality", "extended_stats", "percentiles")
BUCKETS = ("terms", "date_histogram", "histogram", "range", "filters", "filter", "composite", "top_hits")
MAX_BUCKETS = 65_535


@dataclass(frozen=True)
class Dialect:
    """An API's subset of the table and how it names an aggregation in its errors."""

    metrics: tuple[str, ...]
    buckets: tuple[str, ...]
    linseed: bool = False

    def name(self, name: str) -> str:
        return repr(name) if self.linseed else f"[{name}]"

    def unsupported(self, name: str, kind: str) -> str:
        if self.linseed:
            return (f"aggregation {name!r}: unsupported aggregation type {kind!r}; "
                    f"supported: {', '.join(self.buckets + self.metrics)}")
        return (f"aggregation [{name}]: unsupported aggregation type [{kind}]; margay's ES API supports "
                f"{', '.join(self.buckets + self.metrics)}")


ES = Dialect(METRICS, BUCKETS)
LINSEED = Dialect(("sum", "avg", "min", "max", "cardinality", "value_count"), ("terms", "date_histogram"),
                  linseed=True)
LEAVES = ("top_hits",)  # bucket-like types that take no sub-aggregations


def split(spec: Any, name: str, dialect: Dialect = ES) -> tuple[str, Any, dict[str, Any]]:
    """(type, parameters, sub-aggregations) of one aggregation, checked against the dialect's types."""
    at = dialect.name(name)
    if not isinstance(spec, dict):
        raise QueryError(f"aggregation {at}: expected an object")
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise QueryError(f"aggregation {at}: expected exactly one aggregation type, got {kinds}")
    kind = kinds[0]
    if kind not in dialect.metrics + dialect.buckets:
        raise QueryError(dialect.unsupported(name, kind))
    if (kind in METRICS or kind in LEAVES) and subs:
        raise QueryError(f"aggregation {at}: a {kind} aggregation cannot have sub-aggregations")
    return kind, spec[kind], subs


def check(params: Any, allowed: set[str], name: str, kind: str) -> dict[str, Any]:
    """The parameters of one aggregation, refused when it names one the type does not take."""
    if not isinstance(params, dict):
        raise QueryError(f"aggregation [{name}]: {kind} expects an object")
    extra = set(params) - allowed
    if extra:
        raise QueryError(f"aggregation [{name}]: {kind} parameter [{sorted(extra)[0]}] is not supported")
    return params


def min_doc_count(params: dict[str, Any], name: str, default: int) -> int:
    """A bucket aggregation's min_doc_count: an integer of at least 0."""
    got = params.get("min_doc_count", default)
    if not isinstance(got, int) or isinstance(got, bool) or got < 0:
        raise QueryError(f"aggregation [{name}]: [min_doc_count] must be greater than or equal to 0")
    return got


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
    """A bad interval: `what` is fixed_interval, calendar_interval or missing; `date_interval` words the message."""

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


def date_interval(name: str, params: dict[str, Any], dialect: Dialect = ES) -> tuple[str, int]:
    """A date histogram's ('fixed', ms) or (calendar unit letter, 0); a QueryError in the dialect's words."""
    try:
        iv = interval(params)
    except IntervalError as exc:
        raise QueryError(_interval_message(name, exc, dialect)) from None
    return (iv.unit, iv.ms) if iv.unit == "fixed" else (iv.unit, 0)


def _interval_message(name: str, exc: IntervalError, dialect: Dialect) -> str:
    at = dialect.name(name)
    if exc.what == "fixed_interval":
        if dialect.linseed:
            return (f"aggregation {at}: fixed_interval {exc.value!r} must look like 30s, 5m, 1h or 1d "
                    "(a positive number)")
        return f"aggregation {at}: failed to parse fixed_interval [{exc.value}]"
    if exc.what == "calendar_interval":
        if dialect.linseed:
            return (f"aggregation {at}: unknown calendar_interval {exc.value!r}; use one of minute, hour, day, week, "
                    "month, quarter, year (or 1m, 1h, 1d, 1w, 1M, 1q, 1y)")
        return f"aggregation {at}: the supplied calendar interval [{exc.value}] is not valid"
    return f"aggregation {at}: date_histogram needs fixed_interval or calendar_interval"


# -- values ------------------------------------------------------------------------------------------------

def double(v: Any) -> float | None:
    return None if v is None else float(v)


def java_double(v: float) -> str:
    """A double as Java's Double.toString prints it (range keys): shortest digits, E notation from 1e7."""
    if 1e-3 <= abs(v) < 1e7 or v == 0:
        text = repr(float(v))
        return text if "e" not in text else f"{v:.1f}"
    from decimal import Decimal

    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = len(ds) - 1 + int(exp)
    mant = ds[0] + "." + (ds[1:] or "0")
    return f"{'-' if sign else ''}{mant}E{e10}"
