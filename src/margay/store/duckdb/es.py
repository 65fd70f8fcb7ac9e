"""The Elasticsearch-compatible API on the embedded engine: the query DSL and aggregations translated to
registry SQL with bound values (query/es/dsl.py; aggregations in aggs.py, the compiler Linseed's
aggregations use too) over each plan's files."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Protocol

import orjson

from ...errors import QueryError
from ...logtypes import Kind, LogType
from ...query.es.dsl import QueryCompiler
from ...query.es.fields import FieldRef, Fields, id_sql
from ...query.es.hitfields import highlight, hit_fields, marks, wants_fields
from ...query.es.request import SortSpec, check_search, sort_specs, total_hits
from ...query.model import Query
from ...query.restriction import WITHHELD
from ..backend import EsPlan
from .aggs import Aggregator, Scope

LONG_MAX, LONG_MIN = 9223372036854775807, -9223372036854775808


class Engine(Protocol):
    def doc(self, lt: LogType) -> str: ...

    def mark_dismissed(self, lt: LogType, docs: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def run_over(self, query: Query, build: Callable[..., Any]) -> Any: ...


@dataclass
class _Plan:
    """An EsPlan compiled: its Query (clusters, restriction), fields, and the SQL of its days and DSL."""

    es: EsPlan
    query: Query
    fields: Fields
    conds: list[tuple[str, list[Any]]]

    @property
    def lt(self) -> LogType:
        return self.es.lt


def _compile(plans: list[EsPlan], body: dict[str, Any], now: datetime) -> list[_Plan]:
    out = []
    for es in plans:
        fields = Fields(es.lt)
        conds = [QueryCompiler(fields, now).compile(body.get("query"))]
        day = _day_filter(es.lt, es.days)
        if day is not None:
            conds.insert(0, day)
        out.append(_Plan(es, es.query(now), fields, conds))
    return out


def search(eng: Engine, plans: list[EsPlan], body: dict[str, Any], *, now: datetime, shards: int,
           total_as_int: bool) -> dict[str, Any]:
    start, size = check_search(body)
    compiled = _compile(plans, body, now)
    hits, total, max_score = _hits(eng, compiled, body, start=start, size=size)
    out: dict[str, Any] = {"took": 1, "timed_out": False,
                           "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}
    hits_obj: dict[str, Any] = {}
    tot = total_hits(total, body.get("track_total_hits"), total_as_int)
    if tot is not None:
        hits_obj["total"] = tot
    hits_obj["max_score"] = max_score
    hits_obj["hits"] = hits
    out["hits"] = hits_obj
    aggs = body.get("aggs", body.get("aggregations"))
    if not plans:  # as OpenSearch answers a pattern that matched no index: no aggregations at all
        return out
    if aggs:
        out["aggregations"] = _aggregate(eng, compiled, aggs, now)
    elif aggs == {} and ("aggs" in body or "aggregations" in body):
        out["aggregations"] = {}
    return out


def count(eng: Engine, plans: list[EsPlan], body: dict[str, Any], *, now: datetime) -> int:
    n = 0
    for p in _compile(plans, body, now):
        extra_sql = "".join(f" AND ({c})" for c, _ in p.conds)
        extra_params = [x for _, ps in p.conds for x in ps]
        n += eng.run_over(p.query, lambda run, src, params, s=extra_sql, e=extra_params: run(
            f"SELECT count(*) {src}{s}", params + e))[0][0]  # noqa: S608 - compiled DSL, values bound
    return n


def _day_filter(lt: LogType, days: Mapping[str, frozenset[str] | None]) -> tuple[str, list[Any]] | None:
    if all(d is None for d in days.values()):
        return None
    f = Fields(lt).resolve(lt.time_field)
    assert f is not None
    day = f"strftime({f.ts_sql()}, '%Y%m%d')"
    parts, params = [], []
    for c, cdays in sorted(days.items()):
        if cdays is None:
            parts.append('"cluster" = ?')
            params.append(c)
        else:
            parts.append(f'("cluster" = ? AND {day} IN ({", ".join("?" for _ in cdays)}))')
            params += [c, *sorted(cdays)]
    return " OR ".join(parts), params


def _score(body: dict[str, Any], sorted_: bool) -> float | None:
    if sorted_:
        return None
    q = body.get("query")
    if q is None or "match_all" in q or "constant_score" in q:
        return 1.0
    if "bool" in q and isinstance(q["bool"], dict) and not (q["bool"].get("must") or q["bool"].get("should")):
        return 0.0
    return 1.0


def _sort_sql(fields: Fields, s: SortSpec) -> tuple[str, FieldRef | None]:
    if s.special == "_doc":
        return '"_seq"', None
    if s.special == "_score":
        return "1", None
    ref = fields.resolve(s.name)
    if ref is None:
        if s.unmapped is None:
            raise QueryError(f"No mapping found for [{s.name}] in order to sort on")
        return "CAST(NULL AS BIGINT)", None
    if ref.kind in (Kind.STRUCT, Kind.TEXT, Kind.IP, Kind.IP_LIST) or ref.nested is not None or ref.params:
        raise QueryError(f"sort on [{s.name}]: sorting on {ref.kind.value} fields is not supported")
    e = ref.ms_sql() if ref.is_date else ref.sql
    if ref.kind is Kind.BOOL:
        e = f"CAST({e} AS INTEGER)"
    if ref.kind.is_list:
        mode = s.mode or ("max" if s.desc else "min")
        if mode not in ("min", "max"):
            raise QueryError(f"sort on [{s.name}]: mode {mode!r} is not supported")
        e = f"list_{mode}({e})"
    return e, ref


def _sort_value(v: Any, s: SortSpec, ref: FieldRef | None, score: float | None) -> Any:
    if s.special == "_score":
        return score if score is not None else 0.0
    if v is None:
        if ref is not None and (ref.kind.is_numeric or ref.is_date or ref.kind is Kind.BOOL):
            return LONG_MIN if s.desc else LONG_MAX
        return None
    if ref is not None and ref.kind is Kind.DOUBLE:
        return float(v)
    return v


def _after_value(v: Any, s: SortSpec, ref: FieldRef | None) -> Any:
    if ref is not None and (ref.kind.is_numeric or ref.is_date) and v in (LONG_MAX, LONG_MIN):
        return None
    if ref is not None and ref.is_date and isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    return v


def _keyset(exprs: list[str], desc: list[bool], values: list[Any]) -> tuple[str, list[Any]]:
    branches, params = [], []
    for i, (expr, d) in enumerate(zip(exprs, desc, strict=True)):
        conds, bparams = [], []
        for j in range(i):
            conds.append(f"{exprs[j]} IS NOT DISTINCT FROM ?")
            bparams.append(values[j])
        v = values[i]
        if v is None:
            continue
        conds.append(f"({expr} {'<' if d else '>'} ? OR {expr} IS NULL)")
        bparams.append(v)
        branches.append("(" + " AND ".join(conds) + ")")
        params += bparams
    return (" OR ".join(branches) or "FALSE"), params


def filter_source(doc: Any, includes: list[str], excludes: list[str], prefix: str = "") -> Any:
    if isinstance(doc, list):
        return [filter_source(d, includes, excludes, prefix) if isinstance(d, dict) else d for d in doc]
    out = {}
    for k, v in doc.items():
        path = prefix + k
        if any(fnmatchcase(path, e) for e in excludes):
            continue
        if includes and any(fnmatchcase(path, i) for i in includes):
            out[k] = v if not excludes or not isinstance(v, dict | list) else filter_source(v, [], excludes, path + ".")
            continue
        if isinstance(v, dict) or (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            could = any(i.startswith(path + ".") or (path + ".").startswith(i.split("*")[0]) for i in includes)
            if includes and not could:
                continue
            sub = filter_source(v, includes, excludes, path + ".")
            empty = not sub or (isinstance(sub, list) and not any(sub))
            if not empty or not includes:
                out[k] = sub
        elif not includes:
            out[k] = v
    return out


def _source_spec(raw: Any) -> tuple[bool, list[str], list[str]]:
    if raw is None or raw is True:
        return True, [], []
    if raw is False:
        return False, [], []
    if isinstance(raw, str):
        return True, [raw], []
    if isinstance(raw, list):
        return True, [str(x) for x in raw], []
    if isinstance(raw, dict):
        inc = raw.get("includes", raw.get("include", []))
        exc = raw.get("excludes", raw.get("exclude", []))
        inc = [inc] if isinstance(inc, str) else list(inc or [])
        exc = [exc] if isinstance(exc, str) else list(exc or [])
        return True, inc, exc
    raise QueryError("_source: expected true, false, a field list or {includes, excludes}")


def _hits(eng: Engine, plans: list[_Plan], body: dict[str, Any], *, start: int, size: int,
          extra: list[tuple[str, list[Any]]] | None = None) -> tuple[list[dict[str, Any]], int, float | None]:
    """The page of hits over every plan (merged by sort), and the exact total."""
    specs = sort_specs(body.get("sort"))
    sorted_ = bool(specs) and not all(s.special == "_score" for s in specs)
    score = _score(body, sorted_)
    want_source, includes, excludes = _source_spec(body.get("_source"))
    after = body.get("search_after")
    if after is not None and (not isinstance(after, list) or len(after) != len(specs) or not specs):
        raise QueryError("search_after must have as many values as the sort has fields")
    rows_all: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    total = 0
    show_fields, hl = wants_fields(body), body.get("highlight")
    found = marks(body.get("query")) if hl is not None else []
    for plan in plans:
        lt = plan.lt
        sort_parts = [_sort_sql(plan.fields, s) for s in specs]
        exprs = [e for e, _ in sort_parts] + ['"_seq"']
        desc = [s.desc for s in specs] + [False]
        f_time = plan.fields.resolve(lt.time_field)
        assert f_time is not None
        day = f"strftime({f_time.ts_sql()}, '%Y%m%d')"
        doc = eng.doc(lt)
        page_sql, page_params = "", []  # type: str, list[Any]
        if after is not None:
            vals = [_after_value(v, s, r) for v, s, (_, r) in zip(after, specs, sort_parts, strict=True)]
            cond, page_params = _keyset(exprs[:-1], desc[:-1], vals)
            page_sql = f" AND ({cond})"
        conds = plan.conds + (extra or [])
        extra_sql = "".join(f" AND ({c})" for c, _ in conds)
        extra_params = [p for _, ps in conds for p in ps]
        order = ", ".join(f"{e} {'DESC' if d else 'ASC'} NULLS LAST" for e, d in zip(exprs, desc, strict=True))
        limit = start + size

        def build(run: Any, src: str, params: list[Any], exprs: list[str] = exprs, order: str = order,
                  doc: str = doc, day: str = day, lt: LogType = lt, page_sql: str = page_sql,
                  page_params: list[Any] = page_params, limit: int = limit, extra_sql: str = extra_sql,
                  extra_params: list[Any] = extra_params) -> Any:
            n = run(f"SELECT count(*) {src}{extra_sql}", params + extra_params)[0][0]
            if limit == 0:
                return n, []
            rows = run(f"SELECT {doc}, {id_sql(lt)}, \"cluster\", {day}, {', '.join(exprs)} {src}{extra_sql}{page_sql} "
                       f"ORDER BY {order} LIMIT ?", params + extra_params + page_params + [limit])
            return n, rows

        n, rows = eng.run_over(plan.query, build)
        total += n
        docs = [orjson.loads(r[0]) for r in rows]
        if lt.dismissable:  # the overlay's dismissals, as every read shows them (before `id` may be withheld)
            docs = eng.mark_dismissed(lt, docs)
        docs = plan.query.restriction.withhold(lt, docs)
        for r, d in zip(rows, docs, strict=True):
            svals = [_sort_value(v, s, ref, score) for v, s, (_, ref) in zip(r[4:-1], specs, sort_parts, strict=False)]
            # A withheld `id` (an event's names both endpoints) is no `_id` either: the record's sequence instead.
            ident = str(r[-1]) if d.get("id") == WITHHELD else r[1]
            hit: dict[str, Any] = {"_index": f"{lt.index_prefix}.{r[2]}.{r[3]}", "_type": "_doc", "_id": ident,
                                   "_score": score}
            if body.get("version") is True:
                hit["_version"] = 1  # logs are written once
            if want_source:
                hit["_source"] = filter_source(d, includes, excludes) if (includes or excludes) else d
            if show_fields and (shown := hit_fields(lt, d, body)):
                hit["fields"] = shown
            if hl is not None and (marked := highlight(lt, d, body.get("query"), hl, found)):
                hit["highlight"] = marked
            if sorted_:
                hit["sort"] = svals
            key = tuple(_order_key(v, s) for v, s in zip(r[4:-1], specs, strict=False)) + (lt.name, r[-1])
            rows_all.append((key, hit))
    if len(plans) > 1:
        rows_all = heapq.nsmallest(start + size, rows_all, key=lambda x: x[0])
    hits = [h for _, h in rows_all[start:start + size]]
    if not plans:
        return hits, total, 0.0 if sorted_ else None  # as OpenSearch answers a pattern that matched nothing
    return hits, total, (None if sorted_ else (score if hits else None))


class _Rev:
    """Reverses order for descending sort keys when merging across log types."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v


