"""The Elasticsearch-compatible API under /es/: the subset real clients send, answered like OpenSearch.

Index names and patterns resolve to the (log type, cluster, day) partitions the caller may read; each log
type becomes an EsPlan with its own readable clusters, days and restriction (query/es/request.py), and
the engine answers (Backend.es_search/es_count): the embedded engine translates the DSL to SQL, OpenSearch
gets a narrowed pass-through. An index the caller may not read looks exactly like a missing one. Errors
take Elasticsearch's envelope so clients raise properly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..errors import Forbidden, MargayError, NotFound, ParseError, QueryError
from ..logtypes import REGISTRY
from ..names import valid_cluster
from ..query.es import names
from ..query.es.fieldcaps import field_caps
from ..query.es.request import Target, query_params_into, resolve
from ..query.restriction import Restriction
from ..store.backend import EsAnswer, EsPlan
from ..store.mapping import mapping_for
from .common import SHAPE_ERRORS, check_depth, read_body, shape_error

# Elasticsearch 7.10.2's identity (what OpenSearch reports in compatibility mode): the tagline and build
# flavor are those elasticsearch-py 7.x checks before it talks to a server.
VERSION = {"number": "7.10.2", "build_flavor": "default", "build_type": "margay", "build_hash": "margay",
           "build_date": "2024-01-01T00:00:00Z", "build_snapshot": False, "lucene_version": "8.7.0",
           "minimum_wire_compatibility_version": "6.8.0", "minimum_index_compatibility_version": "6.0.0-beta1"}
QUERY_BODY_LIMIT = 10 * 1024 * 1024  # a search, count or msearch body (_bulk has max_body_bytes)
MAX_BULK_LINES = 1_000_000  # lines of one _bulk body (500,000 documents), checked before it is split

# Request parts that read stored values beside the hits' _source: not for namespace-scoped readers, whose
# withheld values they would show.

# elasticsearch-py 8 and 9 refuse a server whose answers lack this header (as OpenSearch's do, so clients
# that test for OpenSearch are not misled: margay speaks the Elasticsearch 7.10 API).
PRODUCT_HEADER = {"x-elastic-product": "Elasticsearch"}


class ESResponse(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(content, status_code, {**PRODUCT_HEADER, **(headers or {})}, **kwargs)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def es_error(exc: MargayError) -> ESResponse:
    kind = {400: "parsing_exception" if isinstance(exc, ParseError) else "illegal_argument_exception",
            401: "security_exception", 403: "security_exception",
            404: "search_context_missing_exception" if type(exc).__name__ == "ContextMissing"
            else "index_not_found_exception"}.get(exc.status, "exception")
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


# -- access: which partitions, and how each is read ---------------------------------------------------------
def _targets(m: Any, request: Request, pattern: str) -> list[Target]:
    """The caller's readable partitions named by an index pattern; a concrete name that is missing or
    unreadable is 404 alike (so no one learns which clusters and days exist)."""
    who = m.caller(request)
    if who.is_writer:
        raise Forbidden("cluster (writer) tokens may write logs but not read them")
    pattern = names.translate(pattern)  # Calico's write aliases, ILM backing and calico_* single indices
    parts = m.backend.partitions()
    existing = [(p.log_type, p.cluster, p.day) for p in parts]
    try:
        pairs = m.access.expand(who, pattern, existing)
    except Forbidden:
        pairs = []
    return resolve(parts, {(lt.name, c) for lt, c, _ in pairs}, pattern)


def _plans(m: Any, request: Request, targets: list[Target], body: dict[str, Any]) -> list[EsPlan]:
    """Each target's own read plan: its readable clusters, their days, and its restriction (which the engine
    narrows by the fields each body names: query/es/request.py scope_plans)."""
    who = m.caller(request)
    out = []
    for t in targets:
        plan = m.access.plan_read(who, [t.lt], t.clusters)
        days = {c: (frozenset(d) if d is not None else None) for c, d in t.days.items() if c in plan.clusters}
        restriction = Restriction({c: ns for c, ns in plan.scoped.items() if c in days})
        if t.lt.name == "compliance_reports":  # Calico's report RBAC (access/reports.py), whatever the path
            restriction = replace(restriction, rows=m.report_rows(request, list(days)))
        out.append(EsPlan(t.lt, days, restriction))
    return out


def run_search(m: Any, request: Request, pattern: str, body: dict[str, Any]) -> EsAnswer:
    plans = _plans(m, request, _targets(m, request, pattern), body)
    as_int = request.query_params.get("rest_total_hits_as_int") == "true"
    return m.backend.es_search(plans, body, now=m.clock.now(), total_as_int=as_int)


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
            raise ParseError(f"source parameter is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ParseError("source parameter must be a JSON object")
    return body


# -- endpoints ----------------------------------------------------------------------------------------
@_handler
async def root(request: Request) -> Response:
    return ESResponse({"name": "margay", "cluster_name": "margay", "cluster_uuid": "margay-embedded",
                       "version": VERSION, "tagline": "You Know, for Search"})


@_handler
async def cat_indices(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params.get("index", "_all")
    parts = m.visible_partitions(request, m.backend.partitions())
    wanted = {(t.lt.name, c, d) for t in await asyncio.to_thread(_targets, m, request, pattern)
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
    return PlainTextResponse(text, headers=PRODUCT_HEADER)


@_handler
async def get_mapping(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params["index"]
    targets = await asyncio.to_thread(_targets, m, request, pattern)
    parts = m.backend.partitions()
    out = {}
    for t in targets:
        for c, days in t.days.items():
            for p in parts:
                if p.log_type == t.lt.name and p.cluster == c and (days is None or p.day in days):
                    out[p.index] = {"mappings": mapping_for(t.lt)}
    return ESResponse(dict(sorted(out.items())))


@_handler
async def count(request: Request) -> Response:
    m = request.app.state.margay
    pattern = request.path_params.get("index", "_all")
    body = query_params_into(await _json(request), request.query_params)
    if set(body) - {"query"}:
        raise QueryError(f"request does not support [{sorted(set(body) - {'query'})[0]}]")

    def run() -> EsAnswer:
        plans = _plans(m, request, _targets(m, request, pattern), body)
        return m.backend.es_count(plans, body, now=m.clock.now())

    answer = await asyncio.to_thread(run)
    return ESResponse(answer.body, status_code=answer.status)


@_handler
async def msearch(request: Request) -> Response:
    m = request.app.state.margay
    raw = await read_body(request, QUERY_BODY_LIMIT)
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
                raise ParseError(f"line {i + 1}: expected a header object and a body object")
            index = header.get("index", default) or "_all"
            if isinstance(index, list) and all(isinstance(x, str) for x in index):
                index = ",".join(index)
            if not isinstance(index, str):
                raise ParseError(f"line {i + 1}: [index] must be a string or a list of strings")
            body = query_params_into(body, request.query_params)
            answer = await asyncio.to_thread(run_search, m, request, index, body)
            responses.append({**answer.body, "status": answer.status})
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
    # Counted before any line is split out: a body of tiny lines (`{}` a line, ~100 kB gzipped) made a Python
    # object per line, gigabytes of them, before any document was looked at.
    if raw.count(b"\n") > MAX_BULK_LINES:
        raise ParseError(f"_bulk: a body holds at most {MAX_BULK_LINES:,} lines (actions and documents); "
                         "send it in smaller requests")
    numbered = [(n, ln) for n, ln in enumerate(raw.split(b"\n"), start=1) if ln.strip()]
    lines = [ln for _, ln in numbered]

    def at(i: int) -> int:  # the body's own line number of non-blank line i (errors name it, blank lines counted)
        return numbered[i][0] if i < len(numbered) else (numbered[-1][0] + 1 if numbered else 1)

    default = request.path_params.get("index")
    items: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[tuple[int, bytes, str | None, str]]] = {}
    i = 0
    while i < len(lines):
        n = len(items)
        try:
            action = orjson.loads(lines[i])
        except orjson.JSONDecodeError:
            raise ParseError(f"_bulk: line {at(i)} is not JSON") from None
        if not isinstance(action, dict) or len(action) != 1:
            raise ParseError(f"_bulk: line {at(i)}: expected one action (index or create)")
        (op, meta), = action.items()
        if not isinstance(meta, dict):
            raise ParseError(f"_bulk: line {at(i)}: the {str(op)[:40]!r} action takes an object of metadata "
                             "({\"_index\": ...}), got " + type(meta).__name__,
                             details={"line": at(i), "field": str(op)[:40]})
        if op in ("delete", "update"):
            items.append({op: {"_index": meta.get("_index", default), "_id": meta.get("_id"), "status": 400,
                               "error": {"type": "illegal_argument_exception",
                                         "reason": f"{op} is not supported: logs are append-only"}}})
            i += 1 if op == "delete" else 2
            continue
        if op not in ("index", "create") or i + 1 >= len(lines):
            raise ParseError(f"_bulk: line {at(i)}: unsupported action {op!r} or missing document")
        index = meta.get("_index", default)
        doc = lines[i + 1]
        i += 2
        items.append({op: {"_index": index, "_id": meta.get("_id"), "status": 0}})
        target = _index_target(index, doc)
        if isinstance(target, str):
            items[n][op].update(status=400, error={"type": "illegal_argument_exception", "reason": target})
            continue
        groups.setdefault(target, []).append((n, doc, meta.get("_id"), op))
    for (type_name, cluster), docs in groups.items():
        lt = REGISTRY[type_name]
        try:
            written = m.write_cluster(request, cluster, lt)  # the type's own RBAC name, as the Linseed paths check
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


def _index_target(index: Any, doc: bytes) -> tuple[str, str] | str:
    """(log type, cluster) a _bulk document goes to: Calico's multi-index names (daily, the write alias
    `<prefix>.<cluster>.`, ILM backing indices `<prefix>.<cluster>.fluentd-<day>-<n>`) name the cluster; a
    single-index `calico_*` name takes it from the document's `cluster` field."""
    if not isinstance(index, str) or not index:
        return "_bulk: every action needs an _index (or an index in the URL)"
    parsed = names.parse(index)
    if parsed is None:
        return (f"index [{index[:300]}] is not a margay log index: write to tigera_secure_ee_<type>.<cluster>[.<yyyymmdd>]"
                " or a calico_<type> single index")
    if len(parsed.types) != 1:
        return f"index [{index[:300]}] holds several log types: write audit logs to tigera_secure_ee_audit_<ee|kube>.<cluster>"
    cluster = parsed.cluster
    if cluster is None:
        try:
            cluster = orjson.loads(doc).get("cluster")
        except (orjson.JSONDecodeError, AttributeError):
            cluster = None
        if not isinstance(cluster, str) or not cluster:
            return f"index [{index[:300]}] is a single index for every cluster: the document needs a \"cluster\" field"
    try:
        valid_cluster(cluster)
    except MargayError as exc:
        return f"invalid index name [{index[:300]}]: {exc.message}"
    return parsed.types[0], cluster


