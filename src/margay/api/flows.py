"""Aggregated L3 flows (Linseed's POST /flows): the engine groups (Backend.l3_flows), query/l3.py shapes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.selector import And, InSet
from .common import JSONResponse, json_body
from .logs import _timed, build_query


async def l3_flows(request: Request) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    lt = REGISTRY["flows"]
    query = build_query(request, body, lt, default_last=timedelta(minutes=5))
    for key in ("actions", "source_types", "destination_types"):
        if key in body and not (isinstance(body[key], list) and all(isinstance(v, str) for v in body[key])):
            raise QueryError(f"{key}: expected a list of strings")
    # As selector terms, so that every engine compiles them (SQL or query DSL).
    terms = [InSet(key, tuple(body[name])) for name, key in
             (("actions", "action"), ("source_types", "source_type"), ("destination_types", "dest_type"))
             if body.get(name)]
    if terms:
        query.selector = And((*([query.selector] if query.selector is not None else []), *terms))
    offset = 0
    if isinstance(query.after_key, dict) and isinstance(query.after_key.get("startFrom"), int):
        offset = query.after_key["startFrom"]
    items = await _timed(request, "flows", m.backend.l3_flows, query, offset)
    more = len(items) > query.size
    items = items[: query.size]
    m.access_log(request, lt, query, len(items))
    out: dict[str, Any] = {"items": items, "total_hits": None}
    if more:
        out["after_key"] = {"startFrom": offset + query.size}
    return JSONResponse(out)


def routes() -> list[Route]:
    return [Route("/api/v1/flows", l3_flows, methods=["POST"])]
