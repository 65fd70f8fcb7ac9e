"""Linseed's aggregation requests: what they may ask for, checked the same way on every engine, and the request
the one compiler (store/duckdb/aggs.py) and OpenSearch then run.

Linseed's API forwards Elasticsearch aggregations; margay takes the subset in query/aggs.py's `LINSEED` dialect
and maps only Linseed's differences here: every field must be one of the log type's query keys (an unknown one
is an error, not an empty answer), metrics other than counts need a single-valued numeric or date field, and
date histograms and min/max of a time field print their keys as RFC 3339 (as OpenSearch is asked to).
"""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from ..logtypes import Kind, LogType, QueryKey
from .aggs import LINSEED, MAX_BUCKETS, METRICS, date_interval, split

_OBJECTS = (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST)
TIME_FORMAT = "strict_date_optional_time"
TIME_FORMATTED = ("date_histogram", "min", "max")  # the kinds whose time values OpenSearch is asked to print so


def linseed_request(lt: LogType, aggs: Any) -> dict[str, Any]:
    """`aggs` checked as Linseed's API takes them; the same tree, time formats added, for an engine to run."""
    if not isinstance(aggs, dict):
        raise QueryError("aggregations: expected an object of name -> aggregation")
    return {name: _one(lt, name, spec) for name, spec in aggs.items()}


def _one(lt: LogType, name: str, spec: Any) -> dict[str, Any]:
    kind, params, subs = split(spec, name, LINSEED)
    if not isinstance(params, dict) or "field" not in params:
        raise QueryError(f"aggregation {name!r}: {kind} needs a 'field'")
    qk = _key(lt, params["field"], name)
    if kind in METRICS and kind not in ("cardinality", "value_count"):
        if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON):
            raise QueryError(f"aggregation {name!r}: {kind} needs a single-valued field, {qk.name!r} is a list")
        if not (qk.kind.is_numeric or qk.kind.is_time):
            raise QueryError(f"aggregation {name!r}: {kind} needs a numeric or date field, {qk.name!r} is not")
    elif kind == "terms":
        size = params.get("size", 10)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size > MAX_BUCKETS:
            raise QueryError(f"aggregation {name!r}: size must be an integer from 1 to {MAX_BUCKETS}")
        if qk.kind in _OBJECTS:
            raise QueryError(f"aggregation {name!r}: cannot group by {qk.name!r}: it is an object")
    elif kind == "date_histogram":
        if not qk.kind.is_time:
            raise QueryError(f"field {qk.name!r} is not a date")
        date_interval(name, params, LINSEED)
    if kind in TIME_FORMATTED and qk.kind.is_time and "format" not in params:
        params = {**params, "format": TIME_FORMAT}
    out: dict[str, Any] = {kind: params}
    if subs:
        out["aggs"] = linseed_request(lt, subs)
    return out  # `meta` is not echoed: Linseed's answers never carried it


def _key(lt: LogType, name: Any, agg: str) -> QueryKey:
    if not isinstance(name, str):
        raise QueryError(f"aggregation {agg!r}: 'field' must be a string")
    keys = lt.query_keys()
    if name not in keys:
        raise QueryError(f"aggregation {agg!r}: unknown field {name!r} for {lt.name}")
    return keys[name]
