"""The low-volume side of the simulation: audit events, BIRD log lines and intrusion-detection events."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .topology import THREAT_FEED, Endpoint, Topology, rng_for

Record = dict[str, Any]
_HOUR = 3600
_AUTH = ["system:authenticated"]
# (username, groups, user agent, source IP)
_CALICO_USERS = [
    ("alice@example.com", [*_AUTH, "netsec"], "calicoctl/v3.21.0 (linux/amd64)", "10.0.0.5"),
    ("carol@example.com", [*_AUTH, "netsec"], "Mozilla/5.0 (X11; Linux x86_64) tigera-manager", "10.0.0.8"),
    ("system:serviceaccount:ci:deployer", ["system:serviceaccounts", "system:serviceaccounts:ci", *_AUTH],
     "argocd-application-controller/v2.11.3", "10.0.3.4"),
    ("bob@example.com", [*_AUTH, "dev"], "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505", "10.0.9.9"),
]
_RESOURCES = {"GlobalNetworkPolicy": "globalnetworkpolicies", "NetworkPolicy": "networkpolicies",
              "StagedNetworkPolicy": "stagednetworkpolicies", "StagedGlobalNetworkPolicy": "stagedglobalnetworkpolicies",
              "StagedKubernetesNetworkPolicy": "stagedkubernetesnetworkpolicies"}
_BIRD_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)? bird6?: (.*)$")
_NOISE = "device1: Scanning interfaces"


def _hours(topo: Topology, cluster: str, kind: str, start: datetime, end: datetime) -> Iterator[tuple[random.Random, int]]:
    """An RNG per whole hour overlapping [start, end): any split of a window yields the same records."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    b, e = int(start.timestamp()) // _HOUR * _HOUR, end.timestamp()
    while b < e:
        yield rng_for(topo.seed, kind, cluster, b), b
        b += _HOUR


def _ts(t: float, fmt: str = "%Y-%m-%dT%H:%M:%S.%fZ") -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def _event(rng: random.Random, t: float, user: tuple[str, list[str], str, str], verb: str, uri: str,
           object_ref: dict[str, str], code: int, request: Any, response: Any, level: str = "RequestResponse") -> Record:
    username, groups, agent, ip = user
    status: dict[str, Any] = {"metadata": {}, "code": code}
    annotations = {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid",
                   "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding" if code < 400 else ""}
    if code >= 400:
        status.update(status="Failure", reason="Forbidden",
                      message=f'{object_ref["resource"]} is forbidden: User "{username}" cannot {verb} resource')
        request = response = None
    ev: Record = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
                  "auditID": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "stage": "ResponseComplete",
                  "requestURI": uri, "verb": verb, "user": {"username": username, "groups": groups},
                  "sourceIPs": [ip], "userAgent": agent, "objectRef": object_ref, "responseStatus": status}
    if request is not None and level == "RequestResponse":
        ev["requestObject"] = request
    if response is not None and level == "RequestResponse":
        ev["responseObject"] = response
    ev["requestReceivedTimestamp"] = _ts(t)
    ev["stageTimestamp"] = _ts(t + 0.004 + rng.random() * 0.08)
    ev["annotations"] = annotations
    return ev


def _in(t: float, start: datetime, end: datetime) -> bool:
    return start.timestamp() <= t < end.timestamp()


