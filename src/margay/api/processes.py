"""Linseed's process list (`POST /api/v1/processes`), written from Linseed's process backend
(`linseed/pkg/backend/legacy/processes/processes.go`): the flow logs a source reported, grouped by cluster,
source endpoint (`source_name_aggr`) and `process_name`, each group counting its distinct `process_id`s,
shaped as Linseed's ProcessInfo (`{"name", "endpoint", "instanceCount", "cluster"}`).

Request: Linseed's ProcessParams (QueryParams and `selector`); no time range means everything until now.
Linseed runs one terms aggregation of size 0 hits, so it never answers an `after_key` and `max_page_size`
does not limit the list; margay reads every group (Backend.groups, in the engine) page by page up to
MAX_PROCESSES. Records whose process name is `-` or `*`, or whose process id is `*` (Felix's "none" and
"more than one"), are left out as Linseed does. The process fields belong to the reporting endpoint, so a
namespace-scoped reader sees only the groups of flows whose both endpoints are in its namespaces.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..logtypes import REGISTRY
from ..query.linseed import combine, typed_filters
from ..query.selector import And, Compare, InSet, Node
from ..store.backend import GroupKey, GroupSpec
from .common import JSONResponse, json_body
from .logs import _timed, build_query

PAGE = 1000
MAX_PROCESSES = 100_000  # groups read at most (Linseed: 1,000 per cluster, endpoint and name level)

PROCESSES = GroupSpec(
    keys=(GroupKey("cluster", "cluster"), GroupKey("endpoint", "source_name_aggr"),
          GroupKey("name", "process_name")),
    distincts=(("instances", "process_id"),))

# reporter = src, process_name not "-" or "*", process_id not "*" (a backslash makes `*` literal).
_WITH_PROCESS: Node = And((Compare("reporter", "=", "src"),
                           InSet("process_name", ("-", "\\*"), negated=True),
                           InSet("process_id", ("\\*",), negated=True)))


def process_info(group: dict[str, Any]) -> dict[str, Any]:
    key = group["key"]
    return {"name": key["name"], "endpoint": key["endpoint"],
            "instanceCount": int(group["metrics"]["instances"] or 0), "cluster": key["cluster"]}


async def processes(request: Request) -> JSONResponse:
    """POST /api/v1/processes: Linseed's ProcessParams; read with the flows' RBAC."""
    m = request.app.state.margay
    body = await json_body(request)
    lt = REGISTRY["flows"]
    typed_filters(body, "processes")  # ProcessParams has none: a flows filter (ip_matches, ...) is a 400 naming it
    query = build_query(request, body, lt)
    if query.end is None:
        query.end = m.clock.now()  # Linseed: from the start of the timeline until now
    # A scoped reader gets only processes whose every endpoint is in its namespaces: the engine's groups()
    # narrows by the grouping's fields (Query.naming).
    query = replace(query, selector=combine(query.selector, _WITH_PROCESS), size=PAGE, after_key=None)
    items: list[dict[str, Any]] = []
    after: dict[str, Any] | None = None
    while len(items) < MAX_PROCESSES:
        groups = await _timed(request, "processes", m.backend.groups, query, PROCESSES, after)
        items += [process_info(g) for g in groups[:PAGE]]
        if len(groups) <= PAGE:
            break
        after = groups[PAGE - 1]["key"]
    m.access_log(request, lt, query, len(items))
    return JSONResponse({"items": items[:MAX_PROCESSES]})


def routes() -> list[Route]:
    return [Route("/api/v1/processes", processes, methods=["POST"])]


__all__ = ["routes"]
