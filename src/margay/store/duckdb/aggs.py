"""Linseed aggregations on the embedded engine, compiled to SQL and run in DuckDB (never in Python).

One function per aggregation type; each answers for every enclosing bucket at once (levels.py): a nested
request costs one GROUP BY per level, with the metric sub-aggregations in the same GROUP BY. Over a roll-up
source each row stands for `_count` records (store/rollup.py). The answer has Elasticsearch's shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind, LogType, QueryKey
from ...query.aggs import MAX_BUCKETS, METRICS, TRUNC, IntervalError, _split, interval
from .levels import Parent, Runner, Scope, grouped, metrics

__all__ = ["Aggregator", "Scope"]


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
        return self._level(aggs, scope, [()])[()]

    def _level(self, aggs: dict[str, Any], scope: Scope, parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        """The aggregations `aggs` for every parent bucket of `scope` (one query per aggregation, not per bucket)."""
        if not isinstance(aggs, dict):
            raise QueryError("aggregations: expected an object of name -> aggregation")
        out: dict[Parent, dict[str, Any]] = {p: {} for p in parents}
        specs = {n: _split(s, n) for n, s in aggs.items()}
        found = {n: s for n, s in aggs.items() if specs[n][0] in METRICS}
        if found:
            exprs = [self._metric_sql(n, s) for n, s in found.items()]
            values = metrics(self.run, scope, exprs) if parents else {}
            for p in parents:
                out[p].update(self._metric_values(found, values.get(p, [None] * len(exprs))))
        for name, (kind, params, subs) in specs.items():
            if kind == "terms":
                each = self._terms(name, params, subs, scope, parents)
            elif kind == "date_histogram":
                each = self._date_histogram(name, params, subs, scope, parents)
            else:
                continue
            for p in parents:
                out[p][name] = each[p]
        return {p: {n: out[p][n] for n in aggs} for p in parents}

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

    def _metric_values(self, found: dict[str, Any], row: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, spec), value in zip(found.items(), row, strict=True):
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

    def _split_subs(self, subs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A bucket's sub-aggregations: (metrics, computed in its own GROUP BY; bucket aggregations, a level down)."""
        found = {n: sp for n, sp in subs.items() if _split(sp, n)[0] in METRICS}
        return found, {n: sp for n, sp in subs.items() if n not in found}

    def _terms(self, name: str, params: dict[str, Any], subs: dict[str, Any], scope: Scope,
               parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        if not isinstance(params, dict) or "field" not in params:
            raise QueryError(f"aggregation {name!r}: terms needs a 'field'")
        qk = _key(self.lt, params["field"], name)
        size = params.get("size", 10)
        if not isinstance(size, int) or size < 0 or size > MAX_BUCKETS:
            raise QueryError(f"aggregation {name!r}: size must be an integer from 0 to {MAX_BUCKETS}")
        min_count = params.get("min_doc_count", 1)
        if not isinstance(min_count, int) or isinstance(min_count, bool):
            raise QueryError(f"aggregation {name!r}: min_doc_count must be an integer")
        found, bucket_subs = self._split_subs(subs)
        exprs = [self._metric_sql(n, sp) for n, sp in found.items()]
        order_sql = self._terms_order(name, params.get("order"), list(found))
        if qk.kind.is_list:
            key_sql = f"unnest(list_distinct({qk.sql}))"
        elif qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
            raise QueryError(f"aggregation {name!r}: cannot group by {qk.name!r}: it is an object")
        else:
            key_sql = qk.sql
        if not parents:
            return {}
        level = grouped(self.run, scope, key_sql, [], count=self.count, exprs=exprs, order=order_sql, limit=size,
                        min_count=max(min_count, 1))
        totals = dict(level.totals)
        if min_count > 1 and len(totals) < len(parents):  # parents whose every bucket was too small
            totals.update(self._totals(scope, key_sql, [p for p in parents if p not in totals]))
        kids = [(*p, r[0]) for p in parents for r in level.rows.get(p, [])]
        below = (self._level(bucket_subs, scope.keyed(key_sql, [], level.keep()), kids)
                 if bucket_subs and kids else {})
        out: dict[Parent, dict[str, Any]] = {}
        for p in parents:
            buckets = []
            for key, count, *values in level.rows.get(p, []):
                values = values[:-1]  # the key hash
                bucket: dict[str, Any] = {"key": _key_value(key, qk)}
                if qk.kind is Kind.TIMESTAMP:
                    bucket["key_as_string"] = _ms_string(bucket["key"])
                bucket["doc_count"] = count
                more = {**(self._metric_values(found, values) if found else {}), **below.get((*p, key), {})}
                bucket.update({n: more[n] for n in subs if n in more})
                buckets.append(bucket)
            shown = sum(b["doc_count"] for b in buckets)
            out[p] = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": int(totals.get(p, 0)) - shown,
                      "buckets": buckets}
        return out

    def _totals(self, scope: Scope, key_sql: str, parents: list[Parent]) -> dict[Parent, int]:
        inner = scope.keyed(key_sql, [])
        got = metrics(self.run, inner, [self.count])
        return {p: int((got.get(p) or [0])[0] or 0) for p in parents}

    @staticmethod
    def _terms_order(name: str, order: Any, found: list[str]) -> str:
        """ORDER BY for a terms aggregation: _count, _key, or a metric sub-aggregation by name (column m<i>)."""
        if order is None:
            return "c DESC, k ASC"
        items = order if isinstance(order, list) else [order]
        parts = []
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                raise QueryError(f"aggregation {name!r}: order must be {{\"_count\"|\"_key\"|<metric>: \"asc\"|\"desc\"}}")
            (key, direction), = item.items()
            if direction not in ("asc", "desc") or key not in ("_count", "_key", "_term", *found):
                raise QueryError(f"aggregation {name!r}: unsupported order {item}; use _count, _key or a metric "
                                 "sub-aggregation, asc or desc")
            if key in found:
                parts.append(f"m{found.index(key)} {direction.upper()} NULLS LAST")
            else:
                parts.append(f"{'c' if key == '_count' else 'k'} {direction.upper()}")
        if not any(p.startswith("k ") for p in parts):
            parts.append("k ASC")
        return ", ".join(parts)

    def _date_histogram(self, name: str, params: dict[str, Any], subs: dict[str, Any], scope: Scope,
                        parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        if not isinstance(params, dict) or "field" not in params:
            raise QueryError(f"aggregation {name!r}: date_histogram needs a 'field'")
        qk = _key(self.lt, params["field"], name)
        ts = _ts(qk)
        bucket_sql, step_ms = _bucket_expr(name, params, ts)
        min_count = params.get("min_doc_count", 0)
        if not isinstance(min_count, int) or isinstance(min_count, bool):
            raise QueryError(f"aggregation {name!r}: min_doc_count must be an integer")
        found, bucket_subs = self._split_subs(subs)
        exprs = [self._metric_sql(n, sp) for n, sp in found.items()]
        if not parents:
            return {}
        key_sql = f"epoch_ms({bucket_sql})"
        level = grouped(self.run, scope, key_sql, [], count=self.count, exprs=exprs, order="k",
                        min_count=max(min_count, 1))
        bounds = params.get("extended_bounds")
        keys_of: dict[Parent, list[int]] = {}
        for p in parents:
            keys = sorted(int(r[0]) for r in level.rows.get(p, []))
            if min_count == 0 and step_ms and (keys or bounds):
                keys = _filled(name, keys, bounds, step_ms)
            keys_of[p] = keys
        kids = [(*p, k) for p in parents for k in keys_of[p]]
        below = (self._level(bucket_subs, scope.keyed(key_sql, [], level.keep()), kids)
                 if bucket_subs and kids else {})
        out: dict[Parent, dict[str, Any]] = {}
        for p in parents:
            rows = {int(r[0]): r for r in level.rows.get(p, [])}
            buckets = []
            for key in keys_of[p]:
                row = rows.get(key)
                bucket: dict[str, Any] = {"key_as_string": _ms_string(key), "key": key,
                                          "doc_count": row[1] if row is not None else 0}
                if found:
                    bucket.update(self._metric_values(found, list(row[2:-1]) if row is not None
                                                      else [None] * len(found)))
                bucket.update(below.get((*p, key), {}))
                if subs:
                    bucket = {**{k: bucket[k] for k in ("key_as_string", "key", "doc_count")},
                              **{n: bucket[n] for n in subs if n in bucket}}
                buckets.append(bucket)
            out[p] = {"buckets": buckets}
        return out


def _filled(name: str, keys: list[int], bounds: Any, step_ms: int) -> list[int]:
    """Every bucket key from the first to the last (widened to extended_bounds), as min_doc_count 0 asks."""
    lo = keys[0] if keys else None
    hi = keys[-1] if keys else None
    if isinstance(bounds, dict):
        b_lo = _bound_ms(bounds.get("min"), step_ms)
        b_hi = _bound_ms(bounds.get("max"), step_ms)
        lo = b_lo if lo is None or (b_lo is not None and b_lo < lo) else lo
        hi = b_hi if hi is None or (b_hi is not None and b_hi > hi) else hi
    if lo is None or hi is None:
        return keys
    if (hi - lo) // step_ms > MAX_BUCKETS:
        raise QueryError(f"aggregation {name!r}: more than {MAX_BUCKETS} buckets; use a wider interval")
    return list(range(lo, hi + 1, step_ms))


def _bucket_expr(name: str, params: dict[str, Any], ts: str) -> tuple[str, int | None]:
    """SQL that floors a timestamp to its bucket start (UTC), and the bucket width in ms when fixed."""
    try:
        iv = interval(params)
    except IntervalError as exc:
        if exc.what == "fixed_interval":
            raise QueryError(f"aggregation {name!r}: fixed_interval {exc.value!r} must look like 30s, 5m, 1h or 1d "
                             "(a positive number)") from None
        if exc.what == "calendar_interval":
            raise QueryError(f"aggregation {name!r}: unknown calendar_interval {exc.value!r}; use one of "
                             "minute, hour, day, week, month, quarter, year (or 1m, 1h, 1d, 1w, 1M, 1q, 1y)") from None
        raise QueryError(f"aggregation {name!r}: date_histogram needs fixed_interval or calendar_interval") from None
    if iv.unit == "fixed":
        return (f"time_bucket(to_milliseconds(CAST({iv.ms} AS BIGINT)), {ts}, "
                "TIMESTAMPTZ '1970-01-01 00:00:00+00')"), iv.ms
    return f"date_trunc('{TRUNC[iv.unit]}', {ts})", iv.ms or None


def _bound_ms(value: Any, step: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        ms = int(value)
    else:
        from ...query.model import parse_time

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
