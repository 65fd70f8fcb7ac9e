"""The aggregation compiler of the embedded engine: Elasticsearch-shaped requests compiled to SQL and run in
DuckDB, for both APIs — the `/es/` API's requests and Linseed's (`Backend.aggregate`, checked and mapped by
query/linseed_aggs.py), over raw rows or, when the engine chose one (store/rollup.py), roll-up rows.

Bucket aggregations group with one GROUP BY per level (levels.py); metric sub-aggregations ride in the same
GROUP BY. Answers take Elasticsearch's shape, keys and formats (dates in ms, key_as_string in the field's
format, histogram/range keys as doubles). agg_metrics.py holds the fields and metrics, agg_buckets.py
range/filters/composite/top_hits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ...errors import QueryError
from ...query.aggs import MAX_BUCKETS, METRICS, min_doc_count, split
from ...query.aggs import check as _check
from ...query.es.dates import _add as add_unit
from ...query.es.dates import date_math, floor_unit, format_ms, zone
from .agg_buckets import Buckets, bucket_sql
from .levels import Level, Parent, Scope, grouped, metrics

__all__ = ["Aggregator", "Scope", "bucket_sql"]


class Aggregator(Buckets):
    """Runs an aggregation tree for one log type (or several of the same fields); `hits(scope, params)` renders
    top_hits."""

    # -- entry -----------------------------------------------------------------------------------------
    def aggregate(self, aggs: Any, scope: Scope) -> dict[str, Any]:
        return self._level(aggs, scope, [()])[()]

    def _level(self, aggs: Any, scope: Scope, parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        """`aggs` for every enclosing bucket of `scope` at once: metrics in one GROUP BY, terms and histograms
        a level down (levels.py), range/filters/filter one query per listed bucket; composite (a page) and
        top_hits (hits) per enclosing bucket."""
        if not isinstance(aggs, dict):
            raise QueryError("aggregations: expected an object of name -> aggregation")
        specs = {n: split(s, n) for n, s in aggs.items()}
        out: dict[Parent, dict[str, Any]] = {p: {} for p in parents}
        found = {n: (k, p) for n, (k, p, _) in specs.items() if k in METRICS}
        if found:
            exprs = [self.metric_sql(n, k, p) for n, (k, p) in found.items()]
            values = metrics(self.run, scope, [e for e, _ in exprs]) if parents else {}
            for parent in parents:
                row = values.get(parent, [None] * len(exprs))
                for (n, (k, p)), (_, ref), v in zip(found.items(), exprs, row, strict=True):
                    out[parent][n] = self.metric_value(k, p, ref, v)
        for n, (kind, params, subs) in specs.items():
            if kind in METRICS:
                continue
            if kind in _BATCHED:
                each = getattr(self, "agg_" + kind)(n, params, subs, scope, parents)
            else:
                run = getattr(self, "agg_" + kind)
                each = {p: run(n, params, subs, scope.flat(p)) for p in parents}
            for p in parents:
                out[p][n] = each[p]
        for n, s in aggs.items():
            if isinstance(s, dict) and "meta" in s:
                for p in parents:
                    out[p][n]["meta"] = s["meta"]
        return {p: {n: out[p][n] for n in aggs} for p in parents}

    def children(self, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        return self.aggregate(subs, scope) if subs else {}

    def _below(self, subs: dict[str, Any], scope: Scope, key_sql: str, key_params: list[Any], level: Level,
               kids: list[Parent], cond: str | None = None) -> dict[Parent, dict[str, Any]]:
        """The sub-aggregations of every bucket `kids` of a level, a level down."""
        if not subs or not kids:
            return {}
        return self._level(subs, scope.keyed(key_sql, key_params, level.keep(), cond), kids)

    def _inline(self, subs: dict[str, Any]) -> tuple[dict[str, tuple[str, Any, Any]], list[str]]:
        """A bucket level's metric sub-aggregations, computed in the level's own GROUP BY: {name: (kind, params,
        field)} and their SQL (columns m0.. of the level's rows, in this order)."""
        found: dict[str, tuple[str, Any, Any]] = {}
        exprs: list[str] = []
        for n, spec in subs.items():
            kind, params, _ = split(spec, n)
            if kind in METRICS:
                sql, ref = self.metric_sql(n, kind, params)
                found[n] = (kind, params, ref)
                exprs.append(sql)
        return found, exprs

    def _values(self, found: dict[str, tuple[str, Any, Any]], row: list[Any], subs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (n, (kind, params, ref)), v in zip(found.items(), row, strict=True):
            out[n] = self.metric_value(kind, params, ref, v)
            if "meta" in subs[n]:
                out[n]["meta"] = subs[n]["meta"]
        return out

    # -- terms -----------------------------------------------------------------------------------------
    def _order(self, name: str, order: Any, subs: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
        """[(what, ASC|DESC)] where what is _count, _key or a metric sub-aggregation name."""
        if order is None:
            return [("_count", "DESC"), ("_key", "ASC")], {}
        items = order if isinstance(order, list) else [order]
        out: list[tuple[str, str]] = []
        metric_subs: dict[str, Any] = {}
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                raise QueryError(f"aggregation [{name}]: order must be {{\"_count\"|\"_key\"|<metric>: asc|desc}}")
            (key, direction), = item.items()
            if str(direction).lower() not in ("asc", "desc"):
                raise QueryError(f"aggregation [{name}]: order direction must be asc or desc")
            key = "_key" if key == "_term" else key
            if key not in ("_count", "_key"):
                spec = subs.get(key)
                kind = split(spec, key)[0] if spec is not None else None
                if kind not in METRICS or kind in ("extended_stats", "percentiles"):
                    raise QueryError(f"aggregation [{name}]: ordering by [{key}] is not supported; order by _count, "
                                     "_key or a single-value metric sub-aggregation")
                metric_subs[key] = spec
            out.append((key, str(direction).upper()))
        if not any(k == "_key" for k, _ in out):
            out.append(("_key", "ASC"))  # Elasticsearch's tie-breaker for every order
        return out, metric_subs

    def agg_terms(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                  parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        params = _check(params, {"field", "size", "order", "min_doc_count", "missing", "shard_size",
                                 "show_term_doc_count_error", "execution_hint", "collect_mode", "format",
                                 "value_type", "shard_min_doc_count"}, name, "terms")
        size = params.get("size", 10)
        if not isinstance(size, int) or size < 1 or size > MAX_BUCKETS:
            raise QueryError(f"aggregation [{name}]: [size] must be greater than 0 and at most {MAX_BUCKETS}")
        min_count = min_doc_count(params, name, 1)
        ref = self.field(params, name, "terms")
        empty = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []}
        missing = params.get("missing")
        if ref is None:
            if missing is None:
                return {p: dict(empty, buckets=[]) for p in parents}
            raise QueryError(f"aggregation [{name}]: 'missing' on an unmapped field is not supported")
        order, metric_subs = self._order(name, params.get("order"), subs)
        e = ref.sql
        key_params: list[Any] = []
        cond: str | None = None
        if ref.kind.is_list:
            if missing is not None:
                raise QueryError(f"aggregation [{name}]: 'missing' on multi-valued fields is not supported")
            key_sql = f"unnest(list_distinct({e}))"
            cond = f"list_contains({e}, ?)"
        else:
            key_sql = ref.ms_sql() if ref.is_date else e
            if missing is not None:
                key_sql = f"coalesce({key_sql}, ?)"
                key_params = [self._coerce_missing(ref, missing, name)]
        found, exprs = self._inline(subs) if min_count != 0 else ({}, [])
        names = {m: f"m{i}" for i, m in enumerate(found)}
        order_sql = ", ".join(f"{'c' if k == '_count' else 'k' if k == '_key' else names[k]} {d} NULLS LAST"
                              for k, d in order)
        if min_count == 0 and metric_subs:
            raise QueryError(f"aggregation [{name}]: terms with min_doc_count 0 ordered by a sub-aggregation is "
                             "not supported; order by _count or _key")
        if not parents:
            return {}
        if min_count == 0:
            level = self._with_empty(scope, key_sql, key_params, order, size, parents)
        else:
            level = grouped(self.run, scope, key_sql, key_params, count=self.count, exprs=exprs, order=order_sql,
                            limit=size, min_count=min_count, total_all=False, hashed=len(found) < len(subs))
        kids = [(*p, r[0]) for p in parents for r in level.rows.get(p, [])]
        below = self._below({n: sp for n, sp in subs.items() if n not in found}, scope, key_sql, key_params, level,
                            kids, cond)
        out: dict[Parent, dict[str, Any]] = {}
        for p in parents:
            buckets = []
            for key, count, *rest in level.rows.get(p, []):
                bucket = self._key(ref, key, params.get("format"))
                bucket["doc_count"] = count
                more = {**self._values(found, rest[:len(found)], subs), **below.get((*p, key), {})}
                bucket.update({n: more[n] for n in subs if n in more})
                buckets.append(bucket)
            shown = sum(b["doc_count"] for b in buckets)
            out[p] = {"doc_count_error_upper_bound": 0,
                      "sum_other_doc_count": level.totals.get(p, 0) - shown, "buckets": buckets}
        return out

    def _with_empty(self, scope: Scope, key_sql: str, key_params: list[Any], order: list[tuple[str, str]],
                    size: int, parents: list[Parent]) -> Level:
        """terms with min_doc_count 0: every value of the indices searched is a bucket, 0 where no record of the
        enclosing bucket has it (as OpenSearch answers), ranked by `order` and cut to `size` per parent."""
        import functools

        level = grouped(self.run, scope, key_sql, key_params, count=self.count, order="k")
        universe = self.universe or Scope(scope.sql, scope.params)
        every = [r[0] for r in self.run(f"SELECT DISTINCT k FROM (SELECT {key_sql} AS k {universe.sql}) "  # noqa: S608
                                        "WHERE k IS NOT NULL", key_params + universe.params)]

        def compare(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
            for what, direction in order:
                x, y = (a[1], b[1]) if what == "_count" else (a[0], b[0])
                if x != y:
                    less = -1 if x < y else 1
                    return less if direction == "ASC" else -less
            return 0

        rows: dict[Parent, list[tuple[Any, ...]]] = {}
        for p in parents:
            have = {r[0]: r for r in level.rows.get(p, [])}
            merged = list(have.values()) + [(k, 0, None) for k in every if k not in have]
            rows[p] = sorted(merged, key=functools.cmp_to_key(compare))[:size]
        return Level(rows, {p: sum(int(r[1]) for r in level.rows.get(p, [])) for p in parents}, level.truncated)

    # -- date_histogram ----------------------------------------------------------------------------------
    def agg_date_histogram(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                           parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        params = _check(params, {"field", "fixed_interval", "calendar_interval", "interval", "time_zone",
                                 "min_doc_count", "extended_bounds", "format", "offset", "order", "keyed"},
                        name, "date_histogram")
        if params.get("order") not in (None, {"_key": "asc"}):
            raise QueryError(f"aggregation [{name}]: date_histogram order other than _key asc is not supported")
        if params.get("offset") not in (None, "0", 0, "+0s"):
            raise QueryError(f"aggregation [{name}]: date_histogram offset is not supported")
        ref = self.field(params, name, "date_histogram")
        unit, step = self._interval(name, params)
        tz = zone(params.get("time_zone"))
        fmt = params.get("format") or (ref.date_format if ref is not None else None) or "strict_date_optional_time"
        tzname = params.get("time_zone")
        min_count = min_doc_count(params, name, 0)
        if ref is None:
            return {p: {"buckets": []} for p in parents}
        if not ref.is_date:
            raise QueryError(f"aggregation [{name}]: date_histogram needs a date field; {ref.name!r} is not")
        bucket_expr, bparams = bucket_sql(ref.ts_sql(), tz, unit, step)
        lo_hi: list[int | None] = [None, None]
        bounds = params.get("extended_bounds")
        if isinstance(bounds, dict):
            bfmt = params.get("format") or ref.date_format or "strict_date_optional_time"
            for i, which in enumerate(("min", "max")):
                if bounds.get(which) is not None:
                    lo_hi[i] = self._floor(date_math(bounds[which], bfmt, self.now, tz=tzname), unit, step, tz)
        if not parents:
            return {}
        found, exprs = self._inline(subs)
        level = grouped(self.run, scope, bucket_expr, bparams, count=self.count, exprs=exprs,
                        min_count=max(min_count, 1), hashed=len(found) < len(subs))

        def following(k: int) -> int:
            return k + step if unit == "fixed" else self._next(k, unit, tz)

        keys_of = {p: _keys(name, sorted(int(r[0]) for r in level.rows.get(p, [])), min_count == 0, lo_hi[0], lo_hi[1],
                            following) for p in parents}
        kids = [(*p, k) for p in parents for k in keys_of[p]]
        below = self._below({n: sp for n, sp in subs.items() if n not in found}, scope, bucket_expr, bparams, level,
                            kids)
        none = [None] * len(found)
        out: dict[Parent, dict[str, Any]] = {}
        for p in parents:
            rows = {int(r[0]): r for r in level.rows.get(p, [])}
            buckets = []
            for key in keys_of[p]:
                row = rows.get(key)
                bucket: dict[str, Any] = {"key_as_string": format_ms(key, fmt, tzname), "key": key,
                                          "doc_count": row[1] if row is not None else 0}
                more = {**self._values(found, list(row[2:2 + len(found)]) if row is not None else none, subs),
                        **below.get((*p, key), {})}
                bucket.update({n: more[n] for n in subs if n in more})
                buckets.append(bucket)
            out[p] = ({"buckets": {b["key_as_string"]: b for b in buckets}} if params.get("keyed")
                      else {"buckets": buckets})
        return out

    @staticmethod
    def _floor(ms: int, unit: str, step: int, tz: Any) -> int:
        if unit == "fixed":
            off = datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).utcoffset()
            o = int(off.total_seconds() * 1000) if off else 0
            return (ms + o) - (ms + o) % step - o
        at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)
        if unit == "q":
            at = floor_unit(at, "M").replace(month=(at.month - 1) // 3 * 3 + 1)
        else:
            at = floor_unit(at, unit)
        return int(at.timestamp() * 1000)

    @staticmethod
    def _next(ms: int, unit: str, tz: Any) -> int:
        at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)
        nxt: datetime | None
        if unit == "q":
            nxt = add_unit(at, 3, "M")
        else:
            nxt = add_unit(at, 1, unit) if unit in ("y", "M") else None
        if nxt is None:
            local = at.replace(tzinfo=None)
            from datetime import timedelta

            span = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
                    "m": timedelta(minutes=1)}[unit]
            nxt = (local + span).replace(tzinfo=tz)
        return int(nxt.timestamp() * 1000)

    # -- histogram -----------------------------------------------------------------------------------
    def agg_histogram(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                      parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        params = _check(params, {"field", "interval", "offset", "min_doc_count", "extended_bounds", "order",
                                 "keyed", "missing", "format"}, name, "histogram")
        if params.get("order") not in (None, {"_key": "asc"}) or params.get("missing") is not None:
            raise QueryError(f"aggregation [{name}]: histogram order/missing are not supported")
        interval = params.get("interval")
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0:
            raise QueryError(f"aggregation [{name}]: [interval] must be >0 for histogram aggregation")
        offset = float(params.get("offset", 0) or 0)
        ref = self.field(params, name, "histogram")
        if ref is None:
            return {p: {"buckets": []} for p in parents}
        if not (ref.kind.is_numeric or ref.is_date) or ref.kind.is_list:
            raise QueryError(f"aggregation [{name}]: histogram needs a single-valued numeric field")
        col = ref.ms_sql() if ref.is_date else ref.sql
        key_sql = f"(floor((CAST({col} AS DOUBLE) - ?) / ?) * ? + ?)"
        bparams = [offset, float(interval), float(interval), offset]
        min_count = min_doc_count(params, name, 0)

        def fl(v: float) -> float:
            return math.floor((v - offset) / interval) * interval + offset

        bounds = params.get("extended_bounds")
        lo_hi: list[float | None] = [None, None]
        if isinstance(bounds, dict):
            for i, which in enumerate(("min", "max")):
                if bounds.get(which) is not None:
                    try:
                        lo_hi[i] = fl(float(bounds[which]))
                    except (TypeError, ValueError):
                        raise QueryError(f"aggregation [{name}]: [extended_bounds] {which} must be a number") from None
        if not parents:
            return {}
        level = grouped(self.run, scope, key_sql, bparams, count=self.count, min_count=max(min_count, 1))
        keys_of: dict[Parent, list[float]] = {}
        for p in parents:
            keys = sorted(float(r[0]) for r in level.rows.get(p, []))
            lo, hi = (keys[0], keys[-1]) if keys else (None, None)
            if min_count == 0:
                b_lo, b_hi = lo_hi
                lo = b_lo if b_lo is not None and (lo is None or b_lo < lo) else lo
                hi = b_hi if b_hi is not None and (hi is None or b_hi > hi) else hi
                if lo is not None and hi is not None:
                    n = int(round((hi - lo) / interval))
                    if n > MAX_BUCKETS:
                        raise QueryError(f"aggregation [{name}]: more than {MAX_BUCKETS} buckets")
                    keys = [lo + i * interval for i in range(n + 1)]
            keys_of[p] = keys
        kids = [(*p, k) for p in parents for k in keys_of[p]]
        below = self._below(subs, scope, key_sql, bparams, level, kids)
        out: dict[Parent, dict[str, Any]] = {}
        for p in parents:
            counts = {float(r[0]): r[1] for r in level.rows.get(p, [])}
            out[p] = {"buckets": [{"key": float(k), "doc_count": counts.get(k, 0), **below.get((*p, k), {})}
                                  for k in keys_of[p]]}
        return out


_BATCHED = ("terms", "date_histogram", "histogram", "range", "filter", "filters")


def _keys(name: str, keys: list[int], fill: bool, lo: int | None, hi: int | None,
          following: Callable[[int], int]) -> list[int]:
    """A date histogram's bucket keys: those with records, or with min_doc_count 0 every key from the first to
    the last, widened to extended_bounds (`lo`, `hi`)."""
    if not fill:
        return keys
    first = keys[0] if keys else None
    last = keys[-1] if keys else None
    first = lo if lo is not None and (first is None or lo < first) else first
    last = hi if hi is not None and (last is None or hi > last) else last
    if first is None or last is None:
        return keys
    out = []
    k = first
    while k <= last:
        out.append(k)
        if len(out) > MAX_BUCKETS:
            raise QueryError(f"aggregation [{name}]: more than {MAX_BUCKETS} buckets")
        k = following(k)
    return out