def audit_ee(topo: Topology, cluster: str, start: datetime, end: datetime) -> Iterator[Record]:
    """Calico API server audit events: Calico policies, tiers and sets created, patched and deleted."""
    ct = topo.cluster(cluster)
    objects = [(_RESOURCES[p.kind], p.namespace, p.name, p.kind, p.tier) for p in ct.policies.values()
               if p.kind in _RESOURCES]
    objects += [("tiers", "", t, "Tier", t) for t in ("security", "platform")]
    objects += [("globalnetworksets" if s.namespace == "-" else "networksets", s.namespace.strip("-"), s.name,
                 s.kind, "") for s in ct.network_sets]
    for rng, hour in _hours(topo, cluster, "audit_ee", start, end):
        for t in sorted(hour + rng.random() * _HOUR for _ in range(rng.randint(1, 4))):
            resource, ns, name, kind, tier = rng.choice(objects)
            verb = rng.choice(("patch", "patch", "patch", "create", "delete", "update"))
            user = rng.choice(_CALICO_USERS)
            code = 403 if user[0].startswith("bob") else (201 if verb == "create" else 200)
            base = f"/apis/projectcalico.org/v3{'/namespaces/' + ns if ns else ''}/{resource}"
            ref = {"resource": resource, **({"namespace": ns} if ns else {}), "name": name,
                   "apiGroup": "projectcalico.org", "apiVersion": "v3"}
            meta = {"name": name, **({"namespace": ns} if ns else {}), "resourceVersion": str(rng.randrange(10**6)),
                    "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
            order = rng.choice((100, 200, 500, 1000))
            obj: Record = {"kind": kind, "apiVersion": "projectcalico.org/v3", "metadata": meta,
                           "spec": {"tier": tier, "order": order} if tier else {}}
            if verb == "create":
                uri, ref = base, {k: v for k, v in ref.items() if k != "name"}
                request: Any = obj
            elif verb == "delete":
                uri, request = f"{base}/{name}", None
                obj = {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": resource}}
            else:
                uri, request = f"{base}/{name}", {"spec": {"order": order}} if tier else obj
            ev = _event(rng, t, user, verb, uri, ref, code, request, obj)  # draws either way: split-invariant
            if _in(t, start, end):
                yield ev


def audit_kube(topo: Topology, cluster: str, start: datetime, end: datetime) -> Iterator[Record]:
    """kube-apiserver audit events: pods replaced by controllers, namespaces labelled, network policies edited."""
    ct = topo.cluster(cluster)
    workloads = [w for w in ct.workloads if w.kind in ("Deployment", "StatefulSet")]
    knps = [p for p in ct.policies.values() if p.kind == "KubernetesNetworkPolicy"]
    for rng, hour in _hours(topo, cluster, "audit_kube", start, end):
        for t in sorted(hour + rng.random() * _HOUR for _ in range(rng.randint(3, 8))):
            what = rng.random()
            if what < 0.6 and workloads:
                events = _pod_churn(rng, t, rng.choice(workloads))
            elif what < 0.8 and knps:
                p, user = rng.choice(knps), rng.choice(_CALICO_USERS)
                verb = rng.choice(("patch", "update"))
                ref = {"resource": "networkpolicies", "namespace": p.namespace, "name": p.name,
                       "apiGroup": "networking.k8s.io", "apiVersion": "v1"}
                obj = {"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
                       "metadata": {"name": p.name, "namespace": p.namespace}, "spec": {"policyTypes": ["Ingress"]}}
                uri = f"/apis/networking.k8s.io/v1/namespaces/{p.namespace}/networkpolicies/{p.name}"
                events = [_event(rng, t, user, verb, uri, ref, 403 if user[0].startswith("bob") else 200, obj, obj)]
            else:
                ns, user = rng.choice(ct.namespaces), rng.choice(_CALICO_USERS[:3])
                patch = {"metadata": {"labels": {"team": rng.choice(("web", "platform", "data"))}}}
                ref = {"resource": "namespaces", "name": ns, "apiVersion": "v1"}
                events = [_event(rng, t, user, "patch", f"/api/v1/namespaces/{ns}", ref, 200, patch,
                                 {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}}, level="Metadata")]
            if _in(t, start, end):
                yield from events


def _pod_churn(rng: random.Random, t: float, wl: Endpoint) -> list[Record]:
    """A controller deleting one pod and creating its replacement."""
    ctrl = "replicaset-controller" if wl.kind == "Deployment" else "statefulset-controller"
    user = (f"system:serviceaccount:kube-system:{ctrl}",
            ["system:serviceaccounts", "system:serviceaccounts:kube-system", *_AUTH],
            "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/39683505/system:serviceaccount:kube-system:" + ctrl,
            "172.18.0.2")
    old = rng.choice(wl.members).name
    new = old if wl.kind == "StatefulSet" else wl.generate_name + "".join(rng.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
    ns, labels = wl.namespace, dict(wl.labels)
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": new, "generateName": wl.generate_name,
                                                          "namespace": ns, "labels": labels}}
    gone = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": old, "namespace": ns, "labels": labels,
                                                           "deletionTimestamp": _ts(t + 30, "%Y-%m-%dT%H:%M:%SZ")}}
    return [_event(rng, t, user, "delete", f"/api/v1/namespaces/{ns}/pods/{old}",
                   {"resource": "pods", "namespace": ns, "name": old, "apiVersion": "v1"}, 200, None, gone),
            _event(rng, t + 0.5, user, "create", f"/api/v1/namespaces/{ns}/pods",
                   {"resource": "pods", "namespace": ns, "apiVersion": "v1"}, 201, pod, pod)]


