"""Aggregated L3 flows (Linseed's POST /flows): flow logs grouped by endpoint pair (engine-neutral parts).

An engine groups a query's flow logs by `KEY`, sums `SUMS`, keeps the page of groups with the most bytes
(bytes_in + bytes_out descending) and lists, per group, the distinct enforced and pending policies, domains
and up to ten source and destination IPs (`Backend.l3_flows`); `item` shapes a group as Linseed's L3Flow.
"""

from __future__ import annotations

from typing import Any

from ..logtypes.policy import parse_policy

KEY = ["cluster", "action", "reporter", "proto", "source_type", "source_namespace", "source_name_aggr",
       "dest_type", "dest_namespace", "dest_name_aggr", "dest_port", "dest_service_namespace",
       "dest_service_name", "dest_service_port", "dest_service_port_num", "process_name"]

SUMS = ["bytes_in", "bytes_out", "packets_in", "packets_out", "transit_bytes_in", "transit_bytes_out",
        "transit_packets_in", "transit_packets_out", "num_flows", "num_flows_started", "num_flows_completed",
        "http_requests_allowed_in", "http_requests_denied_in"]

LISTS = ["log_count", "enforced", "pending", "domains", "source_ips", "dest_ips"]


def _policies(raws: list[str]) -> list[dict[str, Any]]:
    out = []
    for raw in sorted(raws or []):
        hit = parse_policy(raw)
        if hit is not None:
            d = hit.as_dict()
            d["count"] = 1
            out.append(d)
    return out


def item(row: dict[str, Any]) -> dict[str, Any]:
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