@_handler
async def unsupported(request: Request) -> Response:
    raise QueryError(f"{request.method} {request.url.path} is not supported by margay's ES API "
                     "(supported: /, _cluster/health, _resolve/index, _field_caps, _cat/indices, _mapping, _search, _count, _msearch, "
                     "_bulk, _search/scroll, _search/point_in_time, _pit, HEAD /<index>)")


@_handler
async def head_root(request: Request) -> Response:
    return Response(status_code=200, headers=PRODUCT_HEADER)


@_handler
async def head_index(request: Request) -> Response:
    """`HEAD /<index>` (indices.exists): 200 when the pattern names partitions the caller may read, else 404."""
    m = request.app.state.margay
    index = request.path_params["index"]
    try:
        targets = await asyncio.to_thread(_targets, m, request, index)
    except (NotFound, Forbidden):
        return Response(status_code=404, headers=PRODUCT_HEADER)
    # As OpenSearch: wildcards that match nothing still "exist" (allow_no_indices); a concrete name must.
    concrete = not any("*" in e or "?" in e or e == "_all" for e in index.split(","))
    return Response(status_code=404 if concrete and not targets else 200, headers=PRODUCT_HEADER)


@_handler
async def resolve_index(request: Request) -> Response:
    """`GET /_resolve/index/<expression>`: the daily indices it names that the caller may read (Kibana and
    OpenSearch Dashboards ask this when an index pattern is typed)."""
    m = request.app.state.margay
    try:
        targets = await asyncio.to_thread(_targets, m, request, request.path_params["index"])
    except (NotFound, Forbidden):
        targets = []  # as OpenSearch: a missing (or, here, unreadable) name resolves to nothing, not 404
    parts = m.backend.partitions()
    found = sorted(p.index for t in targets for c, days in t.days.items() for p in parts
                   if p.log_type == t.lt.name and p.cluster == c and (days is None or p.day in days))
    return ESResponse({"indices": [{"name": n, "attributes": ["open"]} for n in found], "aliases": [],
                       "data_streams": []})


