"""Log query endpoints in Linseed's shape: lists, aggregations, filter hints, and the index listing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import Forbidden, MargayError, ParseError, QueryError
from ..logtypes import REGISTRY, LogType, get
from ..names import valid_cluster
from ..query.linseed import combine, typed_filters
from ..query.model import Query, page_size, sort_keys, time_range
from .common import MULTI_CLUSTER, JSONResponse, header_cluster, json_body, shape_error

MAX_HINTS = 1000
MAX_NAMED_CLUSTERS = 10_000  # `clusters` of one read: each is authorized (a review each with Kubernetes); 400k took 8 CPU-s
_ENDPOINTS = {"audit_ee": "audit", "audit_kube": "audit"}  # log type -> the Linseed params struct it takes


def _selector(body: dict[str, Any]) -> Any:
    text = body.get("selector")
    if text in (None, ""):
        return None
    if not isinstance(text, str):
        raise QueryError("selector: expected a string in margay's selector syntax")
    from ..query.selector import parse_selector

    return parse_selector(text)


def requested_clusters(request: Request, body: dict[str, Any], lt: LogType) -> list[str]:
    """The clusters a read asks for: x-cluster-id, or with _MULTI_ the body's clusters / all_clusters."""
    m = request.app.state.margay
    header = header_cluster(request)
    every = body.get("all_clusters", False)
    if not isinstance(every, bool):
        raise QueryError(f"all_clusters: expected true or false, got {type(every).__name__}",
                         details={"field": "all_clusters"})
    if every:
        # Every stored cluster; authorize_read then keeps those the caller may read (the engine applies it).
        sent = request.headers.get("x-cluster-id", "").strip()
        if sent and sent != MULTI_CLUSTER:
            raise QueryError(f"all_clusters: true asks for every cluster, but x-cluster-id names {sent[:60]!r}; "
                             "send x-cluster-id: _MULTI_ (or none)", details={"field": "all_clusters"})
        if body.get("clusters") not in (None, []):
            raise QueryError("clusters and all_clusters: give a list of clusters or all_clusters: true, not both",
                             details={"field": "clusters"})
        return m.backend.clusters(None) or []
    if header == MULTI_CLUSTER:
        clusters = body.get("clusters")
        if not isinstance(clusters, list) or not clusters or not all(isinstance(c, str) for c in clusters):
            raise QueryError("x-cluster-id _MULTI_ needs \"clusters\": [names] or \"all_clusters\": true in the body")
        if len(clusters) > MAX_NAMED_CLUSTERS:
            raise QueryError(f"clusters: at most {MAX_NAMED_CLUSTERS} names, got {len(clusters)}; "
                             "send \"all_clusters\": true to read every cluster you may read", details={"field": "clusters"})
        return [valid_cluster(c, where=f"clusters[{i}]") for i, c in enumerate(clusters)]
    return [valid_cluster(header, where="x-cluster-id")]


def build_query(request: Request, body: dict[str, Any], lt: LogType, *, also: list[LogType] | None = None,
                default_last: Any = None) -> Query:
    m = request.app.state.margay
    # Linseed's runtime list bounds generated_time by `from` alone and ignores `to` and `field`.
    start, end, field = time_range(body, m.clock.now(), default_last=default_last, from_only=lt.range_from_only)
    if field is None and (start, end) != (None, None):
        field = lt.range_field
    clusters = requested_clusters(request, body, lt)
    clusters = m.authorize_read(request, [lt, *(also or [])], clusters, named=body.get("all_clusters") is not True)
    typed = typed_filters(body, _ENDPOINTS.get(lt.name, lt.name))
    query = Query(logtype=lt, also=also or [], clusters=clusters, start=start, end=end, time_field=field,
                  selector=combine(_selector(body), typed), selector_text=body.get("selector") or None, now=m.clock.now(),
                  sort=sort_keys(body), size=page_size(body),
                  after_key=body.get("after_key") if isinstance(body.get("after_key"), dict) else None,
                  total_hits=body.get("total_hits", True) is not False)
    m.restrict_query(request, query, body)  # access: readable types only, the namespace-scoped restriction
    return query


def audit_types(body: dict[str, Any]) -> tuple[LogType, list[LogType]]:
    kind = body.get("type", "any") or "any"
    if kind == "ee":
        return REGISTRY["audit_ee"], []
    if kind == "kube":
        return REGISTRY["audit_kube"], []
    if kind == "any":
        return REGISTRY["audit_ee"], [REGISTRY["audit_kube"]]
    raise QueryError(f"type: expected ee, kube or any, got {kind!r}")