def _order_key(v: Any, s: SortSpec) -> Any:
    missing = v is None
    return (missing, _Rev(v) if s.desc and not missing else (0 if missing else v))


def _agg_groups(plans: list[_Plan]) -> _Plan:
    """Aggregations read every plan as one: only over log types of the same schema, and only where the
    caller reads the same clusters, days and namespaces of each (a union would count what it may not read)."""
    first = plans[0]
    if len(plans) == 1:
        return first
    if any(p.lt.fields != first.lt.fields for p in plans[1:]):
        raise QueryError("aggregations over indices of log types with different fields are not supported; "
                         f"name one log type's indices ({', '.join(p.lt.index_prefix + '.*' for p in plans)})")
    if any(p.es.days != first.es.days or p.es.restriction != first.es.restriction for p in plans[1:]):
        raise QueryError("aggregations over several log types need the same readable clusters and days of each; "
                         f"aggregate one log type's indices at a time ({', '.join(p.lt.name for p in plans)})")
    q = replace(first.query, also=[p.lt for p in plans[1:]])
    return _Plan(first.es, q, first.fields, first.conds)


def _aggregate(eng: Engine, plans: list[_Plan], aggs: Any, now: datetime) -> dict[str, Any]:
    if not plans:
        raise QueryError("aggregations over no indices: the index pattern matched nothing")
    plan = _agg_groups(plans)
    compiler = QueryCompiler(plan.fields, now)

    def build(run: Any, src: str, params: list[Any]) -> Any:
        def hits(scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
            size = p.get("size", 3)
            sub_body = {"sort": p.get("sort"), "_source": p.get("_source"), "query": None}
            h, total, ms = _hits(eng, [plan], sub_body, start=p.get("from", 0), size=size, extra=[(c, list(ps)) for c, ps in scope.filters])
            return {"total": {"value": total, "relation": "eq"}, "max_score": ms, "hits": h}

        # the indices' rows before the request's query (its last condition): terms with min_doc_count 0
        before = plan.conds[:-1]
        universe = Scope(src + "".join(f" AND ({c})" for c, _ in before), params + [x for _, ps in before for x in ps])
        agg = Aggregator(plan.fields, run, now, compiler.compile, hits, universe)
        extra_sql = "".join(f" AND ({c})" for c, _ in plan.conds)
        # top_hits pages add the plan's own conditions again (_hits): the scope carries only narrowing ones
        return agg.aggregate(aggs, Scope(src + extra_sql, params + [x for _, ps in plan.conds for x in ps]))

    result: dict[str, Any] = eng.run_over(plan.query, build)
    return result