def bgp_lines(topo: Topology, cluster: str, start: datetime, end: datetime, *, node: str,
              ip_version: str = "IPv4") -> Iterator[str]:
    """Native BIRD (IPv4) or BIRD6 (IPv6) log lines of one node, interface-scan noise included."""
    peers = [n for n in topo.nodes(cluster) if n.name != node]
    for rng, hour in _hours(topo, cluster, f"bgp/{node}/{ip_version}", start, end):
        lines: list[tuple[float, str]] = [(hour + rng.random() * 60 + k * 60, _NOISE) for k in range(60)]
        if peers and rng.random() < 0.25:
            peer = rng.choice(peers)
            proto = "Mesh_" + re.sub(r"[.:]", "_", peer.ip if ip_version == "IPv4" else peer.ip6)
            t = hour + rng.random() * (_HOUR - 120)
            why = rng.choice(("Error: Hold timer expired", "Received: Hold timer expired",
                              "Received: Administrative shutdown", "Error: Connection refused"))
            steps = [why, "State changed to stop", "State changed to down", "Starting", "State changed to start"]
            lines += [(t + i * 0.0002, f"{proto}: {msg}") for i, msg in enumerate(steps)]
            t += 2 + rng.random() * 60
            lines += [(t, f"{proto}: State changed to feed"), (t + 0.002, f"{proto}: State changed to up")]
        if rng.random() < 0.1:
            t = hour + rng.random() * (_HOUR - 1)
            lines += [(t, "Reconfiguration requested by SIGHUP"), (t + 0.0004, "Reconfiguring"),
                      (t + 0.0011, "Reconfigured")]
        for t, msg in sorted(lines):
            if _in(t, start, end):
                yield f"{_ts(t, '%Y-%m-%dT%H:%M:%S')}.{int(t % 1 * 100000):05d} bird: {msg}"


def parse_bird_line(line: str, host: str, ip_version: str) -> Record | None:
    """A BIRD line as the collector posts it, or None for interface-scan noise and unparseable lines."""
    m = _BIRD_LINE.match(line.rstrip("\n"))
    if m is None or _NOISE in m.group(2):
        return None
    return {"logtime": m.group(1) + "Z", "message": m.group(2), "host": host, "ip_version": ip_version}


def bgp(topo: Topology, cluster: str, start: datetime, end: datetime) -> Iterator[Record]:
    """Every node's BIRD and BIRD6 lines, parsed and with noise dropped (what the collector posts)."""
    for node in topo.nodes(cluster):
        for version in ("IPv4", "IPv6"):
            for line in bgp_lines(topo, cluster, start, end, node=node.name, ip_version=version):
                if (rec := parse_bird_line(line, node.name, version)) is not None:
                    yield rec


