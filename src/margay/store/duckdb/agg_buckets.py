"""Bucket aggregations whose buckets the request lists (range, filters, filter), composite paging and top_hits,
for the aggregation compiler of the embedded engine (aggs.py)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind
from ...query.aggs import TRUNC, java_double
from ...query.aggs import check as _check
from ...query.es.dates import zone, zone_name
from ...query.es.fields import FieldRef
from .agg_metrics import Base
from .levels import Parent, Scope, metrics


def bucket_sql(ts: str, tz: Any, unit: str, step: int) -> tuple[str, list[Any]]:
    """SQL (epoch ms) that floors a TIMESTAMPTZ to its bucket start in local time `tz`, and its params."""
    from zoneinfo import ZoneInfo

    if tz is UTC:
        # UTC (every request without a time_zone): the instant's wall clock is its epoch, so the row's
        # microseconds as a plain TIMESTAMP need no ICU zone conversion (two per row otherwise: ~3x the
        # statement's CPU on a 300 k-row histogram).
        plain = f"make_timestamp(epoch_us({ts}))"
        if unit == "fixed":
            return f"epoch_ms(time_bucket(to_milliseconds({int(step)}), {plain}, TIMESTAMP '1970-01-01 00:00:00'))", []
        return f"epoch_ms(date_trunc('{TRUNC[unit]}', {plain}))", []
    if isinstance(tz, ZoneInfo):
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
        inner = f"date_trunc('{TRUNC[unit]}', {local})"
    if isinstance(tz, ZoneInfo):
        return f"epoch_ms({back(inner)})", bp + lp
    return f"epoch_ms({back(inner)})", lp + bp


class Buckets(Base):
    # -- range ---------------------------------------------------------------------------------------
    def _narrow(self, scope: Scope, cond: str, ps: list[Any], subs: dict[str, Any],
                parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        """One request-listed bucket (`cond`) in every enclosing bucket: its doc_count and sub-aggregations, a query
        for the counts and one per sub-aggregation level (not per enclosing bucket)."""
        narrowed = scope.narrowed(cond, ps)
        counts = metrics(self.run, narrowed, [self.count]) if parents else {}
        below = self._level(subs, narrowed, parents) if subs and parents else {}
        return {p: {"doc_count": int((counts.get(p) or [0])[0] or 0), **below.get(p, {})} for p in parents}

    def agg_range(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                  parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
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
        per: dict[Parent, list[dict[str, Any]]] = {p: [] for p in parents}
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
            each = self._narrow(scope, " AND ".join(conds), ps, subs, parents)
            for p in parents:
                bucket: dict[str, Any] = {"key": label}
                if lo is not None:
                    bucket["from"] = lo
                if hi is not None:
                    bucket["to"] = hi
                bucket.update(each[p])
                per[p].append(bucket)
        if params.get("keyed"):
            return {p: {"buckets": {b.pop("key"): b for b in bs}} for p, bs in per.items()}
        return {p: {"buckets": bs} for p, bs in per.items()}

    # -- filters / filter ----------------------------------------------------------------------------
    def agg_filter(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                   parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
        cond, ps = self.compile_query(params)
        return self._narrow(scope, cond, ps, subs, parents)

    def agg_filters(self, name: str, params: Any, subs: dict[str, Any], scope: Scope,
                    parents: list[Parent]) -> dict[Parent, dict[str, Any]]:
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
        per: dict[Parent, list[tuple[str, dict[str, Any]]]] = {p: [] for p in parents}
        for k, (cond, ps) in compiled:
            each = self._narrow(scope, cond, ps, subs, parents)
            for p in parents:
                per[p].append((str(k), each[p]))
        if keyed:
            return {p: {"buckets": dict(bs)} for p, bs in per.items()}
        return {p: {"buckets": [b for _, b in bs]} for p, bs in per.items()}

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

