"""Default table columns per log type (the CLI's tables and the UI's explorer start from these)."""

from __future__ import annotations

DEFAULT_COLUMNS: dict[str, list[str]] = {
    # `policy` is the UI's enforced-policy column (the verdict of policies.enforced_policies), not a stored key.
    "flows": ["end_time", "cluster", "action", "policy", "reporter", "source_namespace", "source_name_aggr",
              "dest_namespace", "dest_name_aggr", "dest_port", "proto", "bytes_in", "bytes_out"],
    "dns": ["end_time", "cluster", "client_namespace", "client_name_aggr", "qname", "qtype", "rcode", "count"],
    "audit": ["requestReceivedTimestamp", "cluster", "verb", "user.username", "objectRef.resource",
              "objectRef.namespace", "name", "responseStatus.code"],
    "bgp": ["logtime", "cluster", "host", "ip_version", "message"],
    "events": ["time", "cluster", "type", "severity", "origin", "source_namespace", "dest_ip", "description"],
    "l7": ["end_time", "cluster", "src_namespace", "dest_service_name", "method", "url", "response_code", "count"],
    "waf": ["@timestamp", "cluster", "source.ip", "destination.namespace", "destination.name", "method", "path",
            "msg"],
    "policy_activity": ["last_evaluated", "cluster", "policy.kind", "policy.namespace", "policy.name", "rule"],
    "runtime": ["start_time", "cluster", "type", "pod.namespace", "pod.name", "file.path", "process_start.invocation",
                "count"],
}
DEFAULT_COLUMNS["audit_ee"] = DEFAULT_COLUMNS["audit_kube"] = DEFAULT_COLUMNS["audit"]


def default_columns(log_type: str) -> list[str]:
    return DEFAULT_COLUMNS.get(log_type, ["cluster"])
