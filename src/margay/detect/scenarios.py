"""Traffic that triggers each built-in alert template (and the threat feeds): shared by the tests and the demo.
Each scenario returns {log type: records} around epoch second `t`, in cluster-agnostic native form."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Records = dict[str, list[dict[str, Any]]]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _flow(t: int, src_ns: str, dst_ns: str, *, action: str = "allow", reporter: str = "dst", src_ip: str = "10.0.0.1",
          dst_ip: str = "10.0.1.1", port: int = 443, dest_type: str = "wep", dest_name: str = "svc-*",
          dest_labels: list[str] | None = None) -> dict[str, Any]:
    return {"start_time": t, "end_time": t + 30, "action": action, "reporter": reporter, "proto": "tcp",
            "source_ip": src_ip, "source_port": 40000, "source_namespace": src_ns, "source_name_aggr": f"{src_ns}-app-*",
            "source_type": "wep", "dest_ip": dst_ip, "dest_port": port, "dest_namespace": dst_ns,
            "dest_name_aggr": dest_name, "dest_type": dest_type, "bytes_in": 100, "bytes_out": 200, "packets_in": 1,
            "packets_out": 1, "num_flows": 1, "host": "node-1",
            **({"dest_labels": {"labels": dest_labels}} if dest_labels else {})}


def _audit(t: float, user: str, verb: str, resource: str, name: str, namespace: str | None = None,
           subresource: str | None = None, group: str = "") -> dict[str, Any]:
    ref = {"resource": resource, "name": name, "apiVersion": "v1", **({"namespace": namespace} if namespace else {}),
           **({"subresource": subresource} if subresource else {}), **({"apiGroup": group} if group else {})}
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": f"{user}-{verb}-{resource}-{name}-{int(t)}", "stage": "ResponseComplete",
            "requestURI": f"/api/v1/{resource}/{name}", "verb": verb, "user": {"username": user, "groups": []},
            "sourceIPs": ["10.0.9.9"], "objectRef": ref, "responseStatus": {"code": 200},
            "requestReceivedTimestamp": _iso(t), "stageTimestamp": _iso(t)}


def port_scan(t: int) -> Records:
    return {"flows": [_flow(t - 60 - i, "dev", "shop", action="deny", src_ip="10.66.6.6", port=1000 + i)
                      for i in range(25)]}


def threat_set_traffic(t: int) -> Records:
    return {"flows": [_flow(t - 90, "shop", "-", dst_ip="198.51.100.7", dest_type="net", dest_name="threatfeed.tor",
                            dest_labels=["threat=tor"])]}


def dns_failure_flood(t: int) -> Records:
    return {"dns": [{"start_time": t - 120 + i, "end_time": t - 60 + i, "count": 1, "client_ip": "10.0.3.3",
                     "client_name": "-", "client_name_aggr": "miner-*", "client_namespace": "dev",
                     "qname": f"x{i}.dga.example", "qtype": "A", "qclass": "IN", "rcode": "NXDomain", "rrsets": [],
                     "servers": [], "host": "node-1"} for i in range(60)]}


def lateral_movement(t: int) -> Records:
    return {"flows": [_flow(t - 30, "dev", "payments")]}


def pod_exec(t: int) -> Records:
    return {"audit_kube": [_audit(t - 45, "mallory@example.com", "create", "pods", "api-0", "payments", "exec")]}


def secret_read(t: int) -> Records:
    return {"audit_kube": [_audit(t - 40, "mallory@example.com", "get", "secrets", "db-password", "payments"),
                           _audit(t - 40, "system:serviceaccount:kube-system:ctl", "get", "secrets", "x", "payments")]}


def policy_change(t: int) -> Records:
    return {"audit_ee": [_audit(t - 20, "alice@example.com", "patch", "globalnetworkpolicies", "security.allow-all",
                                group="projectcalico.org")]}


def denied_flow_spike(t: int) -> Records:
    return {"flows": [_flow(t - 100 + i % 50, "batch", "db", action="deny", reporter="src", src_ip=f"10.0.5.{i % 200}")
                      for i in range(120)]}


SCENARIOS: dict[str, Callable[[int], Records]] = {
    "margay.port-scan": port_scan, "margay.threat-set-traffic": threat_set_traffic,
    "margay.dns-failure-flood": dns_failure_flood, "margay.lateral-movement": lateral_movement,
    "margay.pod-exec": pod_exec, "margay.secret-read": secret_read, "margay.policy-change": policy_change,
    "margay.denied-flow-spike": denied_flow_spike,
}


BAD_IPS = "203.0.113.0/24\n198.51.100.66\n"  # documentation ranges: never real traffic
BAD_DOMAINS = "*.bad.example\nc2.evil.example\n"


def threat_feed_hits(t: int) -> Records:
    """Traffic touching BAD_IPS and BAD_DOMAINS, for the threat feeds."""
    return {"flows": [_flow(t - 50, "shop", "-", dst_ip="203.0.113.9", dest_type="net", dest_name="pub"),
                      _flow(t - 40, "dev", "-", dst_ip="198.51.100.66", dest_type="net", dest_name="pub",
                            reporter="src", action="deny")],
            "dns": [{"start_time": t - 30, "end_time": t, "count": 1, "client_ip": "10.0.4.4", "client_name": "-",
                     "client_name_aggr": "shop-app-*", "client_namespace": "shop", "qname": "beacon.bad.example",
                     "qtype": "A", "qclass": "IN", "rcode": "NoError",
                     "rrsets": [{"name": "beacon.bad.example", "type": "A", "class": "IN", "rdata": ["203.0.113.10"]}],
                     "servers": [], "host": "node-1"}]}
