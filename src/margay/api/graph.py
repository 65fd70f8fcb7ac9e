"""The flow visualizer's graph (POST /api/v1/flows/graph): the engine folds flow logs into edges
(Backend.flow_graph), query/graph.py turns them into nodes and edges with selectors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.graph import DEFAULT_NODES, MAX_NODES, GraphSpec, assemble
from .common import JSONResponse, json_body
from .logs import _timed, build_query


def _strings(body: dict[str, Any], key: str) -> list[str]:
    v = body.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise QueryError(f"{key}: expected a list of strings")
    return v


async def flow_graph(request: Request) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    expand = _strings(body, "expand")
    cap = body.get("max_nodes", DEFAULT_NODES)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 2 <= cap <= MAX_NODES:
        raise QueryError(f"max_nodes: expected an integer from 2 to {MAX_NODES}")
    by_cluster = body.get("by_cluster", False)
    if not isinstance(by_cluster, bool):
        raise QueryError("by_cluster: expected true or false")
    query = build_query(request, body, REGISTRY["flows"], default_last=timedelta(hours=1))
    spec = GraphSpec(tuple(expand), cap, by_cluster)
    rows = await _timed(request, "graph", m.backend.flow_graph, query, spec)
    m.metrics.inc("margay_aggregations_total", path=rows.path)
    m.access_log(request, query.logtype, query, len(rows.edges))
    out = assemble(rows, spec, body.get("selector") or None)
    out |= {"clusters": query.clusters,
            "time_range": {"from": query.start.isoformat() if query.start else None,
                           "to": query.end.isoformat() if query.end else None}}
    return JSONResponse(out, headers={"x-margay-aggregation-path": rows.path})


def routes() -> list[Route]:
    return [Route("/api/v1/flows/graph", flow_graph, methods=["POST"])]
