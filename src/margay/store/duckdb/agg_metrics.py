"""The base of the aggregation compiler on the embedded engine (aggs.py): field resolution, keys, and the metric
aggregations (sum, avg, min, max, value_count, cardinality, extended_stats, percentiles) as SQL expressions
that every bucket level computes in its own GROUP BY (levels.py); over roll-up rows, counts and metrics are
the roll-up's (store/rollup.py: each row stands for `_count` records)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind
from ...query.aggs import check as _check
from ...query.aggs import date_interval, double
from ...query.es.dates import date_math, format_ms
from ...query.es.fields import FieldRef, Fields
from .levels import Parent, Runner, Scope

Hits = Callable[[Scope, dict[str, Any]], dict[str, Any]]
RolledMetric = Callable[[str, str], str]  # (metric, field) -> its SQL over roll-up rows
_PARAMS = {"cardinality": ("precision_threshold",), "extended_stats": ("sigma",),
           "percentiles": ("percents", "keyed", "tdigest")}
_MULTI = ("extended_stats", "percentiles")  # metrics of several values: their SQL yields a struct
DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)


class Base:
    """What every aggregation needs: the fields, the SQL runner, now, the query compiler and top_hits, and over a
    roll-up source (`rolled`) the roll-up's metric SQL."""

    def __init__(self, fields: Fields, run: Runner, now: datetime, compile_query: Callable[[Any], tuple[str, list[Any]]],
                 hits: Hits | None = None, universe: Scope | None = None, rolled: RolledMetric | None = None) -> None:
        self.fields = fields
        self.run = run
        self.now = now
        self.compile_query = compile_query
        self.hits = hits
        # the rows of the indices searched, before the request's query: terms with min_doc_count 0 list their values
        self.universe = universe
        self.rolled = rolled
        self.count = 'sum("_count")' if rolled is not None else "count(*)"

    def field(self, params: dict[str, Any], name: str, kind: str) -> FieldRef | None:
        fname = params.get("field")
        if not isinstance(fname, str):
            if "script" in params:
                raise QueryError(f"aggregation [{name}]: scripts are not supported")
            raise QueryError(f"aggregation [{name}]: {kind} needs a 'field'")
        ref = self.fields.resolve(fname)
        if ref is not None and (ref.nested is not None or ref.kind in (Kind.STRUCT, Kind.TEXT)):
            raise QueryError(f"aggregation [{name}]: cannot aggregate on {fname!r} (an object, nested or text field)")
        if ref is not None and ref.params:
            raise QueryError(f"aggregation [{name}]: aggregations on map keys ({fname!r}) are not supported")
        return ref

    def aggregate(self, aggs: Any, scope: Scope) -> dict[str, Any]:
        raise NotImplementedError

    def _level(self, aggs: Any, scope: Scope, parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        raise NotImplementedError

    def children(self, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        return self.aggregate(subs, scope) if subs else {}

    def _interval(self, name: str, params: dict[str, Any]) -> tuple[str, int]:
        """('fixed', ms) or (calendar unit, 0)."""
        return date_interval(name, params)

    # -- metrics ---------------------------------------------------------------------------------------
    def metric_sql(self, name: str, kind: str, params: Any) -> tuple[str, FieldRef | None]:
        sql, ref = self._raw_metric_sql(name, kind, params)  # checks the request either way
        if self.rolled is not None and ref is not None and kind not in _MULTI:
            return self.rolled(kind, params["field"]), ref
        return sql, ref

    def _raw_metric_sql(self, name: str, kind: str, params: Any) -> tuple[str, FieldRef | None]:
        params = _check(params, {"field", "missing", "format", *_PARAMS.get(kind, ())}, name, kind)
        if "missing" in params:
            raise QueryError(f"aggregation [{name}]: 'missing' on metric aggregations is not supported")
        ref = self.field(params, name, kind)
        if kind in _MULTI:
            return _multi_sql(name, kind, params, ref), ref
        if ref is None:
            return "NULL", None
        e = ref.sql
        if kind == "cardinality":
            if ref.kind.is_list:  # each distinct element once, as Elasticsearch counts a multi-valued field
                return f"len(list_distinct(flatten(list({e}))))", ref
            return f"count(DISTINCT {e})", ref
        if kind == "value_count":
            return (f"coalesce(sum(len(list_filter({e}, lambda el: el IS NOT NULL))), 0)" if ref.kind.is_list
                    else f"count({e})"), ref
        if ref.kind.is_list:
            if ref.kind is not Kind.LONG_LIST:
                raise QueryError(f"aggregation [{name}]: {kind} needs a numeric field")
            inner = {"sum": "list_sum", "min": "list_min", "max": "list_max"}.get(kind)
            if inner is None:
                return f"(sum(list_sum({e})) / nullif(sum(len({e})), 0))::DOUBLE", ref
            return f"{kind}({inner}({e}))::DOUBLE", ref
        if not (ref.kind.is_numeric or ref.is_date or ref.kind is Kind.BOOL):
            raise QueryError(f"aggregation [{name}]: {kind} needs a numeric or date field, {ref.name!r} is not")
        col = ref.ms_sql() if ref.is_date else f"CAST({e} AS DOUBLE)"
        return f"{kind}({col})::DOUBLE", ref

    def metric_value(self, kind: str, params: dict[str, Any], ref: FieldRef | None, value: Any) -> dict[str, Any]:
        if kind == "extended_stats":
            return extended_stats(value, params)
        if kind == "percentiles":
            return percentiles(value, params)
        if kind in ("cardinality", "value_count"):
            return {"value": int(value or 0)}
        entry: dict[str, Any]
        if kind == "sum":
            entry = {"value": float(value or 0.0)}
            if ref is not None and ref.is_date:
                entry["value_as_string"] = format_ms(int(value or 0), params.get("format") or ref.date_format or "")
            return entry
        entry = {"value": double(value)}
        if value is not None and ref is not None and ref.is_date:
            entry["value_as_string"] = format_ms(int(value), params.get("format") or ref.date_format or "")
        return entry


    def _coerce_missing(self, ref: FieldRef, missing: Any, name: str) -> Any:
        if ref.is_date:
            return date_math(missing, ref.date_format or "strict_date_optional_time", self.now)
        if ref.kind.is_numeric:
            return missing
        if ref.kind is Kind.BOOL:
            return missing in (True, "true")
        if ref.kind in (Kind.IP,):
            raise QueryError(f"aggregation [{name}]: 'missing' on ip fields is not supported")
        return str(missing)

    def _key(self, ref: FieldRef, key: Any, fmt: str | None) -> dict[str, Any]:
        if ref.is_date:
            return {"key": int(key), "key_as_string": format_ms(int(key), fmt or ref.date_format or "")}
        if ref.kind is Kind.BOOL:
            return {"key": 1 if key else 0, "key_as_string": "true" if key else "false"}
        if ref.kind is Kind.DOUBLE:
            return {"key": float(key)}
        return {"key": key}


# -- metrics of several values ---------------------------------------------------------------------------

def _multi_sql(name: str, kind: str, params: dict[str, Any], ref: FieldRef | None) -> str:
    """extended_stats: count, min, max and exact sums (integers summed as HUGEINT, doubles compensated), as
    OpenSearch's compensated double sums give; percentiles: the sorted values (see `percentiles`)."""
    if ref is not None and (ref.kind.is_list or not (ref.kind.is_numeric or ref.kind is Kind.BOOL)):
        raise QueryError(f"aggregation [{name}]: {kind} needs a single-valued numeric field, {ref.name!r} is not")
    if kind == "percentiles":
        _percents(name, params)
        if params.get("tdigest") not in (None, {}) and params.get("tdigest") != {"compression": 100}:
            raise QueryError(f"aggregation [{name}]: percentiles tdigest settings other than the default are not "
                             "supported")
    sigma = params.get("sigma", 2)
    if kind == "extended_stats" and (not isinstance(sigma, int | float) or isinstance(sigma, bool) or sigma < 0):
        raise QueryError(f"aggregation [{name}]: [sigma] must be greater than or equal to 0")
    if ref is None:
        return "NULL"
    x = f"CAST({ref.sql} AS DOUBLE)"
    if kind == "percentiles":
        return f"list_sort(list({x}) FILTER (WHERE {ref.sql} IS NOT NULL))"
    if ref.kind is Kind.DOUBLE:
        total, squares = f"fsum({x})", f"fsum({x} * {x})"
    else:
        v = f"CAST({ref.sql} AS HUGEINT)"
        total, squares = f"CAST(sum({v}) AS DOUBLE)", f"CAST(sum({v} * {v}) AS DOUBLE)"
    return (f"struct_pack(n := count({ref.sql}), lo := min({x}), hi := max({x}), s := {total}, "
            f"ss := {squares})")


def _percents(name: str, params: dict[str, Any]) -> list[float]:
    got = params.get("percents", DEFAULT_PERCENTS)
    items = list(got) if isinstance(got, list | tuple) else [got]  # OpenSearch takes one value as a list of one
    out = []
    for p in items:
        try:
            v = float(p) if not isinstance(p, bool | dict | list | None) else math.nan
        except ValueError:
            v = math.nan
        if not 0 <= v <= 100:  # NaN fails too
            raise QueryError(f"aggregation [{name}]: [percents] must be numbers from 0 to 100, got {p!r}")
        out.append(v)
    if not out:
        raise QueryError(f"aggregation [{name}]: [percents] must not be empty")
    return out


def extended_stats(value: Any, params: dict[str, Any]) -> dict[str, Any]:
    """OpenSearch's extended_stats from count, min, max, sum and sum of squares (its formulas, in doubles)."""
    sigma = float(params.get("sigma", 2))
    n = int(value["n"]) if value else 0
    if n == 0:
        empty = {"upper": None, "lower": None, "upper_population": None, "lower_population": None,
                 "upper_sampling": None, "lower_sampling": None}
        return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0, "sum_of_squares": None,
                "variance": None, "variance_population": None, "variance_sampling": None, "std_deviation": None,
                "std_deviation_population": None, "std_deviation_sampling": None, "std_deviation_bounds": empty}
    total, squares = float(value["s"]), float(value["ss"])
    avg = total / n
    var = max((squares - (total * total) / n) / n, 0.0)
    var_s = max((squares - (total * total) / n) / (n - 1), 0.0) if n > 1 else math.nan
    std, std_s = math.sqrt(var), math.sqrt(var_s)
    return {"count": n, "min": float(value["lo"]), "max": float(value["hi"]), "avg": avg, "sum": total,
            "sum_of_squares": squares, "variance": var, "variance_population": var, "variance_sampling": var_s,
            "std_deviation": std, "std_deviation_population": std, "std_deviation_sampling": std_s,
            "std_deviation_bounds": {"upper": avg + sigma * std, "lower": avg - sigma * std,
                                     "upper_population": avg + sigma * std, "lower_population": avg - sigma * std,
                                     "upper_sampling": avg + sigma * std_s, "lower_sampling": avg - sigma * std_s}}


def percentiles(value: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Percentiles as OpenSearch's t-digest answers while every value is its own centroid (up to its compression,
    100 values, and in practice a few hundred): value i stands at rank i + ½ and ranks between interpolate
    linearly; below the first and past the last, the smallest and the largest value. Beyond that t-digest
    estimates and margay's figure is the exact one (docs/es-api.md)."""
    values = list(value or [])
    n = len(values)
    out: dict[str, Any] = {}
    for p in _percents("percentiles", params):
        pos = p / 100 * n - 0.5
        v: float | None
        if n == 0:
            v = None
        elif pos <= 0:
            v = float(values[0])
        elif pos >= n - 1:
            v = float(values[-1])
        else:
            i = math.floor(pos)
            v = float(values[i]) + (pos - i) * (float(values[i + 1]) - float(values[i]))
        out[_percent_key(p)] = v
    if params.get("keyed", True) is False:
        return {"values": [{"key": float(k), "value": v} for k, v in out.items()]}
    return {"values": out}


def _percent_key(p: float) -> str:
    return repr(float(p))