async def _timed(request: Request, endpoint: str, fn: Any, *args: Any) -> Any:
    m = request.app.state.margay
    started = time.perf_counter()
    try:
        return await asyncio.to_thread(fn, *args)
    finally:
        m.metrics.observe("margay_query_seconds", time.perf_counter() - started, endpoint=endpoint)


def _types_for(request: Request, name: str, body: dict[str, Any]) -> tuple[LogType, list[LogType]]:
    if name == "audit":
        return audit_types(body)
    return get(name), []


async def search_logs(request: Request, name: str) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    lt, also = _types_for(request, name, body)
    default_last = timedelta(seconds=lt.default_window_s) if lt.default_window_s else None
    query = build_query(request, body, lt, also=also, default_last=default_last)
    result = await _timed(request, "logs", m.backend.search, query)
    m.access_log(request, lt, query, len(result.items))
    out: dict[str, Any] = {"items": result.items, "total_hits": result.total}
    if result.after_key is not None:
        out["after_key"] = result.after_key
    return JSONResponse(out)


async def aggregate_logs(request: Request, name: str) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    lt, query, aggs = prepare_aggregation(request, name, body)
    result = await _timed(request, "aggregation", m.backend.aggregate, query, aggs)
    m.metrics.inc("margay_aggregations_total", path=result.path)
    m.access_log(request, lt, query, None)
    # Linseed answers the aggregations map itself (not wrapped in {"aggregations": ...}).
    return JSONResponse(result.result, headers={"x-margay-aggregation-path": result.path})


def prepare_aggregation(request: Request, name: str, body: dict[str, Any]) -> tuple[LogType, Query, dict[str, Any]]:
    """One aggregation request checked and narrowed to what the caller may read (RBAC, namespace scope): the
    log type, the query and the aggregations, for `/api/v1/<type>/.../aggregation` and each batch item."""
    lt, also = _types_for(request, name, body)
    query = build_query(request, body, lt, also=also)
    aggs = body.get("aggregations") or body.get("aggs") or {}
    num_buckets = body.get("num_buckets", 0)
    if num_buckets:
        if not isinstance(num_buckets, int) or num_buckets < 1 or num_buckets > 1000:
            raise QueryError("num_buckets: expected an integer from 1 to 1000")
        aggs = {"tb": {"date_histogram": {"field": query.time_key,
                                          "fixed_interval": _auto_interval(query, num_buckets)},
                       "aggs": aggs}}
    if not isinstance(aggs, dict):
        raise QueryError("aggregations: expected an object of name -> aggregation")
    return lt, query, aggs


MAX_BATCH = 64  # aggregation requests in one batch (the overview sends 24)
Prepared = tuple[LogType, Query, dict[str, Any], Any] | MargayError


async def aggregate_batch(request: Request, names: list[str]) -> Response:
    """POST /api/v1/aggregations: several aggregation requests in one round trip, like `_msearch`.

    `{"requests": [{"log_type": "flows", ...the body of /api/v1/flows/logs/aggregation...}, ...]}` answers
    `{"responses": [...]}` in the same order: `{"status": 200, "aggregations": {...}, "path": "rollup|raw"}`,
    the aggregations map the item's own route answers, or `{"status": 403, "error": {...}}` for an item the
    caller may not read (the others are answered). Each item goes through that route's code
    (prepare_aggregation: RBAC, namespace scope, the same query), with the request's x-cluster-id as its
    own header. A malformed item makes the whole batch a 4xx whose message starts with `requests[i]`.
    With `Accept: application/x-ndjson` the answers stream as each is ready, one line each with its `index`
    (an error only the engine finds is then that item's line, status 400).
    """
    m = request.app.state.margay
    body = await json_body(request)
    prepared = _prepare_batch(request, names, body)

    async def answer(i: int, p: Prepared) -> dict[str, Any]:
        if isinstance(p, MargayError):
            return {"index": i, "status": p.status, **p.envelope()}
        lt, query, aggs, plan = p
        try:
            res = await _timed(request, "aggregation", m.backend.aggregate, query, aggs)
        except MargayError as exc:
            failed = _naming(exc, i)
            return {"index": i, "status": failed.status, **failed.envelope(), "_error": failed}
        except Exception as exc:  # noqa: BLE001  # a request of the wrong shape is the item's 400, as on its route
            shaped = shape_error(exc)
            if shaped is None:
                raise
            failed = _naming(shaped, i)
            return {"index": i, "status": 400, **failed.envelope(), "_error": failed}
        m.metrics.inc("margay_aggregations_total", path=res.path)
        request.state.read_plan = plan  # the item's own, for its access log line
        m.access_log(request, lt, query, None)
        return {"index": i, "status": 200, "aggregations": res.result, "path": res.path}

    if "application/x-ndjson" in request.headers.get("accept", ""):
        async def lines() -> AsyncIterator[bytes]:
            for done in asyncio.as_completed([answer(i, p) for i, p in enumerate(prepared)]):
                entry = await done
                entry.pop("_error", None)
                yield orjson.dumps(entry) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")
    out = await asyncio.gather(*(answer(i, p) for i, p in enumerate(prepared)))
    for entry in out:
        failed = entry.pop("_error", None)
        if isinstance(failed, (QueryError, ParseError)):
            raise failed
        del entry["index"]
    return JSONResponse({"responses": out})


