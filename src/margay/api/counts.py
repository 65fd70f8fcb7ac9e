"""Linseed's flow log count (`POST /api/v1/flows/logs/count`, FlowLogCountParams → CountResponse).

`count_type` is `global` (the matching flow logs), `namespaced` (per namespace: the flow logs with it as
source or destination namespace, a log whose two namespaces are equal counted once, empty namespaces not
counted) or `global_and_namespaced`. Answered by the engine's count and aggregations (Backend.count,
Backend.aggregate), so both engines answer alike; the counts are exact, never truncated.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.model import Query
from .common import JSONResponse, json_body
from .logs import _timed, build_query

COUNT_TYPES = ("global", "namespaced", "global_and_namespaced")
MAX_NAMESPACES = 65_535


def _buckets(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(result.get(name, {}).get("buckets", []))


def namespaced_counts(m: Any, query: Query) -> dict[str, int]:
    """count(source = N) + count(dest = N) - count(source = dest = N), for every namespace N."""
    terms = {"size": MAX_NAMESPACES}
    aggs = {"src": {"terms": {"field": "source_namespace", **terms},
                    "aggs": {"dst": {"terms": {"field": "dest_namespace", **terms}}}},
            "dst": {"terms": {"field": "dest_namespace", **terms}}}
    result = m.backend.aggregate(query, aggs).result
    counts: Counter[str] = Counter()
    for b in _buckets(result, "src"):
        counts[str(b["key"])] += int(b["doc_count"])
        same = [d for d in _buckets(b, "dst") if d["key"] == b["key"]]
        counts[str(b["key"])] -= sum(int(d["doc_count"]) for d in same)
    for b in _buckets(result, "dst"):
        counts[str(b["key"])] += int(b["doc_count"])
    return {ns: n for ns, n in sorted(counts.items()) if ns != "" and n > 0}


async def flow_log_count(request: Request) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    kind = body.get("count_type")
    if kind not in COUNT_TYPES:
        raise QueryError(f"count_type: required, one of {', '.join(COUNT_TYPES)}; got {kind!r}")
    query = build_query(request, body, REGISTRY["flows"])
    out: dict[str, Any] = {}
    if kind in ("global", "global_and_namespaced"):
        out["global_count"] = await _timed(request, "count", m.backend.count, query)
    out["namespaced_counts"] = None
    if kind in ("namespaced", "global_and_namespaced"):
        out["namespaced_counts"] = await _timed(request, "count", namespaced_counts, m, query)
    m.access_log(request, REGISTRY["flows"], query, None)
    return JSONResponse(out)


def routes() -> list[Route]:
    return [Route("/api/v1/flows/logs/count", flow_log_count, methods=["POST"])]
