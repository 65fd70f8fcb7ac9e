"""Linseed aggregations on the embedded engine, compiled to SQL and run in DuckDB (never in Python).

One function per aggregation type turns the request into GROUP BY queries; bucket aggregations nest by
adding their bucket's condition to the children's WHERE. Over a roll-up source each row stands for `_count`
records (store/rollup.py). The answer has Elasticsearch's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind, LogType, QueryKey
from ...query.aggs import _CALENDAR, _FIXED, _FIXED_UNITS, MAX_BUCKETS, METRICS, _split, histogram_interval

Runner = Callable[[str, list[Any]], list[tuple[Any, ...]]]



@dataclass(frozen=True)
class Scope:
    """Where a level of aggregation runs: FROM+WHERE SQL and its parameters."""

    sql: str
    params: list[Any]

    def narrowed(self, cond: str, params: list[Any]) -> Scope:
        return Scope(f"{self.sql} AND ({cond})", self.params + params)


def _key(lt: LogType, name: str, agg: str) -> QueryKey:
    if not isinstance(name, str):
        raise QueryError(f"aggregation {agg!r}: 'field' must be a string")
    keys = lt.query_keys()
    if name not in keys:
        raise QueryError(f"aggregation {agg!r}: unknown field {name!r} for {lt.name}")
    return keys[name]


def _ts(qk: QueryKey) -> str:
    """A TIMESTAMPTZ expression for a time key."""
    if qk.kind is Kind.EPOCH_S:
        return f"to_timestamp({qk.sql})"
    if qk.kind is Kind.TIMESTAMP:
        return qk.sql
    raise QueryError(f"field {qk.name!r} is not a date")


class Aggregator:
    """Runs a tree of aggregations for one log type through a SQL runner."""

    def __init__(self, lt: LogType, run: Runner, *, rolled: bool = False) -> None:
        self.lt = lt
        self.run = run
        # Over a roll-up source (store/rollup.py) each row stands for `_count` rows: counts become sums.
        self.rolled = rolled
        self.count = 'sum("_count")' if rolled else "count(*)"

    def aggregate(self, aggs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        if not isinstance(aggs, dict):
            raise QueryError("aggregations: expected an object of name -> aggregation")
        out: dict[str, Any] = {}
        metrics = {n: s for n, s in aggs.items() if _split(s, n)[0] in METRICS}
        if metrics:
            row = self.run(f"SELECT {', '.join(self._metric_sql(n, s) for n, s in metrics.items())} {scope.sql}",
                           scope.params)[0]
            out.update(self._metric_values(metrics, list(row)))
        for name, spec in aggs.items():
            kind, params, subs = _split(spec, name)
            if kind == "terms":
                out[name] = self._terms(name, params, subs, scope)
            elif kind == "date_histogram":
                out[name] = self._date_histogram(name, params, subs, scope)
        return {n: out[n] for n in aggs}

    # -- metrics -----------------------------------------------------------------------------------------

    def _metric_sql(self, name: str, spec: dict[str, Any]) -> str:
        sql = self._raw_metric_sql(name, spec)  # checks the request either way
        if self.rolled:
            from ..rollup import metric_sql

            kind, params, _ = _split(spec, name)
            return metric_sql(self.lt, kind, params["field"])
        return sql

    def _raw_metric_sql(self, name: str, spec: dict[str, Any]) -> str:
        kind, params, _ = _split(spec, name)
        if not isinstance(params, dict) or "field" not in params:
            raise QueryError(f"aggregation {name!r}: {kind} needs a 'field'")
        qk = _key(self.lt, params["field"], name)
        col = qk.sql
        if kind == "cardinality":
            return f"count(DISTINCT {col})" if not qk.kind.is_list else f"count(DISTINCT unnest({col}))"
        if kind == "value_count":
            return f"count({col})" if not qk.kind.is_list else f"sum(len({col}))"
        if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON):
            raise QueryError(f"aggregation {name!r}: {kind} needs a single-valued field, {qk.name!r} is a list")
        if qk.kind is Kind.TIMESTAMP:
            col = f"epoch_ms({col})"
        elif qk.kind is Kind.EPOCH_S:
            col = f"({col} * 1000)"
        elif not qk.kind.is_numeric:
            raise QueryError(f"aggregation {name!r}: {kind} needs a numeric or date field, {qk.name!r} is not")
        return f"{kind}({col})::DOUBLE"

    def _metric_values(self, metrics: dict[str, Any], row: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, spec), value in zip(metrics.items(), row, strict=True):
            kind, params, _ = _split(spec, name)
            qk = _key(self.lt, params["field"], name)
            if kind in ("cardinality", "value_count"):
                out[name] = {"value": int(value or 0)}
                continue
            if value is None and kind == "sum":
                value = 0.0
            entry: dict[str, Any] = {"value": value}
            if value is not None and qk.kind in (Kind.TIMESTAMP, Kind.EPOCH_S):
                entry["value_as_string"] = _ms_string(value)
            out[name] = entry
        return out

    # -- buckets -----------------------------------------------------------------------------------------

    def _children(self, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        return self.aggregate(subs, scope) if subs else {}

    def _terms(self, name: str, params: dict[str, Any], subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        if not isinstance(params, dict) or "field" not in params:
            raise QueryError(f"aggregation {name!r}: terms needs a 'field'")
        qk = _key(self.lt, params["field"], name)
        size = params.get("size", 10)
        if not isinstance(size, int) or size < 0 or size > MAX_BUCKETS:
            raise QueryError(f"aggregation {name!r}: size must be an integer from 0 to {MAX_BUCKETS}")
        min_count = int(params.get("min_doc_count", 1))
        metric_subs = {n: self._metric_sql(n, sp) for n, sp in subs.items() if _split(sp, n)[0] in METRICS}
        order_sql, by_metric = self._terms_order(name, params.get("order"), list(metric_subs))
        if qk.kind.is_list:
            inner = f"SELECT unnest(list_distinct({qk.sql})) AS k, * {scope.sql}"
            cond = f"list_contains({qk.sql}, ?)"
        elif qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
            raise QueryError(f"aggregation {name!r}: cannot group by {qk.name!r}: it is an object")
        else:
            inner = f"SELECT {qk.sql} AS k, * {scope.sql}"
            cond = f"{qk.sql} = ?"
        # Metric sub-aggregations are computed in the same GROUP BY; only bucket sub-aggregations recurse.
        metrics = "".join(f", {sql} AS {_alias(m)}" for m, sql in metric_subs.items())
        # The total of all groups rides along as a window over the groups (one scan, not two).
        n = self.count
        grouped = (f"SELECT k, {n} AS c{metrics}, sum({n}) OVER () AS total "  # noqa: S608
                   f"FROM ({inner}) WHERE k IS NOT NULL GROUP BY k")
        if min_count > 1:
            rows = self.run(f"{grouped} HAVING {n} >= ? ORDER BY {order_sql} LIMIT ?",
                            scope.params + [min_count, size])
            total = self.run(f"SELECT coalesce({n}, 0) FROM ({inner}) WHERE k IS NOT NULL",  # noqa: S608
                             scope.params)[0][0]
        else:
            rows = self.run(f"{grouped} ORDER BY {order_sql} LIMIT ?", scope.params + [size])
            total = rows[0][-1] if rows else 0
        rows = [r[:-1] for r in rows]
        bucket_subs = {n: sp for n, sp in subs.items() if n not in metric_subs}
        metric_specs = {n: subs[n] for n in metric_subs}
        buckets = []
        for key, count, *values in rows:
            bucket: dict[str, Any] = {"key": _key_value(key, qk), "doc_count": count}
            if qk.kind in (Kind.TIMESTAMP,):
                bucket["key_as_string"] = _ms_string(bucket["key"])
            bucket.update(self._metric_values(metric_specs, values) if metric_specs else {})
            bucket.update(self._children(bucket_subs, scope.narrowed(cond, [key])))
            bucket = {"key": bucket.pop("key"), **({"key_as_string": bucket.pop("key_as_string")}
                                                 if "key_as_string" in bucket else {}),
                      "doc_count": bucket.pop("doc_count"), **{n: bucket[n] for n in subs if n in bucket}}
            buckets.append(bucket)
        shown = sum(b["doc_count"] for b in buckets)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": int(total) - shown, "buckets": buckets}

    @staticmethod
    def _terms_order(name: str, order: Any, metrics: list[str]) -> tuple[str, list[str]]:
        """ORDER BY for a terms aggregation: _count, _key, or a metric sub-aggregation by name."""
        if order is None:
            return "c DESC, k ASC", []
        items = order if isinstance(order, list) else [order]
        parts = []
        used: list[str] = []
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                raise QueryError(f"aggregation {name!r}: order must be {{\"_count\"|\"_key\"|<metric>: \"asc\"|\"desc\"}}")
            (key, direction), = item.items()
            if direction not in ("asc", "desc") or key not in ("_count", "_key", "_term", *metrics):
                raise QueryError(f"aggregation {name!r}: unsupported order {item}; use _count, _key or a metric "
                                 "sub-aggregation, asc or desc")
            if key in metrics:
                used.append(key)
                parts.append(f"{_alias(key)} {direction.upper()} NULLS LAST")
            else:
                parts.append(f"{'c' if key == '_count' else 'k'} {direction.upper()}")
        if not any(p.startswith("k ") for p in parts):
            parts.append("k ASC")
        return ", ".join(parts), used

    def _date_histogram(self, name: str, params: dict[str, Any], subs: dict[str, Any],
                        scope: Scope) -> dict[str, Any]:
        if not isinstance(params, dict) or "field" not in params:
            raise QueryError(f"aggregation {name!r}: date_histogram needs a 'field'")
        qk = _key(self.lt, params["field"], name)
        ts = _ts(qk)
        bucket_sql, step_ms = _bucket_expr(name, params, ts)
        min_count = int(params.get("min_doc_count", 0))
        metric_subs = {n: self._metric_sql(n, sp) for n, sp in subs.items() if _split(sp, n)[0] in METRICS}
        metrics = "".join(f", {sql} AS {_alias(m)}" for m, sql in metric_subs.items())
        rows = self.run(f"SELECT epoch_ms({bucket_sql}) AS k, {self.count} AS c{metrics} {scope.sql} GROUP BY k ORDER BY k",
                        scope.params)
        counts = {int(k): c for k, c, *_ in rows if k is not None}
        metric_specs = {n: subs[n] for n in metric_subs}
        metric_rows = {int(k): vals for k, _, *vals in rows if k is not None}
        bucket_subs = {n: sp for n, sp in subs.items() if n not in metric_subs}
        keys = sorted(counts)
        bounds = params.get("extended_bounds")
        if min_count == 0 and step_ms and (keys or bounds):
            lo = keys[0] if keys else None
            hi = keys[-1] if keys else None
            if isinstance(bounds, dict):
                b_lo = _bound_ms(bounds.get("min"), step_ms)
                b_hi = _bound_ms(bounds.get("max"), step_ms)
                lo = b_lo if lo is None or (b_lo is not None and b_lo < lo) else lo
                hi = b_hi if hi is None or (b_hi is not None and b_hi > hi) else hi
            if lo is not None and hi is not None:
                if (hi - lo) // step_ms > MAX_BUCKETS:
                    raise QueryError(f"aggregation {name!r}: more than {MAX_BUCKETS} buckets; use a wider interval")
                keys = list(range(lo, hi + 1, step_ms))
        buckets = []
        for key in keys:
            count = counts.get(key, 0)
            if count < min_count:
                continue
            bucket: dict[str, Any] = {"key_as_string": _ms_string(key), "key": key, "doc_count": count}
            if metric_specs:
                values = metric_rows.get(key)
                bucket.update(self._metric_values(metric_specs, values if values is not None
                                                  else [None] * len(metric_specs)))
            if bucket_subs:
                cond = f"epoch_ms({bucket_sql}) = ?"
                bucket.update(self._children(bucket_subs, scope.narrowed(cond, [key])))
            if subs:
                bucket = {**{k: bucket[k] for k in ("key_as_string", "key", "doc_count")},
                          **{n: bucket[n] for n in subs if n in bucket}}
            buckets.append(bucket)
        return {"buckets": buckets}


def _alias(metric: str) -> str:
    """A SQL alias for a metric sub-aggregation used in ORDER BY (names are user text: never pasted)."""
    import hashlib

    return "o_" + hashlib.sha1(metric.encode()).hexdigest()[:12]


def _bucket_expr(name: str, params: dict[str, Any], ts: str) -> tuple[str, int | None]:
    """SQL that floors a timestamp to its bucket start, and the bucket width in ms when fixed."""
    fixed, calendar = histogram_interval(params)
    if fixed is not None:
        m = _FIXED.match(str(fixed))
        if not m:
            raise QueryError(f"aggregation {name!r}: fixed_interval {fixed!r} must look like 30s, 5m, 1h or 1d")
        n, unit = int(m.group(1)), m.group(2)
        if n <= 0:
            raise QueryError(f"aggregation {name!r}: interval must be positive")
        ms = n * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
        return f"time_bucket(INTERVAL '{n} {_FIXED_UNITS[unit]}', {ts}, TIMESTAMPTZ '1970-01-01 00:00:00+00')", ms
    if calendar is not None:
        if calendar not in _CALENDAR:
            raise QueryError(f"aggregation {name!r}: unknown calendar_interval {calendar!r}; "
                             f"use one of {', '.join(sorted(set(_CALENDAR)))}")
        unit = _CALENDAR[calendar]
        fixed_ms = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}.get(unit)
        return f"date_trunc('{unit}', {ts})", fixed_ms
    raise QueryError(f"aggregation {name!r}: date_histogram needs fixed_interval or calendar_interval")


def _bound_ms(value: Any, step: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        ms = int(value)
    else:
        from .model import parse_time

        ms = int(parse_time(value, datetime.now(UTC), what="extended_bounds").timestamp() * 1000)
    return ms - ms % step


def _key_value(key: Any, qk: QueryKey) -> Any:
    if isinstance(key, datetime):
        return int(key.timestamp() * 1000)
    if qk.kind is Kind.BOOL:
        return 1 if key else 0
    return key


def _ms_string(ms: float) -> str:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