_ALERTS = [  # (GlobalAlert name, severity, description template, mitre tactic, mitre ids)
    ("denied-flows", 60, "too many denied flows from {ns}: {n}.0", "Discovery", ["T1046"]),
    ("dns-nxdomain-spike", 30, "NXDOMAIN responses for {ns}: {n}.0", "Command and Control", ["T1071.004"]),
    ("egress-volume", 80, "unusual egress volume from {ns}: {n}.0", "Exfiltration", ["T1048"]),
]


def events(topo: Topology, cluster: str, start: datetime, end: datetime) -> Iterator[Record]:
    """IDS events: threat-feed hits on the topology's suspicious peer, and GlobalAlert results."""
    ct = topo.cluster(cluster)
    hits = [e for e in ct.edges if set(e.dst.domains) & set(THREAT_FEED["domains"])]
    feed = str(THREAT_FEED["name"])
    for rng, hour in _hours(topo, cluster, "events", start, end):
        out: list[tuple[float, Record]] = []
        for edge in hits:
            for _ in range(rng.randint(1, 3)):  # the suspicious peer is reached every hour
                t = hour + rng.random() * _HOUR
                pod, port = rng.choice(edge.src.members), 32768 + rng.randrange(28000)
                dst_ip, flow_start = edge.dst.members[0].ip, int(t) // 300 * 300 - 300
                out.append((t, {
                    "id": f"{feed}_{flow_start}_tcp_{pod.ip}_{port}_{dst_ip}_{edge.port}", "time": int(t),
                    "type": "gtf_suspicious_flow", "description": f"suspicious IP {dst_ip} from feeds {feed}",
                    "severity": 100, "origin": "Suspicious Flow", "name": "Suspicious Flow", "dismissed": False,
                    "source_ip": pod.ip, "source_port": port, "source_namespace": edge.src.namespace,
                    "source_name": pod.name, "source_name_aggr": edge.src.name_aggr, "dest_ip": dst_ip,
                    "dest_port": edge.port, "dest_namespace": "-", "dest_name": "-", "dest_name_aggr": "pub",
                    "host": pod.node, "protocol": "tcp", "attack_vector": "Network", "mitre_tactic": "Exfiltration",
                    "mitre_ids": ["T1041"], "mitigations": ["No mitigation needed: the flow was denied"],
                    "record": {"flow_action": edge.action, "protocol": "tcp", "feeds": [feed], "suspicious_prefix": None},
                    "geo_info": {"city_name": "", "country_name": "Germany", "iso": "DE", "asn": "AS24940"}}))
            if rng.random() < 0.5:
                t, domain = hour + rng.random() * _HOUR, edge.dst.domains[0]
                flow_start = int(t) // 300 * 300 - 300
                out.append((t, {
                    "id": f"{feed}_{flow_start}__{domain}", "time": _ts(t, "%Y-%m-%dT%H:%M:%SZ"),
                    "type": "gtf_suspicious_dns_query", "description": f"{edge.src.namespace}/{edge.src.name_aggr} "
                    f"queried {domain} from feeds {feed}", "severity": 100, "origin": "Suspicious DNS Query",
                    "name": "Suspicious DNS Query", "dismissed": False, "source_namespace": edge.src.namespace,
                    "source_name": "-", "source_name_aggr": edge.src.name_aggr, "host": rng.choice(edge.src.nodes),
                    "attack_vector": "Network", "mitre_tactic": "Exfiltration", "mitre_ids": ["T1041"],
                    "mitigations": ["Create a global network policy to prevent traffic to this domain"],
                    "record": {"feeds": [feed], "suspicious_domains": [domain]}}))
        if rng.random() < 0.4:
            name, severity, text, tactic, ids = rng.choice(_ALERTS)
            t, ns, n = hour + rng.random() * _HOUR, rng.choice(ct.namespaces), rng.randrange(20, 400)
            ev: Record = {"id": f"{name}-{int(t)}-{ns}", "time": _ts(t, "%Y-%m-%dT%H:%M:%SZ"), "type": "global_alert",
                          "description": text.format(ns=ns, n=n), "severity": severity, "origin": name, "name": name,
                          "source_namespace": ns, "attack_vector": "Network", "mitre_tactic": tactic,
                          "mitre_ids": ids, "record": {"source_namespace": ns, "count": n}}
            if rng.random() < 0.25:
                ev["dismissed"] = True
            out.append((t, ev))
        for t, ev in sorted(out, key=lambda x: x[0]):
            if _in(t, start, end):
                yield ev


