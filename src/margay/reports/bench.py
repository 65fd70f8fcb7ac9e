"""The `reports` benchmark: a snapshot of N pods (stored, read back) and a network-access report over 7 days of
flow logs for the endpoints of that snapshot, with policy and label changes through the week, on the
embedded store. Wall and CPU seconds of each step; the cluster comes from the simulator's topology, so the
flows' aggregation prefixes are the snapshot's pods' generateNames."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..logtypes import REGISTRY
from ..simulate import Topology
from ..store.backend import Backend
from . import inventory, network_access, reporter, snapshots
from .resources import Resources, load_dump
from .state import timeline

CLUSTER = "cluster"
PODS_PER_WORKLOAD = 2.3  # the simulator's replica counts: 2, 2 or 3 per Deployment, a few StatefulSets


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def topology_for(pods: int) -> Topology:
    ns = max(1, math.ceil(pods / (10 * PODS_PER_WORKLOAD)))
    return Topology.build(7, clusters=[CLUSTER], namespaces_per_cluster=ns, deployments_per_namespace=10)


def _pod(ns: str, name: str, generate: str, labels: dict[str, str], node: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if generate:
        meta["generateName"] = generate
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "serviceAccountName": "default", "containers": [{"name": "main", "image": "x"}]},
            "status": {"phase": "Running"}}


def _np(ns: str, selector: str) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "default.ingress", "namespace": ns},
            "spec": {"tier": "default", "selector": selector, "types": ["Ingress"],
                     "ingress": [{"action": "Allow", "source": {"selector": "all()"}}]}}


def resources_of(topo: Topology, limit: int | None = None) -> tuple[dict[str, Any], int]:
    """The cluster as a `kubectl get -o json` List: namespaces, pods (at most `limit`), services, endpoints,
    host endpoints, network sets, a policy per namespace and two global ones. Returns it and the pod count."""
    ct = topo.cluster(CLUSTER)
    items: list[dict[str, Any]] = []
    pods = 0
    for ns in ct.namespaces:
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"name": ns}}})
        items.append(_np(ns, "all()"))
    by_aggr: dict[tuple[str, str], list[str]] = {}
    for wl in ct.workloads:
        generate = wl.name_aggr[:-1] if wl.name_aggr.endswith("*") else ""
        for m in wl.members:
            if limit is not None and pods >= limit:
                break
            items.append(_pod(wl.namespace, m.name, generate, dict(wl.labels), m.node))
            by_aggr.setdefault((wl.namespace, wl.name_aggr), []).append(m.name)
            pods += 1
    for s in ct.services:
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s.name, "namespace": s.namespace},
                      "spec": {"clusterIP": s.cluster_ip, "ports": [{"port": s.port, "protocol": s.proto.upper()}]}})
        members = by_aggr.get((s.namespace, s.backend), [])
        items.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": s.name, "namespace": s.namespace},
                      "subsets": [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": p,
                                                                                  "namespace": s.namespace}}
                                                 for p in members]}] if members else []})
    for h in ct.host_endpoints:
        items.append({"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
                      "metadata": {"name": h.name, "labels": dict(h.labels)},
                      "spec": {"node": h.name, "interfaceName": "eth0"}})
    items.append({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
                  "metadata": {"name": "public-dns", "labels": {"kind": "dns"}}, "spec": {"nets": ["8.8.8.8/32"]}})
    for name, types, sel, rule in (
            ("default.egress-dns", ["Egress"], "all()",
             {"action": "Allow", "destination": {"selector": 'kind == "dns"'}}),
            ("default.hosts", ["Ingress"], "has(kubernetes.io/hostname)", {"action": "Allow"})):
        items.append({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
                      "spec": {"tier": "default", "selector": sel, "types": types,
                               types[0].lower(): [rule]}})
    return {"apiVersion": "v1", "kind": "List", "items": items}, pods


def changes(topo: Topology, start: datetime, end: datetime, n: int) -> list[dict[str, Any]]:
    """`n` audit events spread over [start, end): namespace policies narrowed to one app and back."""
    ct = topo.cluster(CLUSTER)
    out = []
    step = (end - start) / (n + 1)
    for i in range(n):
        ns = ct.namespaces[i % len(ct.namespaces)]
        selector = "all()" if (i // len(ct.namespaces)) % 2 else 'app == "nothing"'
        at = (start + step * (i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj = _np(ns, selector)
        out.append({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
                    "auditID": f"bench-{i}", "stage": "ResponseComplete", "verb": "patch",
                    "requestURI": f"/apis/projectcalico.org/v3/namespaces/{ns}/networkpolicies/default.ingress",
                    "user": {"username": "bench"}, "responseStatus": {"code": 200},
                    "objectRef": {"resource": "networkpolicies", "namespace": ns, "name": "default.ingress",
                                  "apiGroup": "projectcalico.org", "apiVersion": "v3"},
                    "requestObject": obj, "responseObject": obj, "requestReceivedTimestamp": at, "stageTimestamp": at})
    return out


def _ingest(backend: Backend, lt: str, body: bytes, now: datetime) -> None:
    resp, _ = backend.ingest(REGISTRY[lt], CLUSTER, body, key=None, now=now,
                             respond=lambda c: {"failed": c.failed_lines})
    if resp["failed"]:
        raise RuntimeError(f"bench data refused: {resp}")


def bench(backend_factory: Callable[[Path], Backend], *, pods: int, flows: int, snapshot_pods: int, end: datetime,
          days: int = 7, n_changes: int = 100, work_dir: Path | None = None,
          log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    from ..bench.data import flow_batches

    out: dict[str, Any] = {}
    start = end - timedelta(days=days)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        # 1. a snapshot of `snapshot_pods` pods: parsed from a dump, stored, read back
        big = topology_for(snapshot_pods)
        dump, n = resources_of(big, snapshot_pods)
        raw = orjson.dumps(dump)
        res, w, c = _timed(lambda: load_dump(raw, "bench.json"))
        out |= {"reports_snapshot_pods": n, "reports_snapshot_parse_s": round(w, 2)}
        backend = backend_factory(Path(tmp) / "snap")
        try:
            _, w, c = _timed(lambda: snapshots.take(backend, CLUSTER, res, started=start, completed=start))
            out |= {"reports_snapshot_store_s": round(w, 2), "reports_snapshot_store_cpu_s": round(c, 2)}
            got, w, c = _timed(lambda: snapshots.latest(backend, CLUSTER, start + timedelta(seconds=1)))
            assert got is not None and len(got[1]["Pod"]) == n, "the snapshot did not come back whole"
            out |= {"reports_snapshot_read_s": round(w, 2), "reports_snapshot_read_cpu_s": round(c, 2)}
        finally:
            backend.close()
        log(f"snapshot of {n} pods: {out}")
        # 2. a network-access report over `days` of `flows` flow logs of a cluster of `pods` pods
        topo = topology_for(pods)
        dump, n = resources_of(topo)
        resources: Resources = load_dump(orjson.dumps(dump), "bench.json")
        backend = backend_factory(Path(tmp) / "report")
        try:
            snapshots.take(backend, CLUSTER, resources, started=start - timedelta(minutes=5),
                           completed=start - timedelta(minutes=5))
            _ingest(backend, "audit_ee", b"\n".join(orjson.dumps(e) for e in changes(topo, start, end, n_changes)), end)
            t0 = time.perf_counter()
            stored = 0
            for batch in flow_batches(topo, flows, end=end):
                _ingest(backend, "flows", batch.body, end)
                stored += batch.records
            out |= {"reports_flows": stored, "reports_flows_load_s": round(time.perf_counter() - t0, 1),
                    "reports_pods": n, "reports_changes": n_changes, "reports_days": days}
            log(f"loaded {stored} flows for {n} pods")
            report: dict[str, Any] = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": "bench"},
                      "spec": {"reportType": "network-access"}}
            # the steps, each timed (the same work reporter.run does), then the whole run
            tl, w, c = _timed(lambda: timeline(backend, CLUSTER, start, end))
            out |= {"reports_states": len(tl.changes) + 1, "reports_timeline_s": round(w, 2), "reports_timeline_cpu_s": round(c, 2)}
            data, w, c = _timed(lambda: inventory.compute(report["spec"], tl))
            out |= {"reports_evaluate_s": round(w, 2), "reports_evaluate_cpu_s": round(c, 2)}
            pairs, w, c = _timed(lambda: network_access.endpoint_pairs(backend, CLUSTER, start, end))
            out |= {"reports_flow_pairs": len(pairs), "reports_flow_pairs_s": round(w, 2),
                    "reports_flow_pairs_cpu_s": round(c, 2)}
            doc, w, c = _timed(lambda: reporter.run(backend, CLUSTER, report, start, end, end))
            out |= {"reports_endpoints": doc["endpointsSummary"]["numTotal"],
                    "reports_network_access_s": round(w, 2), "reports_network_access_cpu_s": round(c, 2)}
            _, w, c = _timed(lambda: reporter.downloads(reporter.stored(backend, CLUSTER, "bench", end)))
            out |= {"reports_downloads_s": round(w, 2)}
        finally:
            backend.close()
        log(f"network-access report: {out}")
    return out
