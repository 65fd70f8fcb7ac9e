"""The aggregation requests Linseed's API takes (Elasticsearch-shaped): their parts, told apart the same way
by every engine (store/duckdb/aggs.py compiles them to SQL; OpenSearch runs them natively)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import QueryError

METRICS = ("sum", "avg", "min", "max", "cardinality", "value_count")
BUCKETS = ("terms", "date_histogram")
MAX_BUCKETS = 65_535

_FIXED = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_FIXED_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CALENDAR = {"minute": "minute", "1m": "minute", "hour": "hour", "1h": "hour", "day": "day", "1d": "day",
             "week": "week", "1w": "week", "month": "month", "1M": "month", "quarter": "quarter",
             "1q": "quarter", "year": "year", "1y": "year"}


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


def histogram_interval(params: dict[str, Any]) -> tuple[Any, Any]:
    """A date histogram's (fixed_interval, calendar_interval), the legacy `interval` sorted into one."""
    fixed, calendar, legacy = params.get("fixed_interval"), params.get("calendar_interval"), params.get("interval")
    if legacy is not None:
        if legacy in _CALENDAR:
            calendar = legacy
        else:
            fixed = legacy
    return fixed, calendar