# WAF hits (Linseed's WAFLog): OWASP CRS rules the L7 proxy's ModSecurity reports; the anomaly rule blocks.
_CRS = "/etc/modsecurity-ruleset/REQUEST-{}.conf"
_WAF_ATTACKS = [  # (path appended to the route, rules hit: id, message, file, line)
    ("?id=1%20union%20select%20password%20from%20users", [
        ("942100", "SQL Injection Attack Detected via libinjection", "942-APPLICATION-ATTACK-SQLI", "46")]),
    ("?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", [
        ("941100", "XSS Attack Detected via libinjection", "941-APPLICATION-ATTACK-XSS", "55"),
        ("941160", "NoScript XSS InjectionChecker: HTML Injection", "941-APPLICATION-ATTACK-XSS", "184")]),
    ("/../../etc/passwd", [("930120", "OS File Access Attempt", "930-APPLICATION-ATTACK-LFI", "98")]),
    ("?cmd=%3Bcat%20%2Fetc%2Fshadow", [
        ("932100", "Remote Command Execution: Unix Command Injection", "932-APPLICATION-ATTACK-RCE", "104")]),
]


def waf(topo: Topology, cluster: str, start: datetime, end: datetime) -> Iterator[Record]:
    """WAF logs: now and then a request on an allowed HTTP edge to a service carries an attack pattern;
    most are blocked (the anomaly score rule is disruptive), some only detected."""
    edges = [e for e in topo.flow_edges(cluster) if e.shape == "http" and e.service and not e.denied_by]
    for rng, hour in _hours(topo, cluster, "waf", start, end):
        out: list[tuple[float, Record]] = []
        for edge in edges:
            if rng.random() >= 0.15:
                continue
            for _ in range(rng.randint(1, 3)):
                t, (suffix, hits) = hour + rng.random() * _HOUR, rng.choice(_WAF_ATTACKS)
                src, dst, svc = rng.choice(edge.src.members), rng.choice(edge.dst.members), edge.service
                assert svc is not None
                blocked = rng.random() < 0.8
                rules = [{"id": i, "message": m, "severity": "2", "file": _CRS.format(f), "line": ln,
                          "disruptive": False} for i, m, f, ln in hits]
                if blocked:
                    rules.append({"id": "949110", "message": f"Inbound Anomaly Score Exceeded (Total Score: "
                                  f"{5 * len(hits)})", "severity": "2", "file": _CRS.format("949-BLOCKING-EVALUATION"),
                                  "line": "81", "disruptive": True})
                out.append((t, {
                    "@timestamp": _ts(t, "%Y-%m-%dT%H:%M:%S.000000000Z"),
                    "destination": {"hostname": svc.name, "ip": dst.ip, "port_num": svc.target_port, "name": dst.name,
                                    "namespace": edge.dst.namespace},
                    "level": "error", "method": rng.choice(("GET", "POST")),
                    "msg": f"[{'blocked' if blocked else 'detected'}] {len(rules)} WAF rule(s) got hit",
                    "path": "/api/items" + suffix, "protocol": "HTTP/1.1",
                    "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "rules": rules,
                    "source": {"hostname": "-", "ip": src.ip, "port_num": 32768 + rng.randrange(28000),
                               "name": src.name, "namespace": edge.src.namespace},
                    "host": dst.node}))
        for t, rec in sorted(out, key=lambda x: x[0]):
            if _in(t, start, end):
                yield rec