def _prepare_batch(request: Request, names: list[str], body: dict[str, Any]) -> list[Prepared]:
    """Each item checked and narrowed as its own route would (a 4xx naming the first malformed one); an item
    the caller may not read is kept as its 403."""
    items = body.get("requests")
    unknown = sorted(set(body) - {"requests"})
    if unknown:
        raise QueryError(f"unknown key {unknown[0][:40]!r}: expected only \"requests\"", details={"field": unknown[0][:40]})
    if not isinstance(items, list) or not items:
        raise QueryError("requests: expected a list of aggregation requests, each with its log_type",
                         details={"field": "requests"})
    if len(items) > MAX_BATCH:
        raise QueryError(f"requests: at most {MAX_BATCH} in one batch, got {len(items)}", details={"field": "requests"})
    prepared: list[Prepared] = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise QueryError(f"expected an object, got {type(item).__name__}")
            name = item.get("log_type")
            if name not in names:
                raise QueryError(f"log_type: expected one of {', '.join(names)}, got {str(name)[:40]!r}")
            lt, query, aggs = prepare_aggregation(request, name, {k: v for k, v in item.items() if k != "log_type"})
            prepared.append((lt, query, aggs, getattr(request.state, "read_plan", None)))
        except Forbidden as exc:  # this item only, as its own route would answer it
            prepared.append(exc)
        except MargayError as exc:
            raise _naming(exc, i) from None
    return prepared


def _naming(exc: MargayError, i: int) -> MargayError:
    """The same error (type, status, details) with the batch item it is about named first (and in details)."""
    details = {**exc.details, "item": i} if isinstance(exc.details, dict) else {"item": i} if exc.details is None \
        else exc.details
    return type(exc)(f"requests[{i}]: {exc.message}", details=details, status=exc.status)


def _auto_interval(query: Query, buckets: int) -> str:
    if query.start is None or query.end is None:
        return "1h"
    span = max(1, int((query.end - query.start).total_seconds()))
    for step in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604800):
        if span / step <= buckets:
            return f"{step}s"
    return "30d"


async def field_values(request: Request, name: str, field: str) -> JSONResponse:
    """Filter hints: the most common values of a field, optionally starting with a prefix."""
    m = request.app.state.margay
    body = await json_body(request)
    lt, also = _types_for(request, name, body)
    keys = lt.query_keys()
    if field not in keys:
        raise QueryError(f"unknown field {field!r} for {lt.name}", status=404)
    size = body.get("size", 20)
    if not isinstance(size, int) or not 1 <= size <= MAX_HINTS:
        raise QueryError(f"size: expected an integer from 1 to {MAX_HINTS}")
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise QueryError("prefix: expected a string")
    query = build_query(request, body, lt, also=also)
    values = await _timed(request, "hints", m.backend.field_values, query, field, prefix, size)
    m.access_log(request, lt, query, len(values))
    return JSONResponse({"field": field, "values": [v.as_dict() for v in values]})


MAX_INDICES = 10_000  # one page of GET /api/v1/indices at most


