"""The Elasticsearch-compatible API under /es/: the subset real clients send, answered like OpenSearch.

Index names and patterns resolve to (log type, cluster, day) partitions the caller may read (RBAC, with
namespace scoping applied inside the SQL); the query DSL compiles to registry SQL with bound values
(query/esquery.py), aggregations run in the engine (query/esaggs.py). On the OpenSearch backend, requests
pass through after the same RBAC check. Errors take Elasticsearch's envelope so clients raise properly.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..errors import Forbidden, MargayError, NotFound, ParseError, QueryError
from ..logtypes import REGISTRY, Kind, LogType
from ..names import CLUSTER_RULE, is_cluster_name
from ..query.esaggs import EsAggregator, Scope
from ..query.esfields import FieldRef, Fields, id_sql
from ..query.esquery import QueryCompiler, named_fields
from ..query.model import Query
from ..store.mapping import mapping_for
from .common import SHAPE_ERRORS, check_depth, read_body, shape_error

# Elasticsearch 7.10.2's identity (what OpenSearch reports in compatibility mode): the tagline and build
# flavor are those elasticsearch-py 7.x checks before it talks to a server.
VERSION = {"number": "7.10.2", "build_flavor": "default", "build_type": "margay", "build_hash": "margay",
           "build_date": "2024-01-01T00:00:00Z", "build_snapshot": False, "lucene_version": "8.7.0",
           "minimum_wire_compatibility_version": "6.8.0", "minimum_index_compatibility_version": "6.0.0-beta1"}
MAX_WINDOW = 10_000
QUERY_BODY_LIMIT = 10 * 1024 * 1024  # a search, count or msearch body (_bulk has max_body_bytes)
LONG_MAX, LONG_MIN = 9223372036854775807, -9223372036854775808
SEARCH_KEYS = {"query", "size", "from", "sort", "search_after", "_source", "track_total_hits", "aggs",
               "aggregations", "timeout", "stored_fields", "script_fields", "docvalue_fields", "version",
               "seq_no_primary_term", "track_scores", "terminate_after"}


class ESResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def es_error(exc: MargayError) -> ESResponse:
    kind = {400: "parsing_exception" if isinstance(exc, ParseError) else "illegal_argument_exception",
            401: "security_exception", 403: "security_exception", 404: "index_not_found_exception"}.get(
        exc.status, "exception")
    cause = {"type": kind, "reason": exc.message}
    return ESResponse({"error": {"root_cause": [cause], **cause}, "status": exc.status}, status_code=exc.status)


def _handler(fn: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except MargayError as exc:
            return es_error(exc)
        except SHAPE_ERRORS as exc:
            shaped = shape_error(exc)
            if shaped is None:
                raise
            return es_error(shaped)
    endpoint.__name__ = fn.__name__
    return endpoint


# -- index resolution ---------------------------------------------------------------------------------
@dataclass
class Target:
    """What one log type contributes to a request: clusters, and per cluster the days (None = all)."""

    lt: LogType
    days: dict[str, set[str] | None] = field(default_factory=dict)

    @property
    def clusters(self) -> list[str]:
        return sorted(self.days)


def _has_wildcard(expr: str) -> bool:
    return "*" in expr or "?" in expr or expr in ("_all",)


def resolve(m: Any, request: Request, pattern: str) -> list[Target]:
    """The caller's readable partitions named by an index pattern; 403 when it names only unreadable ones."""
    parts = m.backend.partitions()
    existing = [(p.log_type, p.cluster, p.day) for p in parts]
    pairs = m.access.expand(m.caller(request), pattern, existing)  # RBAC: only readable (type, cluster)
    allowed = {(lt.name, c) for lt, c, _ in pairs}
    exprs = [e.strip() for e in (pattern or "_all").split(",") if e.strip()] or ["_all"]
    chosen: dict[tuple[str, str], set[str] | None] = {}
    for i, expr in enumerate(exprs):
        exclude = expr.startswith("-") and i > 0
        if exclude:
            expr = expr[1:]
        for p in parts:
            if (p.log_type, p.cluster) not in allowed:
                continue
            lt = REGISTRY[p.log_type]
            key = (p.log_type, p.cluster)
            whole = expr in ("_all", "*") or fnmatchcase(f"{lt.index_prefix}.{p.cluster}", expr)
            daily = fnmatchcase(p.index, expr)
            if exclude:
                if whole:
                    chosen.pop(key, None)
                elif daily and key in chosen:
                    days = chosen[key]
                    days = {q.day for q in parts if (q.log_type, q.cluster) == key} if days is None else days
                    days.discard(p.day)
                    chosen[key] = days
            elif whole:
                chosen[key] = None
            elif daily and chosen.get(key, set()) is not None:
                chosen.setdefault(key, set()).add(p.day)  # type: ignore[union-attr]
    if not chosen:
        concrete = [e for e in exprs if not _has_wildcard(e) and not e.startswith("-")]
        if concrete:
            raise NotFound(f"no such index [{concrete[0]}]")
    targets: dict[str, Target] = {}
    for (t, c), days in sorted(chosen.items()):
        if days is not None and not days:
            continue
        targets.setdefault(t, Target(REGISTRY[t])).days[c] = days
    return list(targets.values())