@_handler
async def field_caps_endpoint(request: Request) -> Response:
    """`GET|POST /<index>/_field_caps?fields=…`: each field's type, searchable and aggregatable over the
    daily indices the caller may read (Kibana and OpenSearch Dashboards build index patterns from it)."""
    m = request.app.state.margay
    body = await _json(request)
    if set(body) - {"fields"}:
        raise QueryError(f"_field_caps: [{sorted(set(body) - {'fields'})[0]}] is not supported "
                         "(index_filter and runtime_mappings are not)")
    raw = body.get("fields", request.query_params.get("fields", ""))
    if isinstance(raw, str):
        raw = [f.strip() for f in raw.split(",") if f.strip()]
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise QueryError("_field_caps: [fields] must be a comma-separated string or a list of field names")
    unmapped = request.query_params.get("include_unmapped", "false")
    if unmapped not in ("true", "false", ""):
        raise QueryError(f"URL parameter [include_unmapped]: expected true or false, got {unmapped[:40]!r}")
    pattern = request.path_params.get("index", "_all")
    targets = await asyncio.to_thread(_targets, m, request, pattern)
    parts = m.backend.partitions()
    indices = [(p.index, t.lt) for t in targets for c, days in t.days.items() for p in parts
               if p.log_type == t.lt.name and p.cluster == c and (days is None or p.day in days)]
    return ESResponse(field_caps(indices, raw, unmapped in ("true", "")))


