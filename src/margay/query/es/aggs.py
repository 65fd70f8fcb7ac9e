"""Elasticsearch aggregations (the ES-compatible API's fuller set) compiled to SQL and run in the engine.

Bucket aggregations group with one GROUP BY; each bucket's sub-aggregations run over the parent scope
narrowed by the bucket's condition. Answers take Elasticsearch's shape, keys and formats (dates in ms,
key_as_string in the field's format, histogram/range keys as doubles).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind
from .dates import _add as add_unit
from .dates import date_math, floor_unit, format_ms, zone, zone_name
from .fields import FieldRef, Fields

Runner = Callable[[str, list[Any]], list[tuple[Any, ...]]]

METRICS = ("sum", "avg", "min", "max", "value_count", "cardinality")
BUCKETS = ("terms", "date_histogram", "histogram", "range", "filters", "filter", "composite", "top_hits")
MAX_BUCKETS = 65_535
_FIXED_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_CALENDAR = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
             "month": "M", "1M": "M", "quarter": "q", "1q": "q", "year": "y", "1y": "y"}
_TRUNC = {"m": "minute", "h": "hour", "d": "day", "w": "week", "M": "month", "q": "quarter", "y": "year"}


class Scope:
    """FROM+WHERE SQL and its parameters for one level of aggregation."""

    def __init__(self, sql: str, params: list[Any], filters: list[tuple[str, list[Any]]] | None = None) -> None:
        self.sql = sql
        self.params = params
        self.filters = filters or []  # the narrowing conditions so far (for top_hits)

    def narrowed(self, cond: str, params: list[Any]) -> Scope:
        return Scope(f"{self.sql} AND ({cond})", self.params + params, self.filters + [(cond, params)])


def _split(spec: Any, name: str) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(spec, dict):
        raise QueryError(f"aggregation [{name}]: expected an object")
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise QueryError(f"aggregation [{name}]: expected exactly one aggregation type, got {kinds}")
    kind = kinds[0]
    if kind not in METRICS + BUCKETS:
        raise QueryError(f"aggregation [{name}]: unsupported aggregation type [{kind}]; margay's ES API supports "
                         f"{', '.join(BUCKETS + METRICS)}")
    if (kind in METRICS or kind == "top_hits") and subs:
        raise QueryError(f"aggregation [{name}]: a {kind} aggregation cannot have sub-aggregations")
    return kind, spec[kind], subs


def _check(params: Any, allowed: set[str], name: str, kind: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise QueryError(f"aggregation [{name}]: {kind} expects an object")
    extra = set(params) - allowed
    if extra:
        raise QueryError(f"aggregation [{name}]: {kind} parameter [{sorted(extra)[0]}] is not supported")
    return params


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


def bucket_sql(ts: str, tz: Any, unit: str, step: int) -> tuple[str, list[Any]]:
    """SQL (epoch ms) that floors a TIMESTAMPTZ to its bucket start in local time `tz`, and its params."""
    from zoneinfo import ZoneInfo

    if tz is UTC or isinstance(tz, ZoneInfo):
        name = zone_name(tz)
        lp: list[Any] = [name]
        bp: list[Any] = [name]
        local = f"timezone(?, {ts})"

        def back(e: str) -> str:
            return f"timezone(?, {e})"
    else:
        off = tz.utcoffset(None)
        minutes = int(off.total_seconds() // 60) if off else 0
        local, lp = f"(timezone('UTC', {ts}) + to_minutes(CAST(? AS BIGINT)))", [minutes]

        def back(e: str) -> str:
            return f"timezone('UTC', {e} - to_minutes(CAST(? AS BIGINT)))"
        bp = [minutes]
    if unit == "fixed":
        inner = f"time_bucket(to_milliseconds({int(step)}), {local}, TIMESTAMP '1970-01-01 00:00:00')"
    else:
        inner = f"date_trunc('{_TRUNC[unit]}', {local})"
    if tz is UTC or isinstance(tz, ZoneInfo):
        return f"epoch_ms({back(inner)})", bp + lp
    return f"epoch_ms({back(inner)})", lp + bp


class EsAggregator:
    """Runs an aggregation tree for one log type; `hits(scope, params)` renders top_hits."""

    def __init__(self, fields: Fields, run: Runner, now: datetime, compile_query: Callable[[Any], tuple[str, list[Any]]],
                 hits: Callable[[Scope, dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.fields = fields
        self.run = run
        self.now = now
        self.compile_query = compile_query
        self.hits = hits

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

    # -- entry -----------------------------------------------------------------------------------------
    def aggregate(self, aggs: Any, scope: Scope) -> dict[str, Any]:
        if not isinstance(aggs, dict):
            raise QueryError("aggregations: expected an object of name -> aggregation")
        out: dict[str, Any] = {}
        metrics = {}
        for n, s in aggs.items():
            kind, params, subs = _split(s, n)
            if kind in METRICS:
                metrics[n] = (kind, params)
        if metrics:
            exprs = [self.metric_sql(n, k, p) for n, (k, p) in metrics.items()]
            row = self.run(f"SELECT {', '.join(e for e, _ in exprs)} {scope.sql}", scope.params)[0]
            for (n, (k, p)), (_, ref), v in zip(metrics.items(), exprs, row, strict=True):
                out[n] = self.metric_value(k, p, ref, v)
        for n, s in aggs.items():
            kind, params, subs = _split(s, n)
            if kind in METRICS:
                pass
            else:
                out[n] = getattr(self, "agg_" + kind)(n, params, subs, scope)
            if isinstance(s, dict) and "meta" in s:
                out[n]["meta"] = s["meta"]
        return {n: out[n] for n in aggs}

    def children(self, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        return self.aggregate(subs, scope) if subs else {}

    # -- metrics ---------------------------------------------------------------------------------------
    def metric_sql(self, name: str, kind: str, params: Any) -> tuple[str, FieldRef | None]:
        params = _check(params, {"field", "missing", "precision_threshold", "format"}, name, kind)
        if "missing" in params:
            raise QueryError(f"aggregation [{name}]: 'missing' on metric aggregations is not supported")
        ref = self.field(params, name, kind)
        if ref is None:
            return "NULL", None
        e = ref.sql
        if kind == "cardinality":
            if ref.kind.is_list:
                return f"(SELECT count(DISTINCT v) FROM (SELECT unnest({e}) AS v {_strip_from(self)}))", ref  # noqa: S608 - registry SQL, values bound
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
                kind = _split(spec, key)[0] if spec is not None else None
                if kind not in METRICS:
                    raise QueryError(f"aggregation [{name}]: ordering by [{key}] is not supported; order by _count, "
                                     "_key or a single-value metric sub-aggregation")
                metric_subs[key] = spec
            out.append((key, str(direction).upper()))
        if not any(k == "_key" for k, _ in out):
            out.append(("_key", "ASC"))  # Elasticsearch's tie-breaker for every order
        return out, metric_subs

    def agg_terms(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        params = _check(params, {"field", "size", "order", "min_doc_count", "missing", "shard_size",
                                 "show_term_doc_count_error", "execution_hint", "collect_mode", "format",
                                 "value_type", "shard_min_doc_count"}, name, "terms")
        size = params.get("size", 10)
        if not isinstance(size, int) or size < 1 or size > MAX_BUCKETS:
            raise QueryError(f"aggregation [{name}]: [size] must be greater than 0 and at most {MAX_BUCKETS}")
        min_count = params.get("min_doc_count", 1)
        if not isinstance(min_count, int) or min_count < 1:
            raise QueryError(f"aggregation [{name}]: terms min_doc_count 0 is not supported (use 1 or more)")
        ref = self.field(params, name, "terms")
        empty = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []}
        missing = params.get("missing")
        if ref is None:
            if missing is None:
                return empty
            raise QueryError(f"aggregation [{name}]: 'missing' on an unmapped field is not supported")
        order, metric_subs = self._order(name, params.get("order"), subs)
        e = ref.sql
        if ref.kind.is_list:
            if missing is not None:
                raise QueryError(f"aggregation [{name}]: 'missing' on multi-valued fields is not supported")
            inner = f"SELECT unnest(list_distinct({e})) AS k, * {scope.sql}"
            cond = f"list_contains({e}, ?)"
            key_params: list[Any] = []
        else:
            k_sql = ref.ms_sql() if ref.is_date else e
            key_params = []
            if missing is not None:
                mv = self._coerce_missing(ref, missing, name)
                k_sql = f"coalesce({k_sql}, ?)"
                key_params = [mv]
            inner = f"SELECT {k_sql} AS k, * {scope.sql}"
            cond = f"{k_sql} = ?"
        metric_cols = []
        for mname, mspec in metric_subs.items():
            mkind, mparams, _ = _split(mspec, mname)
            msql, _ = self.metric_sql(mname, mkind, mparams)
            metric_cols.append((mname, msql.replace(scope.sql, "")))
        sel = ", ".join(["k", "count(*) AS c"] + [f"{sql} AS m{i}" for i, (_, sql) in enumerate(metric_cols)])
        names = {m: f"m{i}" for i, (m, _) in enumerate(metric_cols)}
        order_sql = ", ".join(f"{'c' if k == '_count' else 'k' if k == '_key' else names[k]} {d} NULLS LAST"
                              for k, d in order)
        rows = self.run(f"SELECT {sel} FROM ({inner}) AS t WHERE k IS NOT NULL GROUP BY k HAVING count(*) >= ? "  # noqa: S608 - registry SQL, values bound
                        f"ORDER BY {order_sql} LIMIT ?", key_params + scope.params + [min_count, size])  # noqa: S608 - registry SQL, values bound
        total = self.run(f"SELECT coalesce(sum(c), 0) FROM (SELECT count(*) AS c FROM ({inner}) WHERE k IS NOT NULL "  # noqa: S608 - registry SQL, values bound
                         "GROUP BY k HAVING count(*) >= ?)", key_params + scope.params + [min_count])[0][0]  # noqa: S608 - registry SQL, values bound
        buckets = []
        for row in rows:
            key, count = row[0], row[1]
            bucket = self._key(ref, key, params.get("format"))
            bucket["doc_count"] = count
            raw = key
            if ref.is_date and not ref.kind.is_list:
                bcond = cond
            else:
                bcond = cond
            bucket.update(self.children(subs, scope.narrowed(bcond, key_params + [raw])))
            buckets.append(bucket)
        shown = sum(b["doc_count"] for b in buckets)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": int(total) - shown, "buckets": buckets}

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

    # -- date_histogram ----------------------------------------------------------------------------------
    def _interval(self, name: str, params: dict[str, Any]) -> tuple[str, int]:
        """('fixed', ms) or (calendar unit, 0)."""
        fixed, calendar, legacy = params.get("fixed_interval"), params.get("calendar_interval"), params.get("interval")
        if legacy is not None:
            if legacy in _CALENDAR:
                calendar = legacy
            else:
                fixed = legacy
        if fixed is not None:
            text = str(fixed)
            import re

            m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
            if not m or int(m.group(1)) <= 0:
                raise QueryError(f"aggregation [{name}]: failed to parse fixed_interval [{fixed}]")
            return "fixed", int(m.group(1)) * _FIXED_MS[m.group(2)]
        if calendar is not None:
            if calendar not in _CALENDAR:
                raise QueryError(f"aggregation [{name}]: the supplied calendar interval [{calendar}] is not valid")
            return _CALENDAR[calendar], 0
        raise QueryError(f"aggregation [{name}]: date_histogram needs fixed_interval or calendar_interval")

    def agg_date_histogram(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
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
        min_count = params.get("min_doc_count", 0)
        if ref is None:
            return {"buckets": []}
        if not ref.is_date:
            raise QueryError(f"aggregation [{name}]: date_histogram needs a date field; {ref.name!r} is not")
        bucket_expr, bparams = bucket_sql(ref.ts_sql(), tz, unit, step)
        rows = self.run(f"SELECT {bucket_expr} AS k, count(*) AS c {scope.sql} GROUP BY k ORDER BY k",
                        bparams + scope.params)
        counts = {int(k): c for k, c in rows if k is not None}
        keys = sorted(counts)
        bounds = params.get("extended_bounds")
        if min_count == 0 and (keys or bounds):
            lo = keys[0] if keys else None
            hi = keys[-1] if keys else None
            if isinstance(bounds, dict):
                bfmt = params.get("format") or ref.date_format or "strict_date_optional_time"
                for which in ("min", "max"):
                    if bounds.get(which) is None:
                        continue
                    ms = date_math(bounds[which], bfmt, self.now, tz=tzname)
                    b = self._floor(ms, unit, step, tz)
                    if which == "min":
                        lo = b if lo is None or b < lo else lo
                    else:
                        hi = b if hi is None or b > hi else hi
            if lo is not None and hi is not None:
                keys = []
                k = lo
                while k <= hi:
                    keys.append(k)
                    if len(keys) > MAX_BUCKETS:
                        raise QueryError(f"aggregation [{name}]: more than {MAX_BUCKETS} buckets")
                    k = k + step if unit == "fixed" else self._next(k, unit, tz)
        buckets = []
        for key in keys:
            count = counts.get(key, 0)
            if count < min_count:
                continue
            bucket: dict[str, Any] = {"key_as_string": format_ms(key, fmt, tzname), "key": key, "doc_count": count}
            if subs:
                bucket.update(self.children(subs, scope.narrowed(f"{bucket_expr} = ?", bparams + [key])))
            buckets.append(bucket)
        if params.get("keyed"):
            return {"buckets": {b["key_as_string"]: b for b in buckets}}
        return {"buckets": buckets}

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
    def agg_histogram(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
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
            return {"buckets": []}
        if not (ref.kind.is_numeric or ref.is_date) or ref.kind.is_list:
            raise QueryError(f"aggregation [{name}]: histogram needs a single-valued numeric field")
        col = ref.ms_sql() if ref.is_date else ref.sql
        bucket_sql = f"(floor((CAST({col} AS DOUBLE) - ?) / ?) * ? + ?)"
        bparams = [offset, float(interval), float(interval), offset]
        rows = self.run(f"SELECT {bucket_sql} AS k, count(*) AS c {scope.sql} AND {col} IS NOT NULL GROUP BY k "
                        "ORDER BY k", bparams + scope.params)
        counts = {float(k): c for k, c in rows}
        keys = sorted(counts)
        min_count = params.get("min_doc_count", 0)
        bounds = params.get("extended_bounds")
        if min_count == 0 and (keys or bounds):
            lo, hi = (keys[0], keys[-1]) if keys else (None, None)
            if isinstance(bounds, dict):
                import math

                def fl(v: float) -> float:
                    return math.floor((v - offset) / interval) * interval + offset

                if bounds.get("min") is not None:
                    b = fl(float(bounds["min"]))
                    lo = b if lo is None or b < lo else lo
                if bounds.get("max") is not None:
                    b = fl(float(bounds["max"]))
                    hi = b if hi is None or b > hi else hi
            if lo is not None and hi is not None:
                n = int(round((hi - lo) / interval))
                if n > MAX_BUCKETS:
                    raise QueryError(f"aggregation [{name}]: more than {MAX_BUCKETS} buckets")
                keys = [lo + i * interval for i in range(n + 1)]
        buckets = []
        for key in keys:
            count = counts.get(key, 0)
            if count < min_count:
                continue
            bucket: dict[str, Any] = {"key": float(key), "doc_count": count}
            if subs:
                bucket.update(self.children(subs, scope.narrowed(f"{bucket_sql} = ?", bparams + [key])))
            buckets.append(bucket)
        return {"buckets": buckets}

    # -- range ---------------------------------------------------------------------------------------
    def agg_range(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        params = _check(params, {"field", "ranges", "keyed", "format"}, name, "range")
        ref = self.field(params, name, "range")
        ranges = params.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise QueryError(f"aggregation [{name}]: range needs a list of ranges")
        if ref is not None and (not ref.kind.is_numeric or ref.is_date):
            raise QueryError(f"aggregation [{name}]: range needs a numeric field (date_range is not supported)")
        spans = []
        for r in ranges:
            if not isinstance(r, dict) or set(r) - {"from", "to", "key"}:
                raise QueryError(f"aggregation [{name}]: each range takes from, to and key")
            lo = None if r.get("from") is None else float(r["from"])
            hi = None if r.get("to") is None else float(r["to"])
            if hi is not None and ref is not None and ref.kind is not Kind.DOUBLE and not hi.is_integer():
                # OpenSearch 2.19 counts such ranges inconsistently on integer fields: refuse, never differ.
                raise QueryError(f"aggregation [{name}]: a fractional 'to' ({hi}) on integer field {ref.name!r} "
                                 "is not supported")
            spans.append((lo, hi, r.get("key")))
        spans.sort(key=lambda s: (float("-inf") if s[0] is None else s[0], float("inf") if s[1] is None else s[1]))
        buckets = []
        for lo, hi, key in spans:
            label = key or f"{'*' if lo is None else java_double(lo)}-{'*' if hi is None else java_double(hi)}"
            conds, ps = [], []
            if ref is None:
                conds.append("FALSE")
            else:
                col = ref.sql
                if ref.kind.is_list:
                    raise QueryError(f"aggregation [{name}]: range on multi-valued fields is not supported")
                if lo is not None:
                    conds.append(f"{col} >= ?")
                    ps.append(lo)
                if hi is not None:
                    conds.append(f"{col} < ?")
                    ps.append(hi)
                if not conds:
                    conds.append(f"{col} IS NOT NULL")
            cond = " AND ".join(conds)
            count = self.run(f"SELECT count(*) {scope.sql} AND ({cond})", scope.params + ps)[0][0]
            bucket: dict[str, Any] = {"key": label}
            if lo is not None:
                bucket["from"] = lo
            if hi is not None:
                bucket["to"] = hi
            bucket["doc_count"] = count
            bucket.update(self.children(subs, scope.narrowed(cond, ps)))
            buckets.append(bucket)
        if params.get("keyed"):
            return {"buckets": {b.pop("key"): b for b in buckets}}
        return {"buckets": buckets}

    # -- filters / filter ----------------------------------------------------------------------------
    def agg_filter(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        cond, ps = self.compile_query(params)
        count = self.run(f"SELECT count(*) {scope.sql} AND ({cond})", scope.params + ps)[0][0]
        return {"doc_count": count, **self.children(subs, scope.narrowed(cond, ps))}

    def agg_filters(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        params = _check(params, {"filters", "other_bucket", "other_bucket_key"}, name, "filters")
        filters = params.get("filters")
        keyed = isinstance(filters, dict)
        items = list(filters.items()) if keyed else list(enumerate(filters or []))
        if not items and not isinstance(filters, dict | list):
            raise QueryError(f"aggregation [{name}]: filters needs an object or a list of queries")
        compiled = [(k, self.compile_query(q)) for k, q in items]
        if keyed:
            compiled.sort(key=lambda x: str(x[0]))
        other = params.get("other_bucket") or "other_bucket_key" in params
        if other:
            others = " AND ".join(f"NOT ({c})" for _, (c, _) in compiled) or "TRUE"
            compiled.append((params.get("other_bucket_key", "_other_"),
                             (others, [x for _, (_, p) in compiled for x in p])))
        out_keyed: dict[str, Any] = {}
        out_list: list[Any] = []
        for k, (cond, ps) in compiled:
            count = self.run(f"SELECT count(*) {scope.sql} AND ({cond})", scope.params + ps)[0][0]
            bucket = {"doc_count": count, **self.children(subs, scope.narrowed(cond, ps))}
            if keyed:
                out_keyed[str(k)] = bucket
            else:
                out_list.append(bucket)
        return {"buckets": out_keyed if keyed else out_list}

    # -- composite -----------------------------------------------------------------------------------
    def agg_composite(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        params = _check(params, {"sources", "size", "after"}, name, "composite")
        sources = params.get("sources")
        size = params.get("size", 10)
        if not isinstance(sources, list) or not sources:
            raise QueryError(f"aggregation [{name}]: composite needs a list of sources")
        if not isinstance(size, int) or size < 1:
            raise QueryError(f"aggregation [{name}]: composite size must be a positive integer")
        cols: list[tuple[str, str, list[Any], str, bool, FieldRef, Any]] = []
        for src in sources:
            if not isinstance(src, dict) or len(src) != 1:
                raise QueryError(f"aggregation [{name}]: each composite source is {{name: {{terms|...}}}}")
            (sname, sspec), = src.items()
            if not isinstance(sspec, dict) or len(sspec) != 1:
                raise QueryError(f"aggregation [{name}]: source [{sname}] needs one of terms, histogram, "
                                 "date_histogram")
            (skind, sp), = sspec.items()
            common = {"field", "order", "missing_bucket", "missing_order"}
            if skind == "terms":
                sp = _check(sp, common, name, "composite terms")
            elif skind == "date_histogram":
                sp = _check(sp, common | {"fixed_interval", "calendar_interval", "interval", "time_zone", "format"},
                            name, "composite date_histogram")
            elif skind == "histogram":
                sp = _check(sp, common | {"interval"}, name, "composite histogram")
            else:
                raise QueryError(f"aggregation [{name}]: composite source type [{skind}] is not supported")
            if sp.get("missing_order") not in (None, "default"):
                raise QueryError(f"aggregation [{name}]: missing_order is not supported")
            ref = self.field(sp, name, "composite")
            if ref is None:
                raise QueryError(f"aggregation [{name}]: composite on an unmapped field is not supported")
            if ref.kind.is_list:
                raise QueryError(f"aggregation [{name}]: composite on multi-valued fields is not supported")
            ps: list[Any] = []
            if skind == "terms":
                expr = ref.ms_sql() if ref.is_date else ref.sql
            elif skind == "histogram":
                iv = float(sp.get("interval", 0) or 0)
                if iv <= 0:
                    raise QueryError(f"aggregation [{name}]: histogram interval must be > 0")
                expr = f"(floor(CAST({ref.ms_sql() if ref.is_date else ref.sql} AS DOUBLE) / ?) * ?)"
                ps = [iv, iv]
            else:
                if not ref.is_date:
                    raise QueryError(f"aggregation [{name}]: date_histogram needs a date field")
                unit, step = self._interval(name, sp)
                expr, ps = bucket_sql(ref.ts_sql(), zone(sp.get("time_zone")), unit, step)
            direction = str(sp.get("order", "asc")).upper()
            if direction not in ("ASC", "DESC"):
                raise QueryError(f"aggregation [{name}]: order must be asc or desc")
            cols.append((sname, expr, ps, direction, bool(sp.get("missing_bucket")), ref, (skind, sp)))
        sel = ", ".join(f"{e} AS k{i}" for i, (_, e, _, _, _, _, _) in enumerate(cols))
        sel_params = [p for c in cols for p in c[2]]
        where = " AND ".join(f"k{i} IS NOT NULL" for i, c in enumerate(cols) if not c[4]) or "TRUE"
        # ES sorts missing values first in ascending order and last in descending order.
        order = ", ".join(f"k{i} {d} NULLS {'FIRST' if d == 'ASC' else 'LAST'}"
                          for i, (_, _, _, d, _, _, _) in enumerate(cols))
        page, page_params = "", []
        after = params.get("after")
        if after is not None:
            if not isinstance(after, dict) or set(after) != {c[0] for c in cols}:
                raise QueryError(f"aggregation [{name}]: [after] must name every source")
            branches = []
            for i in range(len(cols)):
                conds = []
                for j in range(i):
                    conds.append(f"k{j} IS NOT DISTINCT FROM ?")
                    page_params.append(self._after_value(cols[j], after[cols[j][0]]))
                v = self._after_value(cols[i], after[cols[i][0]])
                d = cols[i][3]
                if v is None:
                    conds.append(f"k{i} IS NOT NULL" if d == "ASC" else "FALSE")
                else:
                    page_params.append(v)
                    cmp = ">" if d == "ASC" else "<"
                    conds.append(f"(k{i} {cmp} ?{' OR k' + str(i) + ' IS NULL' if d == 'DESC' else ''})")
                branches.append("(" + " AND ".join(conds) + ")")
            page = " AND (" + " OR ".join(branches) + ")"
        rows = self.run(f"SELECT *, count(*) OVER () AS _n FROM (SELECT {', '.join(f'k{i}' for i in range(len(cols)))}, "  # noqa: S608 - registry SQL, values bound
                        f"count(*) AS c FROM (SELECT {sel} {scope.sql}) WHERE {where} GROUP BY ALL) "  # noqa: S608 - registry SQL, values bound
                        f"WHERE TRUE{page} ORDER BY {order} LIMIT ?",
                        sel_params + scope.params + page_params + [size])
        buckets = []
        for row in rows:
            key: dict[str, Any] = {}
            conds, cps = [], []
            for i, (sname, expr, ps, _, _, ref, (skind, sp)) in enumerate(cols):
                v = row[i]
                if v is None:
                    key[sname] = None
                    conds.append(f"{expr} IS NULL")
                    cps += ps
                else:
                    if skind == "terms":
                        key[sname] = self._key(ref, v, sp.get("format"))["key"]
                    elif skind == "histogram":
                        key[sname] = float(v)
                    else:
                        key[sname] = int(v)
                    conds.append(f"{expr} = ?")
                    cps += [*ps, v]
            bucket: dict[str, Any] = {"key": key, "doc_count": row[len(cols)]}
            if subs:
                bucket.update(self.children(subs, scope.narrowed(" AND ".join(conds), cps)))
            buckets.append(bucket)
        out: dict[str, Any] = {}
        if buckets:
            out["after_key"] = buckets[-1]["key"]
        out["buckets"] = buckets
        return out

    @staticmethod
    def _after_value(col: Any, v: Any) -> Any:
        ref, (skind, _) = col[5], col[6]
        if v is None:
            return None
        if skind == "terms" and ref.kind is Kind.BOOL:
            return v in (True, 1, "true")
        if skind == "histogram":
            return float(v)
        return v

    # -- top_hits ------------------------------------------------------------------------------------
    def agg_top_hits(self, name: str, params: Any, subs: dict[str, Any], scope: Scope) -> dict[str, Any]:
        params = _check(params, {"size", "from", "sort", "_source"}, name, "top_hits")
        if self.hits is None:
            raise QueryError(f"aggregation [{name}]: top_hits is not available here")
        return {"hits": self.hits(scope, params)}


def _strip_from(agg: EsAggregator) -> str:
    raise QueryError("cardinality of a multi-valued field is not supported")
