"""Linseed's aggregated DNS and L7 flows (`POST /api/v1/dns/flows`, `POST /api/v1/l7/flows`), written from
Linseed's flow backends (`linseed/pkg/backend/legacy/{dns,l7}/flows.go`): a composite grouping of the logs
(Backend.groups) with the same keys, metrics, page size (`max_page_size`, 0: 1,000), `after_key` paging and
default time ranges, shaped as Linseed's `DNSFlow` and `L7Flow`. A namespace-scoped reader sees only the
groups whose every named endpoint is in its namespaces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..store.backend import GroupKey, GroupSpec
from .common import JSONResponse, json_body
from .logs import _timed, build_query

# DNS flows: per cluster, client namespace, client aggregated name and response code.
DNS = GroupSpec(
    keys=(GroupKey("cluster", "cluster"), GroupKey("client_namespace", "client_namespace"),
          GroupKey("client_name_aggr", "client_name_aggr"), GroupKey("rcode", "rcode")),
    sums=(("sum_count", "count"), ("sum_latency_count", "latency_count")),
    mins=(("min_latency", "latency_mean"),), maxs=(("max_latency", "latency_max"),),
    means=(("mean_latency", "latency_mean", "latency_count"),))

# L7 flows: Linseed's composite sources in its order (service namespace descending; port name and
# destination port may be missing).
L7 = GroupSpec(
    keys=(GroupKey("cluster", "cluster"), GroupKey("dest_type", "dest_type"),
          GroupKey("dest_namespace", "dest_namespace"), GroupKey("dest_name_aggr", "dest_name_aggr"),
          GroupKey("dest_service_namespace", "dest_service_namespace", descending=True),
          GroupKey("dest_service_name", "dest_service_name"),
          GroupKey("dest_service_port_name", "dest_service_port_name", missing=True),
          GroupKey("dest_service_port_num", "dest_service_port"),
          GroupKey("dest_port_num", "dest_port_num", missing=True),
          GroupKey("source_type", "src_type"), GroupKey("source_namespace", "src_namespace"),
          GroupKey("source_name_aggr", "src_name_aggr"), GroupKey("response_code", "response_code")),
    sums=(("sum_bytes_in", "bytes_in"), ("sum_bytes_out", "bytes_out"), ("count", "count")),
    mins=(("duration_min_mean", "duration_mean"),), maxs=(("duration_max", "duration_max"),),
    means=(("duration_mean", "duration_mean", None),))


def _int(v: Any) -> int:
    """Linseed's int conversion of a key or metric (absent: 0; text that is no number: 0)."""
    if v is None:
        return 0
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return 0


def _str(v: Any) -> str:
    return "" if v is None else str(v)


def dns_flow(g: dict[str, Any]) -> dict[str, Any]:
    k, m = g["key"], g["metrics"]
    return {"key": {"source": {"type": "wep", "name": "", "aggregated_name": _str(k["client_name_aggr"]),
                               "namespace": _str(k["client_namespace"]), "port": 0},
                    "response_code": _str(k["rcode"]), "cluster": _str(k["cluster"])},
            "latency_stats": {"mean_request_latency": m["mean_latency"] or 0.0,
                              "max_request_latency": m["max_latency"] or 0.0,
                              "min_request_latency": m["min_latency"] or 0.0,
                              "latency_count": _int(m["sum_latency_count"])},
            "count": _int(m["sum_count"])}


def l7_flow(g: dict[str, Any]) -> dict[str, Any] | None:
    k, m = g["key"], g["metrics"]
    stats = {"bytes_in": _int(m["sum_bytes_in"]), "bytes_out": _int(m["sum_bytes_out"]),
             "mean_duration": _int(m["duration_mean"]), "min_duration": _int(m["duration_min_mean"]),
             "max_duration": _int(m["duration_max"])}
    if not any(stats.values()):
        return None  # Linseed skips a flow with no statistics
    return {"key": {"cluster": _str(k["cluster"]),
                    "source": {"type": _str(k["source_type"]), "name": "",
                               "aggregated_name": _str(k["source_name_aggr"]),
                               "namespace": _str(k["source_namespace"]), "port": 0},
                    "destination": {"type": _str(k["dest_type"]), "name": "",
                                    "aggregated_name": _str(k["dest_name_aggr"]),
                                    "namespace": _str(k["dest_namespace"]), "port": _int(k["dest_port_num"])},
                    # Kubernetes' NamespacedName has no JSON tags: Linseed writes Namespace and Name.
                    "destination_service": {"service": {"Namespace": _str(k["dest_service_namespace"]),
                                                        "Name": _str(k["dest_service_name"])},
                                            "port": _int(k["dest_service_port_num"]),
                                            "port_name": _str(k["dest_service_port_name"])},
                    "protocol": "tcp"},
            "code": _int(k["response_code"]), "log_count": _int(m["count"]), "stats": stats}


async def _flows(request: Request, name: str, spec: GroupSpec, default_last: timedelta | None,
                 shape: Any) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    lt = REGISTRY[name]
    query = build_query(request, body, lt, default_last=default_last)
    if query.end is None:
        query.end = m.clock.now()  # Linseed: until now when no range is given
    after = query.after_key
    if after is not None and not (set(after) == {k.name for k in spec.keys}):
        raise QueryError("after_key: expected the after_key of a previous page of these flows")
    groups = await _timed(request, f"{name}_flows", m.backend.groups, query, spec, after)
    more = len(groups) > query.size
    groups = groups[: query.size]
    items = [f for f in (shape(g) for g in groups) if f is not None]
    m.access_log(request, lt, query, len(items))
    out: dict[str, Any] = {"total_hits": 0, "items": items}
    if more and groups:
        out["after_key"] = groups[-1]["key"]
    return JSONResponse(out)


async def dns_flows(request: Request) -> JSONResponse:
    """POST /api/v1/dns/flows: Linseed's DNSFlowParams (QueryParams); the last 5 minutes by default."""
    return await _flows(request, "dns", DNS, timedelta(minutes=5), dns_flow)


async def l7_flows(request: Request) -> JSONResponse:
    """POST /api/v1/l7/flows: Linseed's L7FlowParams (QueryParams); everything until now by default."""
    return await _flows(request, "l7", L7, None, l7_flow)


def routes() -> list[Route]:
    return [Route("/api/v1/dns/flows", dns_flows, methods=["POST"]),
            Route("/api/v1/l7/flows", l7_flows, methods=["POST"])]


__all__ = ["routes"]
