"""Compliance history for `make demo`: a week of the demo cluster's resources (the simulated topology's
namespaces, pods, services, endpoints and policies), daily snapshots, audit events that change policies and
labels mid-week, and the daily runs of three GlobalReports — so the reports, their history and diffs have
content. Written through the Backend protocol like everything else; the server's own report jobs and daily
snapshots (reports/service.py) carry on from there.

The week's story (day 0 is seven days before today, UTC):
    day 1 10:15  a shop pod loses its `app` label: no longer selected by shop's policy, ingress unprotected
    day 2 14:00  GlobalNetworkPolicy default.deny-public-egress created: every endpoint egress-protected
    day 3 09:30  the data namespace's Kubernetes NetworkPolicy gains Egress
    day 4 16:45  payments' Calico NetworkPolicy deleted: payments ingress unprotected
    day 5 11:00  a debug pod without labels created in shop
    day 6 08:00  the shop pod gets its label back
"""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..errors import BackendError, NotFound
from ..logtypes import REGISTRY
from ..store.backend import Backend
from . import reporter, snapshots
from .resources import Resources, load_dump

CALICO = "projectcalico.org/v3"
GLOBALREPORTS = [
    {"apiVersion": CALICO, "kind": "GlobalReport", "metadata": {"name": "daily-inventory"},
     "spec": {"reportType": "inventory", "schedule": "0 0 * * *"}},
    {"apiVersion": CALICO, "kind": "GlobalReport", "metadata": {"name": "daily-network-access"},
     "spec": {"reportType": "network-access", "schedule": "0 0 * * *"}},
    {"apiVersion": CALICO, "kind": "GlobalReport", "metadata": {"name": "daily-policy-audit"},
     "spec": {"reportType": "policy-audit", "schedule": "0 0 * * *"}},
]
_STYLE = {"shop": "calico", "payments": "calico", "ingress": "calico", "data": "knp"}  # others: no policy


def _meta(name: str, namespace: str = "", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def cluster_objects(topology: Any, cluster: str) -> list[dict[str, Any]]:
    """The demo cluster's resources as Kubernetes/Calico objects (the state on day 0)."""
    ct = topology.cluster(cluster)
    objs: list[dict[str, Any]] = []
    for ns in ct.namespaces:
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, team=ns)})
        objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("default", ns)})
    for wl in ct.workloads:
        for m in wl.members:
            meta = _meta(m.name, wl.namespace, **dict(wl.labels))
            meta["generateName"] = wl.generate_name or f"{wl.name}-"
            objs.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                         "spec": {"serviceAccountName": "default", "nodeName": m.node,
                                  "containers": [{"name": wl.name, "image": f"{wl.name}:1"}]},
                         "status": {"phase": "Running", "podIP": m.ip}})
    for svc in ct.services:
        wl = next(w for w in ct.workloads if w.name_aggr == svc.backend and w.namespace == svc.namespace)
        objs.append({"apiVersion": "v1", "kind": "Service", "metadata": _meta(svc.name, svc.namespace),
                     "spec": {"selector": dict(wl.labels[:1]), "clusterIP": svc.cluster_ip,
                              "ports": [{"port": svc.port, "targetPort": svc.target_port}]}})
        objs.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": _meta(svc.name, svc.namespace),
                     "subsets": [{"addresses": [{"ip": m.ip, "targetRef": {"kind": "Pod", "name": m.name,
                                                                           "namespace": svc.namespace}}
                                                for m in wl.members]}]})
    objs.append({"apiVersion": CALICO, "kind": "Tier", "metadata": _meta("default"), "spec": {"order": 1000000}})
    objs.append({"apiVersion": CALICO, "kind": "GlobalNetworkSet", "metadata": _meta("internet", role="public"),
                 "spec": {"nets": ["0.0.0.0/0"]}})
    for ns in ct.namespaces:
        style = _STYLE.get(ns)
        if style == "calico":
            objs.append(_calico_policy(ns))
        elif style == "knp":
            objs.append(_knp(ns, ["Ingress"]))
    return objs


def _calico_policy(ns: str) -> dict[str, Any]:
    return {"apiVersion": CALICO, "kind": "NetworkPolicy", "metadata": _meta(f"default.allow-{ns}", ns),
            "spec": {"tier": "default", "order": 100, "selector": "has(app)", "types": ["Ingress", "Egress"],
                     "ingress": [{"action": "Allow", "source": {"selector": "all()"}}],
                     "egress": [{"action": "Allow", "destination": {"selector": "all()"}}]}}


def _knp(ns: str, types: list[str]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(f"{ns}-default", ns),
            "spec": {"podSelector": {}, "policyTypes": types,
                     "ingress": [{"from": [{"podSelector": {}}]}],
                     **({"egress": [{"to": [{"podSelector": {}}]}]} if "Egress" in types else {})}}


