"""ResourceWatcher against the rig's real kube-apiserver: lists, sees changes without a restart, picks up a CRD
installed later, snapshots in the shape of spec §12.2; and snapshots from files."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from margay.access.kube import from_kubeconfig
from margay.clock import FakeClock
from margay.errors import ConfigError
from margay.kube import CALICO_CONFIG, COMPLIANCE, KINDS, ResourceWatcher, snapshot_from_files

CRD = "crd.projectcalico.org/v1"


def watcher(kube: Any, tmp_path: Path, kinds: tuple[str, ...] = COMPLIANCE + CALICO_CONFIG,
            **kw: Any) -> ResourceWatcher:
    conn = from_kubeconfig(kube.api.kubeconfig(tmp_path / "kubeconfig"))
    return ResourceWatcher(conn, kinds, retry_interval=0.5, **kw)


@pytest.mark.rig
def test_lists_every_kind_and_snapshots_like_compliance(kube: Any, tmp_path: Path) -> None:
    ns = "watch-" + secrets.token_hex(4)
    answers = kube.api.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": ns}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
         "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": ns},
         "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": ns},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": CRD, "kind": "NetworkPolicy", "metadata": {"name": "default.allow-dns", "namespace": ns},
         "spec": {"tier": "default", "selector": "all()", "types": ["Egress"]}},
        {"apiVersion": CRD, "kind": "GlobalNetworkSet", "metadata": {"name": ns},
         "spec": {"nets": ["203.0.113.0/24"]}},
    ])
    assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers]
    clock = FakeClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    with watcher(kube, tmp_path, clock=clock) as w:
        assert w.wait_synced(30), w.status()
        status = w.status()
        served = {k for k, v in status.items() if v["api_version"]}
        assert set(COMPLIANCE) | {"GlobalAlert", "GlobalThreatFeed", "GlobalReport", "GlobalReportType"} <= served
        assert status["Pod"]["api_version"] == "v1" and status["Tier"]["api_version"] == CRD
        snap = w.snapshot()
    pods = snap.lists["Pod"]
    assert set(pods) == {"kind", "apiVersion", "metadata", "items", "requestStartedTimestamp",
                         "requestCompletedTimestamp"}
    assert pods["kind"] == "PodList" and pods["apiVersion"] == "v1"
    assert pods["requestStartedTimestamp"] == "2026-12-05T12:00:00Z"
    web = next(p for p in pods["items"] if p["metadata"]["namespace"] == ns)
    assert web["kind"] == "Pod" and web["metadata"]["labels"] == {"app": "web"}
    assert "managedFields" not in web["metadata"]
    names = {k: {(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in snap.items(k)}
             for k in snap.lists}
    assert (ns, "app") in names["ServiceAccount"] and (ns, "web") in names["Service"]
    assert (ns, "web") in names["Endpoints"] and ("", ns) in names["Namespace"]
    assert names["NetworkPolicy"] >= {(ns, "deny")} and (ns, "deny") not in names["CalicoNetworkPolicy"]
    assert (ns, "default.allow-dns") in names["CalicoNetworkPolicy"] and ("", ns) in names["GlobalNetworkSet"]
    assert snap.lists["CalicoNetworkPolicy"]["kind"] == "NetworkPolicyList"


@pytest.mark.rig
def test_sees_changes_without_a_restart(kube: Any, tmp_path: Path) -> None:
    name = "watch-alert-" + secrets.token_hex(4)
    seen: list[tuple[str, str, Any]] = []

    def record(kind: str, event: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == name:
            seen.append((kind, event, (obj.get("spec") or {}).get("threshold")))

    alert = {"apiVersion": CRD, "kind": "GlobalAlert", "metadata": {"name": name},
             "spec": {"description": "d", "severity": 50, "dataSet": "dns", "threshold": 10, "metric": "count",
                      "condition": "gt"}}
    with watcher(kube, tmp_path, ("GlobalAlert", "GlobalThreatFeed", "GlobalReport"), on_change=record) as w:
        assert w.wait_synced(30)
        assert w.get("GlobalAlert", name) is None
        assert kube.api.apply([alert])[0].status_code == 201
        assert w.wait_for(lambda: w.get("GlobalAlert", name) is not None, 10)
        alert["spec"]["threshold"] = 99
        assert kube.api.apply([alert])[0].status_code == 200
        assert w.wait_for(lambda: (w.get("GlobalAlert", name) or {}).get("spec", {}).get("threshold") == 99, 10)
        with kube.api.client() as http:
            assert http.delete(f"/apis/{CRD}/globalalerts/{name}").status_code == 200
        assert w.wait_for(lambda: w.get("GlobalAlert", name) is None, 10)
    assert seen == [("GlobalAlert", "ADDED", 10), ("GlobalAlert", "MODIFIED", 99), ("GlobalAlert", "DELETED", 99)]


@pytest.mark.rig
def test_a_kind_installed_later_is_picked_up(kube: Any, tmp_path: Path) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "logcollectors.operator.tigera.io"},
           "spec": {"group": "operator.tigera.io", "scope": "Cluster",
                    "names": {"kind": "LogCollector", "plural": "logcollectors", "singular": "logcollector",
                              "listKind": "LogCollectorList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    with watcher(kube, tmp_path, ("LogCollector",)) as w:
        assert w.wait_synced(30)
        if w.status()["LogCollector"]["api_version"] is None:  # not yet installed in this session
            assert w.snapshot().lists == {}
            assert kube.api.apply([crd])[0].status_code in (200, 201)
        assert w.wait_for(lambda: w.status()["LogCollector"]["synced"], 30), w.status()
        kube.api.apply([{"apiVersion": "operator.tigera.io/v1", "kind": "LogCollector",
                         "metadata": {"name": "tigera-secure"},
                         "spec": {"additionalStores": {"syslog": {"endpoint": "tcp://10.0.0.1:601"}}}}])
        assert w.wait_for(lambda: w.get("LogCollector", "tigera-secure") is not None, 10)
    assert w.snapshot().lists["LogCollector"]["apiVersion"] == "operator.tigera.io/v1"


def test_an_expired_resource_version_means_a_new_list() -> None:
    """`410 Gone` in a watch (its resourceVersion left the API server's window) makes the watcher list again.
    The rig's API server does not produce it on demand (not even after an etcd compaction), so a transport
    plays the API server here, with the answers kube-apiserver gives."""
    from margay.access.kube import Connection

    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1":
            return httpx.Response(200, json={"resources": [{"name": "namespaces", "kind": "Namespace"}]})
        calls.append(f"{'watch' if request.url.params.get('watch') else 'list'}@"
                     f"{request.url.params.get('resourceVersion', '')}")
        if not request.url.params.get("watch"):
            rv = "100" if len([c for c in calls if c.startswith("list")]) == 1 else "200"
            return httpx.Response(200, json={"metadata": {"resourceVersion": rv}, "items": [
                {"metadata": {"name": f"ns-{rv}", "resourceVersion": rv}}]})
        if request.url.params["resourceVersion"] == "100":
            return httpx.Response(200, content=b'{"type":"ERROR","object":{"kind":"Status","code":410,'
                                                b'"reason":"Expired","message":"too old resource version"}}\n')
        return httpx.Response(200, content=b"")  # a watch that ends at once; resumed from 200

    w = ResourceWatcher(Connection(server="https://api.test"), ("Namespace",), retry_interval=0.05,
                        transport=httpx.MockTransport(answer))
    with w:
        assert w.wait_for(lambda: w.status()["Namespace"]["lists"] >= 2, 10), (w.status(), calls)
        assert w.wait_for(lambda: w.get("Namespace", "ns-200") is not None, 10)
    assert calls[:4] == ["list@", "watch@100", "list@", "watch@200"], calls
    assert w.get("Namespace", "ns-100") is None  # the new list replaced the old state


@pytest.mark.rig
def test_without_permission_errors_are_counted_not_fatal(kube: Any, tmp_path: Path) -> None:
    conn = from_kubeconfig(kube.kubeconfig_for("mallory", tmp_path / "kubeconfig"))
    with ResourceWatcher(conn, ("Pod",), retry_interval=0.2) as w:
        assert w.wait_for(lambda: w.status()["Pod"]["errors"] >= 2, 15), w.status()
        assert not w.wait_synced(0.5)
        assert "403" in w.status()["Pod"]["last_error"]


def test_snapshot_from_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": "x"}, "spec": {}},
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
             "metadata": {"name": "p", "namespace": "shop"}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "k", "namespace": "shop"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored"}}]}]))
    snap = snapshot_from_files(tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert set(snap.lists) == {"GlobalAlert", "CalicoNetworkPolicy", "NetworkPolicy"}
    assert snap.lists["CalicoNetworkPolicy"]["kind"] == "NetworkPolicyList"
    assert [o["metadata"]["name"] for o in snap.items("NetworkPolicy")] == ["k"]
    assert snap.lists["GlobalAlert"]["requestCompletedTimestamp"] == "2026-01-01T00:00:00Z"
    (tmp_path / "b.yaml").write_text("kind: [unclosed")
    with pytest.raises(ConfigError, match="b.yaml: not valid YAML"):
        snapshot_from_files(tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {}}))
    with pytest.raises(ConfigError, match="needs metadata.name"):
        snapshot_from_files(tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="no such file"):
        snapshot_from_files(tmp_path / "none", now=datetime(2026, 1, 1, tzinfo=UTC))


def test_unknown_kinds_are_refused() -> None:
    from margay.access.kube import Connection

    with pytest.raises(ConfigError, match="unknown kinds"):
        ResourceWatcher(Connection(server="https://127.0.0.1:1"), ("Pods",))
    assert "CalicoNetworkPolicy" in KINDS
