"""Aggregated L3 flows (Linseed's POST /flows): flow logs grouped by endpoint pair, in the engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..logtypes.policy import parse_policy
from ..query.selector import And, InSet
from .common import JSONResponse, json_body
from .logs import _timed, build_query

KEY = ["cluster", "action", "reporter", "proto", "source_type", "source_namespace", "source_name_aggr",
       "dest_type", "dest_namespace", "dest_name_aggr", "dest_port", "dest_service_namespace",
       "dest_service_name", "dest_service_port", "dest_service_port_num", "process_name"]

SUMS = ["bytes_in", "bytes_out", "packets_in", "packets_out", "transit_bytes_in", "transit_bytes_out",
        "transit_packets_in", "transit_packets_out", "num_flows", "num_flows_started", "num_flows_completed",
        "http_requests_allowed_in", "http_requests_denied_in"]


def l3_sql(src: str) -> str:
    """Two phases: sum counters per group and keep the page of groups with the most bytes, then build the
    (costlier) distinct-value lists only for those groups. Each phase scans the source for just the columns
    it needs (the source's parameters come twice); no phase materializes whole rows."""
    keys = ", ".join(f'"{k}"' for k in KEY)
    sums = ", ".join(f'coalesce(sum("{c}"), 0) AS "{c}"' for c in SUMS)
    group = "hash(" + keys + ")"
    order = '"bytes_in" + "bytes_out" DESC, _g'
    return (f"WITH g AS NOT MATERIALIZED (SELECT * FROM (SELECT {group} AS _g, {keys}, {sums}, count(*) AS log_count "  # noqa: S608
            f"{src} GROUP BY ALL) ORDER BY {order} LIMIT ? OFFSET ?), "
            f"l AS (SELECT {group} AS _g, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"policies\".\"enforced_policies\", [])))) AS enforced, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"policies\".\"pending_policies\", [])))) AS pending, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"dest_domains\", [])))) AS domains, "
            "(list(DISTINCT \"source_ip\") FILTER (WHERE \"source_ip\" IS NOT NULL))[1:10] AS source_ips, "
            "(list(DISTINCT \"dest_ip\") FILTER (WHERE \"dest_ip\" IS NOT NULL))[1:10] AS dest_ips "
            f"{src} AND {group} IN (SELECT _g FROM g) GROUP BY ALL) "
            f"SELECT g.* EXCLUDE (_g), l.* EXCLUDE (_g) FROM g LEFT JOIN l USING (_g) ORDER BY {order}")


def _policies(raws: list[str]) -> list[dict[str, Any]]:
    out = []
    for raw in sorted(raws or []):
        hit = parse_policy(raw)
        if hit is not None:
            d = hit.as_dict()
            d["count"] = 1
            out.append(d)
    return out


def _item(row: dict[str, Any]) -> dict[str, Any]:
    def endpoint(side: str, port: Any) -> dict[str, Any]:
        return {"type": row[f"{side}_type"], "namespace": row[f"{side}_namespace"],
                "aggregated_name": row[f"{side}_name_aggr"], "name": "", "port": port}

    return {
        "key": {"cluster": row["cluster"], "action": row["action"], "reporter": row["reporter"],
                "protocol": row["proto"], "source": endpoint("source", None),
                "destination": endpoint("dest", row["dest_port"])},
        "process": {"name": row["process_name"]} if row["process_name"] not in (None, "-") else None,
        "dest_service": {"namespace": row["dest_service_namespace"], "name": row["dest_service_name"],
                         "port_name": row["dest_service_port"], "port": row["dest_service_port_num"]},
        "enforced_policies": _policies(row["enforced"]),
        "pending_policies": _policies(row["pending"]),
        "dest_domains": row["domains"],
        "source_ips": row["source_ips"],
        "destination_ips": row["dest_ips"],
        "connection_stats": {k: row[k] for k in ("bytes_in", "bytes_out", "packets_in", "packets_out",
                                                "transit_bytes_in", "transit_bytes_out",
                                                "transit_packets_in", "transit_packets_out")},
        "http_stats": {"allowed_in": row["http_requests_allowed_in"], "denied_in": row["http_requests_denied_in"]},
        "log_stats": {"count": row["num_flows"], "flowLogCount": row["log_count"],
                      "completed": row["num_flows_completed"], "started": row["num_flows_started"]},
    }


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

    cols = KEY + SUMS + ["log_count", "enforced", "pending", "domains", "source_ips", "dest_ips"]

    def grouped(run: Any, src: str, params: list[Any]) -> list[dict[str, Any]]:
        rows = run(l3_sql(src), params + [query.size + 1, offset] + params)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def run() -> list[dict[str, Any]]:
        native = getattr(m.backend, "l3_flows", None)  # engines without SQL (OpenSearch) group natively
        if native is not None:
            return list(native(query, offset, KEY, SUMS))
        return list(m.backend.run_over(query, grouped))

    rows = await _timed(request, "flows", run)
    more = len(rows) > query.size
    items = m.redact(request, lt, [_item(r) for r in rows[: query.size]], l3=True)
    m.access_log(request, lt, query, len(items))
    out: dict[str, Any] = {"items": items, "total_hits": None}
    if more:
        out["after_key"] = {"startFrom": offset + query.size}
    return JSONResponse(out)


def routes() -> list[Route]:
    return [Route("/api/v1/flows", l3_flows, methods=["POST"])]
