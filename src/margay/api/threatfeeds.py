"""Linseed's threat-feed endpoints: POST /threatfeeds/{ipset,domainnameset}/bulk (the generic bulk route,
unwrapping `data`), POST /threatfeeds/{ipset,domainnameset} (list: the newest document of each feed) and
DELETE /threatfeeds/{ipset,domainnameset}/bulk (tombstones). RBAC as every log type: the resource names
`threatfeeds_ipset` / `threatfeeds_domainnameset` (or `threatfeeds`) of lma.tigera.io."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route

from ..detect.push import DOMAINS, IPSET, newest, tombstones, wrap
from ..errors import ParseError
from ..ingest.parse import Converted
from ..logtypes import LogType
from ..names import valid_cluster
from .common import JSONResponse, header_cluster, json_body, read_body
from .logs import build_query

MAX_IDS = 10_000


async def list_feeds(request: Request, lt: LogType) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    wanted = body.pop("id", None)
    if wanted is not None and (not isinstance(wanted, str) or not wanted):
        raise ParseError("id: expected a threat feed's name (a non-empty string)")
    query = build_query(request, body, lt)
    docs = await asyncio.to_thread(newest, m.backend, lt, query.clusters, [wanted] if wanted else None)
    assert lt.envelope is not None
    items = [wrap(d, lt.envelope) for d in docs]
    m.access_log(request, lt, query, len(items))
    return JSONResponse({"items": items, "total_hits": len(items)})


def _ids(body: bytes) -> list[str]:
    """The ids of a bulk DELETE body: NDJSON (or a JSON array) of `{"id": ...}` objects."""
    text = body.strip()
    try:
        docs: Any = orjson.loads(text) if text.startswith(b"[") else [orjson.loads(x) for x in text.splitlines()
                                                                         if x.strip()]
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"expected one {{\"id\": ...}} object per line: {exc}") from None
    ids = []
    for n, doc in enumerate(docs if isinstance(docs, list) else [docs], 1):
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
            raise ParseError(f"line {n}: expected an object with a non-empty string id")
        ids.append(doc["id"])
    if not ids:
        raise ParseError("the body names no threat feed: send one {\"id\": ...} object per line")
    if len(ids) > MAX_IDS:
        raise ParseError(f"at most {MAX_IDS} ids per request")
    return ids


async def delete_bulk(request: Request, lt: LogType) -> JSONResponse:
    m = request.app.state.margay
    cluster = valid_cluster(m.write_cluster(request, valid_cluster(header_cluster(request), where="x-cluster-id")),
                            where="the token's cluster")
    ids = _ids(await read_body(request, m.settings.max_body_bytes))
    m.guard_disk()

    def respond(conv: Converted) -> dict[str, Any]:
        return {"total": conv.total, "succeeded": conv.succeeded, "failed": conv.failed_lines,
                "errors": [e.as_dict() for e in conv.errors]}

    response, _ = await asyncio.to_thread(m.backend.ingest, lt, cluster, tombstones(ids, m.clock.now()), key=None,
                                          now=m.clock.now(), respond=respond)
    response["deleted"] = [{"id": i, "status": 200} for i in ids] if not response["failed"] else []
    return JSONResponse(response, status_code=200 if response["succeeded"] else 400)


def routes() -> list[Route]:
    out = []
    for lt in (IPSET, DOMAINS):
        async def listing(request: Request, lt: LogType = lt) -> JSONResponse:
            return await list_feeds(request, lt)

        async def deleting(request: Request, lt: LogType = lt) -> JSONResponse:
            return await delete_bulk(request, lt)

        out.append(Route("/api/v1" + lt.query_path, listing, methods=["POST"]))
        out.append(Route("/api/v1" + lt.bulk_path, deleting, methods=["DELETE"]))
    return out