def _day_filter(lt: LogType, target: Target) -> tuple[str, list[Any]] | None:
    if all(d is None for d in target.days.values()):
        return None
    f = Fields(lt).resolve(lt.time_field)
    assert f is not None
    day = f"strftime({f.ts_sql()}, '%Y%m%d')"
    parts, params = [], []
    for c, days in sorted(target.days.items()):
        if days is None:
            parts.append('"cluster" = ?')
            params.append(c)
        else:
            parts.append(f'("cluster" = ? AND {day} IN ({", ".join("?" for _ in days)}))')
            params += [c, *sorted(days)]
    return " OR ".join(parts), params


# -- requests -----------------------------------------------------------------------------------------
async def _json(request: Request) -> dict[str, Any]:
    raw = await read_body(request, QUERY_BODY_LIMIT)
    if not raw.strip():
        body: Any = {}
    else:
        check_depth(raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ParseError("request body must be a JSON object")
    src = request.query_params.get("source")
    if src and not body:
        check_depth(src.encode(), "URL parameter [source]")
        try:
            body = orjson.loads(src)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"URL parameter [source] is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ParseError("URL parameter [source] must be a JSON object")
    return body


def _int_param(qp: Any, name: str) -> int:
    try:
        return int(qp[name])
    except ValueError:
        raise QueryError(f"URL parameter [{name}]: expected an integer, got [{qp[name][:40]}]",
                         details={"field": name}) from None


def _query_params_into(body: dict[str, Any], request: Request) -> dict[str, Any]:
    qp = request.query_params
    for k in ("size", "from"):
        if k in qp:
            body[k] = _int_param(qp, k)
    if "q" in qp:
        body["query"] = {"query_string": {"query": qp["q"]}}
    if "track_total_hits" in qp:
        v = qp["track_total_hits"]
        body["track_total_hits"] = v == "true" if v in ("true", "false") else _int_param(qp, "track_total_hits")
    if "sort" in qp:
        body["sort"] = [{s.split(":")[0]: s.split(":")[1] if ":" in s else "asc"} for s in qp["sort"].split(",")]
    unsupported = {"scroll", "search_type", "preference", "routing", "request_cache", "allow_partial_search_results"}
    for k in qp:
        if k == "scroll":
            raise QueryError("scroll is not supported by margay's ES API: page with search_after instead")
        if k in unsupported - {"preference", "routing", "request_cache", "allow_partial_search_results"}:
            raise QueryError(f"URL parameter [{k}] is not supported")
    return body


@dataclass
class SortSpec:
    name: str
    desc: bool
    mode: str | None
    unmapped: str | None
    special: str | None = None  # _score, _doc


def _sort_specs(raw: Any) -> list[SortSpec]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        spec: Any
        if isinstance(item, str):
            name, spec = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            (name, spec), = item.items()
            spec = {"order": spec} if isinstance(spec, str) else spec
        else:
            raise QueryError(f"sort: cannot read {item!r}")
        if not isinstance(spec, dict) or set(spec) - {"order", "missing", "unmapped_type", "mode", "format",
                                                       "numeric_type"}:
            raise QueryError(f"sort on [{name}]: unsupported options {sorted(set(spec) - {'order'})}")
        if spec.get("missing") not in (None, "_last"):
            raise QueryError(f"sort on [{name}]: only missing=_last is supported")
        order = str(spec.get("order", "desc" if name == "_score" else "asc")).lower()
        if order not in ("asc", "desc"):
            raise QueryError(f"sort on [{name}]: order must be asc or desc")
        special = name if name in ("_score", "_doc") else None
        out.append(SortSpec(name, order == "desc", spec.get("mode"), spec.get("unmapped_type"), special))
    return out


@dataclass
class Plan:
    """One log type's part of a search: its Query (clusters, RBAC filters) and the compiled DSL."""

    lt: LogType
    query: Query
    fields: Fields
    cond: tuple[str, list[Any]]


def _plans(m: Any, request: Request, targets: list[Target], body: dict[str, Any]) -> list[Plan]:
    now = m.clock.now()
    out = []
    names = named_fields(body.get("query")) | {s.name for s in _sort_specs(body.get("sort"))}
    scope_body = {"aggs": [{"field": f} for f in names] + [body.get("aggs") or body.get("aggregations") or {}]}
    for t in targets:
        clusters = m.authorize_read(request, [t.lt], t.clusters)
        query = Query(t.lt, clusters, size=0, now=now)
        if "*" in names and getattr(request.state, "read_plan", None) is not None and request.state.read_plan.scoped:
            raise Forbidden("query_string searches are not available to namespace-scoped readers; use term queries")
        m.restrict_query(request, query, scope_body)
        df = _day_filter(t.lt, t)
        if df is not None:
            query.filters.append(df)
        fields = Fields(t.lt)
        cond = QueryCompiler(fields, now).compile(body.get("query"))
        query.filters.append(cond)
        out.append(Plan(t.lt, query, fields, cond))
    return out


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


def _hits(m: Any, request: Request, plans: list[Plan], body: dict[str, Any], *, start: int, size: int,
          extra: list[tuple[str, list[Any]]] | None = None) -> tuple[list[dict[str, Any]], int, float | None]:
    """The page of hits over every plan (merged by sort), and the exact total."""
    specs = _sort_specs(body.get("sort"))
    sorted_ = bool(specs) and not all(s.special == "_score" for s in specs)
    score = _score(body, sorted_)
    want_source, includes, excludes = _source_spec(body.get("_source"))
    after = body.get("search_after")
    if after is not None and (not isinstance(after, list) or len(after) != len(specs) or not specs):
        raise QueryError("search_after must have as many values as the sort has fields")
    rows_all: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    total = 0
    for plan in plans:
        lt = plan.lt
        sort_parts = [_sort_sql(plan.fields, s) for s in specs]
        exprs = [e for e, _ in sort_parts] + ['"_seq"']
        desc = [s.desc for s in specs] + [False]
        f_time = plan.fields.resolve(lt.time_field)
        assert f_time is not None
        day = f"strftime({f_time.ts_sql()}, '%Y%m%d')"
        doc = m.backend.compiler.doc(lt)
        page_sql, page_params = "", []  # type: str, list[Any]
        if after is not None:
            vals = [_after_value(v, s, r) for v, s, (_, r) in zip(after, specs, sort_parts, strict=True)]
            cond, page_params = _keyset(exprs[:-1], desc[:-1], vals)
            page_sql = f" AND ({cond})"
        extra_sql = "".join(f" AND ({c})" for c, _ in extra or [])
        extra_params = [p for _, ps in extra or [] for p in ps]
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

        n, rows = m.backend.run_over(plan.query, build)
        total += n
        docs = [orjson.loads(r[0]) for r in rows]
        docs = m.redact(request, lt, docs)
        for r, d in zip(rows, docs, strict=True):
            svals = [_sort_value(v, s, ref, score) for v, s, (_, ref) in zip(r[4:-1], specs, sort_parts, strict=False)]
            hit: dict[str, Any] = {"_index": f"{lt.index_prefix}.{r[2]}.{r[3]}", "_type": "_doc", "_id": r[1],
                                   "_score": score}
            if want_source:
                hit["_source"] = filter_source(d, includes, excludes) if (includes or excludes) else d
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
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v


def _order_key(v: Any, s: SortSpec) -> Any:
    missing = v is None
    return (missing, _Rev(v) if s.desc and not missing else (0 if missing else v))


def _total(n: int, track: Any, request: Request) -> Any:
    if request.query_params.get("rest_total_hits_as_int") == "true":
        return n
    if track is False:
        return None
    cap = MAX_WINDOW if track is None else (None if track is True else int(track))
    if cap is not None and n > cap:
        return {"value": cap, "relation": "gte"}
    return {"value": n, "relation": "eq"}


def _shard_count(m: Any, targets: list[Target]) -> int:
    parts = m.backend.partitions()
    return sum(1 for t in targets for c, days in t.days.items() for p in parts
               if p.log_type == t.lt.name and p.cluster == c and (days is None or p.day in days))


def _agg_groups(plans: list[Plan]) -> list[Plan]:
    """Aggregations read every plan as one: only over log types of the same schema."""
    if len(plans) <= 1:
        return plans
    first = plans[0]
    if any(p.lt.fields != first.lt.fields for p in plans[1:]):
        raise QueryError("aggregations over indices of log types with different fields are not supported; "
                         f"name one log type's indices ({', '.join(p.lt.index_prefix + '.*' for p in plans)})")
    q = first.query
    q.also = [p.lt for p in plans[1:]]
    q.clusters = sorted({c for p in plans for c in p.query.clusters})
    return [first]


def run_search(m: Any, request: Request, pattern: str, body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - SEARCH_KEYS
    if unknown:
        raise QueryError(f"search feature [{sorted(unknown)[0]}] is not supported by margay's ES API")
    for k in ("script_fields", "docvalue_fields"):
        if body.get(k):
            raise QueryError(f"[{k}] is not supported by margay's ES API")
    size = body.get("size", 10)
    start = body.get("from", 0)
    if not isinstance(size, int) or not isinstance(start, int) or size < 0 or start < 0:
        raise QueryError("[size] and [from] must be non-negative integers")
    if start + size > MAX_WINDOW:
        raise QueryError(f"Result window is too large, from + size must be less than or equal to: [{MAX_WINDOW}] "
                         f"but was [{start + size}]. Page with search_after instead.")
    if body.get("search_after") is not None and start:
        raise QueryError("[from] parameter must be set to 0 when [search_after] is used")
    track = body.get("track_total_hits")
    if track is not None and not isinstance(track, bool | int):
        raise QueryError("[track_total_hits] must be true, false or an integer")
    targets = resolve(m, request, pattern)
    plans = _plans(m, request, targets, body)
    hits, total, max_score = _hits(m, request, plans, body, start=start, size=size)
    shards = _shard_count(m, targets)
    out: dict[str, Any] = {"took": 1, "timed_out": False,
                           "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}
    hits_obj: dict[str, Any] = {}
    tot = _total(total, body.get("track_total_hits"), request)
    if tot is not None:
        hits_obj["total"] = tot
    hits_obj["max_score"] = max_score
    hits_obj["hits"] = hits
    out["hits"] = hits_obj
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs:
        out["aggregations"] = _aggregate(m, request, plans, aggs)
    elif aggs == {} and ("aggs" in body or "aggregations" in body):
        out["aggregations"] = {}
    return out


def _aggregate(m: Any, request: Request, plans: list[Plan], aggs: Any) -> dict[str, Any]:
    if not plans:
        empty_fields = Fields(REGISTRY["flows"])
        compiler = QueryCompiler(empty_fields, m.clock.now())
        agg = EsAggregator(empty_fields, lambda sql, ps: [(None,) * 64], m.clock.now(), compiler.compile)
        del agg
        raise QueryError("aggregations over no indices: the index pattern matched nothing")
    plan = _agg_groups(plans)[0]
    now = m.clock.now()
    compiler = QueryCompiler(plan.fields, now)

    def build(run: Any, src: str, params: list[Any]) -> Any:
        def hits(scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
            size = p.get("size", 3)
            sub_body = {"sort": p.get("sort"), "_source": p.get("_source"), "query": None}
            h, total, ms = _hits(m, request, [plan], sub_body, start=p.get("from", 0), size=size, extra=scope.filters)
            return {"total": {"value": total, "relation": "eq"}, "max_score": ms, "hits": h}

        agg = EsAggregator(plan.fields, run, now, compiler.compile, hits)
        return agg.aggregate(aggs, Scope(src, params))

    return m.backend.run_over(plan.query, build)


# -- endpoints ----------------------------------------------------------------------------------------
def _backend_is_opensearch(m: Any) -> bool:
    return getattr(m.backend, "name", "duckdb") == "opensearch"


async def _passthrough(request: Request, pattern: str | None, path_tail: str, body: bytes | None) -> Response:
    """Forward to the OpenSearch backend with the pattern narrowed to the caller's readable indices."""
    m = request.app.state.margay
    path = "/" + path_tail
    if pattern is not None:
        targets = await asyncio.to_thread(resolve, m, request, pattern)
        for t in targets:
            m.authorize_read(request, [t.lt], t.clusters)
            plan = getattr(request.state, "read_plan", None)
            if plan is not None and plan.scoped:
                raise Forbidden("namespace-scoped readers cannot use the ES API on the OpenSearch backend")
        names = [m.backend.index(t.lt, c, d or "*")
                 for t in targets for c, days in t.days.items() for d in (sorted(days) if days else [None])]
        if not names:
            names = ["-*"]  # nothing readable and nothing named: an empty answer, as ES gives for patterns
        path = "/" + ",".join(names) + path
    forward = getattr(m.backend, "es_request", None)
    if forward is None:
        raise MargayError("the OpenSearch backend does not offer request pass-through", status=501)
    status, headers, content = await asyncio.to_thread(forward, request.method, path, dict(request.query_params), body)
    return Response(content, status_code=status, media_type=headers.get("content-type", "application/json"))


@_handler
async def root(request: Request) -> Response:
    return ESResponse({"name": "margay", "cluster_name": "margay", "cluster_uuid": "margay-embedded",
                       "version": VERSION, "tagline": "You Know, for Search"})


@_handler
async def cat_indices(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params.get("index", "_all")
    parts = m.visible_partitions(request, m.backend.partitions())
    wanted = {(t.lt.name, c, d) for t in await asyncio.to_thread(resolve, m, request, pattern)
              for c, days in t.days.items() for d in ([p.day for p in parts if p.log_type == t.lt.name
                                                        and p.cluster == c] if days is None else days)}
    rows = [{"health": "green", "status": "open", "index": p.index, "uuid": p.index, "pri": "1", "rep": "0",
             "docs.count": None if p.docs is None else str(p.docs), "docs.deleted": "0",
             "store.size": None if p.bytes is None else str(p.bytes),
             "pri.store.size": None if p.bytes is None else str(p.bytes)}
            for p in parts if (p.log_type, p.cluster, p.day) in wanted]
    rows.sort(key=lambda r: r["index"])
    if request.query_params.get("format") == "json":
        return ESResponse(rows)
    cols = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted", "store.size",
            "pri.store.size"]
    table = [cols] if request.query_params.get("v") in ("", "true") else []
    table += [[str(r[c]) if r[c] is not None else "" for c in cols] for r in rows]
    widths = [max((len(row[i]) for row in table), default=0) for i in range(len(cols))]
    text = "".join(" ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in table)
    return PlainTextResponse(text)


@_handler
async def get_mapping(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params["index"]
    if _backend_is_opensearch(m):
        return await _passthrough(request, pattern, "_mapping", None)
    targets = await asyncio.to_thread(resolve, m, request, pattern)
    parts = m.backend.partitions()
    out = {}
    for t in targets:
        for c, days in t.days.items():
            for p in parts:
                if p.log_type == t.lt.name and p.cluster == c and (days is None or p.day in days):
                    out[p.index] = {"mappings": mapping_for(t.lt)}
    return ESResponse(dict(sorted(out.items())))


@_handler
async def search(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params.get("index", "_all")
    if _backend_is_opensearch(m):
        raw = await read_body(request, QUERY_BODY_LIMIT) if request.method == "POST" else None
        return await _passthrough(request, pattern, "_search", raw)
    body = _query_params_into(await _json(request), request)
    out = await asyncio.to_thread(run_search, m, request, pattern, body)
    return ESResponse(out)


@_handler
async def count(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params.get("index", "_all")
    if _backend_is_opensearch(m):
        raw = await read_body(request, QUERY_BODY_LIMIT) if request.method == "POST" else None
        return await _passthrough(request, pattern, "_count", raw)
    body = _query_params_into(await _json(request), request)
    if set(body) - {"query"}:
        raise QueryError(f"request does not support [{sorted(set(body) - {'query'})[0]}]")

    def run() -> dict[str, Any]:
        targets = resolve(m, request, pattern)
        plans = _plans(m, request, targets, body)
        n = 0
        for p in plans:
            n += m.backend.run_over(p.query, lambda run, src, params: run(f"SELECT count(*) {src}", params))[0][0]
        shards = _shard_count(m, targets)
        return {"count": n, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}

    return ESResponse(await asyncio.to_thread(run))


@_handler
async def msearch(request: Request) -> Response:
    m = request.app.state.margay
    raw = await read_body(request, QUERY_BODY_LIMIT)
    if _backend_is_opensearch(m):
        raise QueryError("_msearch pass-through to the OpenSearch backend is not supported yet")
    lines = [ln for ln in raw.split(b"\n") if ln.strip()]
    if len(lines) % 2:
        raise ParseError("_msearch: expected header and body lines in pairs")
    default = request.path_params.get("index")
    responses = []
    for i in range(0, len(lines), 2):
        try:
            check_depth(lines[i + 1], f"line {i + 2}")
            header = orjson.loads(lines[i])
            body = orjson.loads(lines[i + 1])
            if not isinstance(header, dict) or not isinstance(body, dict):
                raise ParseError(f"line {i + 1 if not isinstance(header, dict) else i + 2}: expected a JSON object")
            index = header.get("index", default) or "_all"
            if isinstance(index, list) and all(isinstance(x, str) for x in index):
                index = ",".join(index)
            if not isinstance(index, str):
                raise ParseError(f"line {i + 1}: [index] must be a string or a list of strings")
            out = await asyncio.to_thread(run_search, m, request, index, body)
            out["status"] = 200
            responses.append(out)
        except MargayError as exc:
            responses.append(orjson.loads(es_error(exc).body))
        except orjson.JSONDecodeError as exc:
            responses.append(orjson.loads(es_error(ParseError(f"line {i + 1}: {exc}")).body))
        except SHAPE_ERRORS as exc:
            shaped = shape_error(exc)
            if shaped is None:
                raise
            responses.append(orjson.loads(es_error(shaped).body))
    return ESResponse({"took": 1, "responses": responses})


@_handler
async def bulk(request: Request) -> Response:
    """`_bulk` index/create into `tigera_secure_ee_<type>.<cluster>.<day>`, stored through the store's ingest."""
    m = request.app.state.margay
    raw = await read_body(request, m.settings.max_body_bytes)
    if _backend_is_opensearch(m):
        raise QueryError("_bulk on the OpenSearch backend: write through margay's ingest API instead")
    lines = [ln for ln in raw.split(b"\n") if ln.strip()]
    default = request.path_params.get("index")
    items: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[tuple[int, bytes, str | None, str]]] = {}
    i = 0
    while i < len(lines):
        n = len(items)
        try:
            action = orjson.loads(lines[i])
        except orjson.JSONDecodeError:
            raise ParseError(f"_bulk: line {i + 1} is not JSON") from None
        if not isinstance(action, dict) or len(action) != 1:
            raise ParseError(f"_bulk: line {i + 1}: expected one action (index or create)")
        (op, meta), = action.items()
        if not isinstance(meta, dict):
            raise ParseError(f"_bulk: line {i + 1}: the {str(op)[:40]!r} action takes an object of metadata "
                             "({\"_index\": ...}), got " + type(meta).__name__,
                             details={"line": i + 1, "field": str(op)[:40]})
        if op in ("delete", "update"):
            items.append({op: {"_index": meta.get("_index", default), "_id": meta.get("_id"), "status": 400,
                               "error": {"type": "illegal_argument_exception",
                                         "reason": f"{op} is not supported: logs are append-only"}}})
            i += 1 if op == "delete" else 2
            continue
        if op not in ("index", "create") or i + 1 >= len(lines):
            raise ParseError(f"_bulk: line {i + 1}: unsupported action {op!r} or missing document")
        index = meta.get("_index", default)
        doc = lines[i + 1]
        i += 2
        items.append({op: {"_index": index, "_id": meta.get("_id"), "status": 0}})
        target = _index_target(index)
        if isinstance(target, str):
            items[n][op].update(status=400, error={"type": "illegal_argument_exception", "reason": target})
            continue
        groups.setdefault(target, []).append((n, doc, meta.get("_id"), op))
    for (type_name, cluster), docs in groups.items():
        lt = REGISTRY[type_name]
        try:
            written = m.write_cluster(request, cluster)
            if written != cluster:
                raise Forbidden(f"this token writes for cluster {written!r}, not {cluster!r}")
        except MargayError as exc:
            for n, _, _, op in docs:
                items[n][op].update(status=exc.status, error={"type": "security_exception", "reason": exc.message})
            continue
        body = b"\n".join(d for _, d, _, _ in docs) + b"\n"

        def respond(conv: Any) -> dict[str, Any]:
            return {"total": conv.total, "succeeded": conv.succeeded,
                    "errors": [e.as_dict() for e in conv.errors]}

        m.guard_disk()
        response, _ = await asyncio.to_thread(m.backend.ingest, lt, cluster, body, key=None, now=m.clock.now(),
                                              respond=respond)
        bad = {e.get("line"): e for e in response["errors"]}
        for line_no, (n, _, _id, op) in enumerate(docs, start=1):
            err = bad.get(line_no)
            if err is not None:
                items[n][op].update(status=400, error={"type": "mapper_parsing_exception",
                                                       "reason": err.get("message") or str(err)})
            else:
                items[n][op].update(status=201, result="created", _version=1,
                                    _shards={"total": 1, "successful": 1, "failed": 0})
        m.metrics.inc("margay_records_accepted_total", response["succeeded"], type=lt.name, cluster=cluster)
    errors = any(next(iter(it.values()))["status"] >= 300 for it in items)
    return ESResponse({"took": 1, "errors": errors, "items": items})


def _index_target(index: Any) -> tuple[str, str] | str:
    """(log type, cluster) of a write index `<prefix>.<cluster>[.<yyyymmdd>]`, or why it is refused.

    Calico's write alias `<prefix>.<cluster>.` (trailing dot) names the same cluster; its ILM backing indices
    (`<prefix>.<cluster>.fluentd-<yyyymmdd>-000001`) keep parsing as before. Whatever is left must be a valid
    cluster name (names.py): nothing else reaches the store.
    """
    if not isinstance(index, str) or not index:
        return "_bulk: every action needs an _index (or an index in the URL)"
    for lt in REGISTRY.values():
        if index.startswith(lt.index_prefix + "."):
            rest = index[len(lt.index_prefix) + 1:]
            if rest.endswith(".") and not rest.endswith(".."):
                rest = rest[:-1]  # the write alias
            parts = rest.rsplit(".", 1)
            cluster = parts[0] if len(parts) == 2 and parts[1].isdigit() and len(parts[1]) == 8 else rest
            if not is_cluster_name(cluster):
                return f"invalid index name [{index[:300]}]: {CLUSTER_RULE}"
            return lt.name, cluster
    return (f"index [{index[:300]}] is not a margay log index: "
            "write to tigera_secure_ee_<type>.<cluster>[.<yyyymmdd>]")


@_handler
async def unsupported(request: Request) -> Response:
    raise QueryError(f"{request.method} {request.url.path} is not supported by margay's ES API "
                     "(supported: /, _cat/indices, _mapping, _search, _count, _msearch, _bulk)")


@_handler
async def head_root(request: Request) -> Response:
    return Response(status_code=200)


def routes() -> list[Route]:
    return [
        Route("/es", root, methods=["GET"]),
        Route("/es/", root, methods=["GET"]),
        Route("/es/", head_root, methods=["HEAD"]),
        Route("/es/_cat/indices", cat_indices, methods=["GET"]),
        Route("/es/_cat/indices/{index}", cat_indices, methods=["GET"]),
        Route("/es/_search", search, methods=["GET", "POST"]),
        Route("/es/_count", count, methods=["GET", "POST"]),
        Route("/es/_msearch", msearch, methods=["GET", "POST"]),
        Route("/es/_bulk", bulk, methods=["POST", "PUT"]),
        Route("/es/_search/scroll", unsupported, methods=["GET", "POST", "DELETE"]),
        Route("/es/_pit", unsupported, methods=["POST", "DELETE"]),
        Route("/es/{index}/_mapping", get_mapping, methods=["GET"]),
        Route("/es/{index}/_search", search, methods=["GET", "POST"]),
        Route("/es/{index}/_count", count, methods=["GET", "POST"]),
        Route("/es/{index}/_msearch", msearch, methods=["GET", "POST"]),
        Route("/es/{index}/_bulk", bulk, methods=["POST", "PUT"]),
        Route("/es/{index}/_search/point_in_time", unsupported, methods=["POST"]),
        Route("/es/{path:path}", unsupported, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
    ]