@_handler
async def cluster_health(request: Request) -> Response:
    """`GET /_cluster/health[/<index>]` in OpenSearch's shape: one always-green node; a shard per readable
    daily partition (Grafana's "Save & test" and most clients' readiness probes ask this)."""
    m = request.app.state.margay
    index = request.path_params.get("index")
    if index is not None:
        try:
            targets = await asyncio.to_thread(_targets, m, request, index)
        except Forbidden:
            targets = []
        shards = sum(len(days) if days is not None else 1 for t in targets for days in t.days.values())
    else:
        shards = len(m.visible_partitions(request, await asyncio.to_thread(m.backend.partitions)))
    return ESResponse({"cluster_name": "margay", "status": "green", "timed_out": False, "number_of_nodes": 1,
                       "number_of_data_nodes": 1, "discovered_master": True,
                       "discovered_cluster_manager": True, "active_primary_shards": shards,
                       "active_shards": shards, "relocating_shards": 0, "initializing_shards": 0,
                       "unassigned_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                       "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                       "active_shards_percent_as_number": 100.0})


def routes() -> list[Route]:
    from . import es_scroll  # scroll and point in time (its endpoints build on this module's)

    return [
        *es_scroll.routes(),
        Route("/es", root, methods=["GET"]),
        Route("/es/", root, methods=["GET"]),
        Route("/es/", head_root, methods=["HEAD"]),
        Route("/es/_cluster/health", cluster_health, methods=["GET"]),
        Route("/es/_resolve/index/{index}", resolve_index, methods=["GET"]),
        Route("/es/_cluster/health/{index}", cluster_health, methods=["GET"]),
        Route("/es/_cat/indices", cat_indices, methods=["GET"]),
        Route("/es/_cat/indices/{index}", cat_indices, methods=["GET"]),
        Route("/es/_count", count, methods=["GET", "POST"]),
        Route("/es/_msearch", msearch, methods=["GET", "POST"]),
        Route("/es/_bulk", bulk, methods=["POST", "PUT"]),
        Route("/es/_field_caps", field_caps_endpoint, methods=["GET", "POST"]),
        Route("/es/{index}/_field_caps", field_caps_endpoint, methods=["GET", "POST"]),
        Route("/es/{index}/_mapping", get_mapping, methods=["GET"]),
        Route("/es/{index}/_count", count, methods=["GET", "POST"]),
        Route("/es/{index}/_msearch", msearch, methods=["GET", "POST"]),
        Route("/es/{index}/_bulk", bulk, methods=["POST", "PUT"]),
        Route("/es/{index}", head_index, methods=["HEAD"]),
        Route("/es/{path:path}", unsupported, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
    ]