def _index_filters(request: Request) -> tuple[LogType | None, str, bool, str, str, int, str]:
    """GET /api/v1/indices' parameters, each checked: log_type, cluster (a name, or a prefix ending in `*`),
    from/to (yyyymmdd days, inclusive), limit, after (the last index of the previous page)."""
    params = request.query_params
    unknown = sorted(set(params) - {"log_type", "cluster", "from", "to", "limit", "after"})
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r}: expected log_type, cluster, from, to, limit, after")
    name = params.get("log_type")
    lt = None
    if name is not None:
        if name not in REGISTRY:
            raise QueryError(f"log_type: unknown log type {name[:40]!r}; one of {', '.join(REGISTRY)}")
        lt = REGISTRY[name]
    cluster = params.get("cluster", "")
    prefix = cluster.endswith("*")
    if cluster and (cluster.count("*") > 1 or (not prefix and "*" in cluster)):
        raise QueryError("cluster: a cluster name, or a prefix ending in `*` (e.g. prod-*)")
    if cluster and cluster != "*":
        stem = cluster.rstrip("*").rstrip("-.")
        if stem:
            valid_cluster(stem, where="the cluster parameter")
    days = []
    for key in ("from", "to"):
        day = params.get(key, "")
        if day and not (len(day) == 8 and day.isdigit()):
            raise QueryError(f"{key}: expected a day as yyyymmdd, got {day[:20]!r}")
        days.append(day)
    raw = params.get("limit", str(MAX_INDICES))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= MAX_INDICES:  # "²": isdigit, not int
        raise QueryError(f"limit: expected an integer from 1 to {MAX_INDICES}")
    return lt, cluster.rstrip("*"), prefix, days[0], days[1], int(raw), params.get("after", "")


async def list_indices(request: Request) -> JSONResponse:
    """The stored (type, cluster, day) partitions the caller may read, by index name; filtered and paged
    (`after` = the last index of the previous page) so a fleet's list comes in pieces."""
    m = request.app.state.margay
    lt, cluster, prefix, lo, hi, limit, after = _index_filters(request)
    exact = [cluster] if cluster and not prefix else None
    parts = await asyncio.to_thread(m.backend.partitions, lt, exact)
    parts = [p for p in parts if (not prefix or p.cluster.startswith(cluster)) and (not lo or p.day >= lo)
             and (not hi or p.day <= hi)]
    visible = sorted(await asyncio.to_thread(m.visible_partitions, request, parts), key=lambda p: p.index)
    rest = [p for p in visible if p.index > after] if after else visible
    page = rest[:limit]
    body: dict[str, Any] = {"items": [{"index": p.index, "log_type": p.log_type, "cluster": p.cluster,
                                       "day": p.day, "docs": p.docs, "bytes": p.bytes} for p in page],
                            "total": len(visible)}
    if len(rest) > limit:
        body["after"] = page[-1].index
    return JSONResponse(body)


def routes() -> list[Route]:
    out: list[Route] = [Route("/api/v1/indices", list_indices, methods=["GET"])]
    # One search and one aggregation route per query path of the registry; types that share a path (the two
    # audit types) are read together under their common name, `type` in the body choosing.
    paths: dict[str, str] = {}
    for lt in REGISTRY.values():
        if lt.envelope:  # Linseed's threat-feed lists: api/threatfeeds.py
            continue
        sharing = [t for t in REGISTRY.values() if t.query_path == lt.query_path]
        paths.setdefault(lt.name if len(sharing) == 1 else lt.name.split("_")[0], lt.query_path)
    for name, path in paths.items():
        async def search(request: Request, name: str = name) -> JSONResponse:
            return await search_logs(request, name)

        async def aggregation(request: Request, name: str = name) -> JSONResponse:
            return await aggregate_logs(request, name)

        out.append(Route("/api/v1" + path, search, methods=["POST"]))
        agg_path = "/api/v1" + path + "/aggregation"
        out.append(Route(agg_path, aggregation, methods=["POST"]))
    names = sorted(paths)

    async def batch(request: Request) -> Response:
        return await aggregate_batch(request, names)

    out.append(Route("/api/v1/aggregations", batch, methods=["POST"]))
    for name in ("flows", "dns", "audit", "audit_ee", "audit_kube", "bgp", "events", "l7", "waf", "policy_activity",
                 "runtime"):
        async def hints(request: Request, name: str = name) -> JSONResponse:
            return await field_values(request, name, request.path_params["field"])

        out.append(Route(f"/api/v1/{name}/fields/{{field}}/values", hints, methods=["POST"]))
    return out