def _event(at: datetime, verb: str, obj: dict[str, Any], *, user: str = "alice@example.com") -> dict[str, Any]:
    api = str(obj["apiVersion"])
    group, _, version = api.rpartition("/")
    resource = {"Pod": "pods", "NetworkPolicy": "networkpolicies",
                "GlobalNetworkPolicy": "globalnetworkpolicies"}[obj["kind"]]
    meta = obj["metadata"]
    ref = {"resource": resource, "name": meta["name"], "apiGroup": group, "apiVersion": version or api}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": f"demo-{verb}-{meta['name']}-{int(at.timestamp())}", "stage": "ResponseComplete",
        "requestURI": f"/apis/{api}/{resource}/{meta['name']}", "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.5"],
        "objectRef": ref, "responseStatus": {"code": 200}, "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp}
    if verb == "delete":
        ev["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
    else:
        ev["requestObject"] = ev["responseObject"] = obj
    return ev


def week_of_changes(objs: list[dict[str, Any]], day0: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
    """(time, verb, object after) for the week's story (see the module docstring)."""
    pods = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["namespace"] == "shop"]
    victim = copy.deepcopy(pods[0])
    unlabeled = copy.deepcopy(victim)
    unlabeled["metadata"]["labels"] = {k: v for k, v in victim["metadata"]["labels"].items() if k != "app"}
    gnp = {"apiVersion": CALICO, "kind": "GlobalNetworkPolicy", "metadata": _meta("default.deny-public-egress"),
           "spec": {"tier": "default", "order": 10, "selector": "all()", "types": ["Egress"],
                    "egress": [{"action": "Deny", "destination": {"selector": "role == 'public'"}},
                               {"action": "Pass"}]}}
    debug = {"apiVersion": "v1", "kind": "Pod", "metadata": _meta("debug-shell", "shop"),
             "spec": {"serviceAccountName": "default", "containers": [{"name": "sh", "image": "busybox"}]},
             "status": {"phase": "Running"}}
    h = timedelta(hours=1)
    return [
        (day0 + timedelta(days=1) + 10.25 * h, "patch", unlabeled),
        (day0 + timedelta(days=2) + 14 * h, "create", gnp),
        (day0 + timedelta(days=3) + 9.5 * h, "update", _knp("data", ["Ingress", "Egress"])),
        (day0 + timedelta(days=4) + 16.75 * h, "delete", _calico_policy("payments")),
        (day0 + timedelta(days=5) + 11 * h, "create", debug),
        (day0 + timedelta(days=6) + 8 * h, "patch", victim),
    ]


def _apply(state: dict[tuple[str, str, str], dict[str, Any]], verb: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    key = (f"{obj['apiVersion']}/{obj['kind']}", meta.get("namespace", ""), meta["name"])
    if verb == "delete":
        state.pop(key, None)
    else:
        state[key] = obj


def _resources(state: dict[tuple[str, str, str], dict[str, Any]]) -> Resources:
    return load_dump(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(state.values())}).encode(),
                     "demo")


def write_history(backend: Backend, topology: Any, cluster: str, today: datetime, *, days: int = 7,
                  dumps: Path | None = None, log: Any = None, stop: threading.Event | None = None) -> int:
    """Snapshots, audit events and daily report runs for the `days` before `today` (midnight UTC); returns the
    number of reports stored. Does nothing when the week's last report is stored already; a week cut short
    (`stop` set, e.g. Ctrl-C) is completed by the next call (every batch has an idempotency key)."""
    day0 = today - timedelta(days=days)
    try:
        reporter.stored(backend, cluster, "daily-policy-audit", today)  # the last one written
        return 0
    except NotFound:
        pass
    objs = cluster_objects(topology, cluster)
    state = {(f"{o['apiVersion']}/{o['kind']}", o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objs}
    changes = week_of_changes(objs, day0)
    events: dict[str, list[dict[str, Any]]] = {"audit_kube": [], "audit_ee": []}
    for at, verb, obj in changes:
        lt = "audit_ee" if str(obj["apiVersion"]).startswith("projectcalico.org") else "audit_kube"
        events[lt].append(_event(at, verb, obj))
    for lt, evs in events.items():
        resp, _ = backend.ingest(REGISTRY[lt], cluster, b"\n".join(orjson.dumps(e) for e in evs),
                                 key=f"demo-{lt}-{day0:%Y%m%d}", now=today,
                                 respond=lambda c: {"errors": [e.as_dict() for e in c.errors]})
        if resp["errors"]:
            raise BackendError(f"demo audit events not stored: {resp['errors'][0]}")
    pending = list(changes)
    for d in range(days):
        at = day0 + timedelta(days=d)
        while pending and pending[0][0] < at:
            _, verb, obj = pending.pop(0)
            _apply(state, verb, obj)
        if stop is not None and stop.is_set():
            return 0
        snapshots.take(backend, cluster, _resources(state), started=at, completed=at)
    for _, verb, obj in pending:
        _apply(state, verb, obj)
    if dumps is not None:  # the state now, for the server's own daily snapshots
        write_dump(topology, cluster, dumps)
    stored = 0
    for d in range(days):
        start = day0 + timedelta(days=d)
        for report in GLOBALREPORTS:
            if stop is not None and stop.is_set():
                return stored
            reporter.run(backend, cluster, report, start, start + timedelta(days=1),
                         start + timedelta(days=1, minutes=30))
            stored += 1
        if log is not None:
            log(f"compliance history: reports of {start:%Y-%m-%d} stored")
    return stored


def write_dump(topology: Any, cluster: str, folder: Path) -> Path:
    """The cluster's state at the end of the week (the story applied) as a dump, for the server's own daily
    snapshots (--snapshot-dumps); written before the server starts so its first snapshot finds it."""
    objs = cluster_objects(topology, cluster)
    state = {(f"{o['apiVersion']}/{o['kind']}", o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objs}
    for _, verb, obj in week_of_changes(objs, datetime(2000, 1, 1, tzinfo=UTC)):
        _apply(state, verb, obj)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cluster}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(state.values())}))
    return path


def write_globalreports(folder: Path) -> Path:
    """The demo's GlobalReports as YAML, for the server's report jobs (--reports-resources)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "globalreports.yaml"
    path.write_text(yaml.safe_dump_all(GLOBALREPORTS, sort_keys=False))
    return path
