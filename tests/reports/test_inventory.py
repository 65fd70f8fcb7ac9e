"""A cluster history (snapshot, then audited changes to pods, labels and policies mid-interval) whose
inventory reports were worked out by hand, compared cell by cell, on both engines."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from margay.app import Margay
from margay.clock import FakeClock
from margay.config import Settings
from margay.errors import NotFound, ParseError
from margay.logtypes import REGISTRY
from margay.reports import history, inventory, network_access, policy_audit, reporter, snapshots
from margay.reports.resources import load_dump
from margay.reports.state import timeline

START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=1)


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(namespace: str, name: str, sa: str = "default", envoy: bool = False, host: bool = False,
        generate: str | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"serviceAccountName": sa, "containers": [{"name": "main", "image": "x"}]}
    if envoy:
        spec["containers"].append({"name": "istio-proxy", "image": "proxy"})
        spec["initContainers"] = [{"name": "istio-init", "image": "init"}]
    if host:
        spec["hostNetwork"] = True
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if generate:
        meta["generateName"] = generate
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Running"}}


def gnp(name: str, types: list[str], selector: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": {"tier": "default", "selector": selector, "types": types, **extra}}


def endpoints(namespace: str, name: str, pods: list[str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace},
            "subsets": [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": p,
                                                                          "namespace": namespace}} for p in pods]}]}


SNAPSHOT = {"apiVersion": "v1", "kind": "List", "items": [
    ns("shop", team="web"), ns("data", team="db"),
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web-sa", "namespace": "shop"}},
    pod("shop", "web-1", sa="web-sa", envoy=True, generate="web-", app="web"),
    pod("shop", "web-2", generate="web-", app="web"),
    pod("shop", "node-agent", host=True, app="web"),  # host-networked: not an endpoint
    pod("data", "db-1", app="db"),
    {"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
     "metadata": {"name": "node1-eth0", "labels": {"node": "n1"}}, "spec": {"node": "n1", "interfaceName": "eth0"}},
    # egress only to private addresses: neither internet nor (a CIDR rule in a GNP) other namespaces
    gnp("default.global-egress", ["Egress"], 'projectcalico.org/namespace == "data"',
        egress=[{"action": "Allow", "destination": {"nets": ["10.0.0.0/8"]}}]),
    # egress to a network set holding a public address: internet, and (no CIDR in a GNP) other namespaces
    gnp("default.web-egress", ["Egress"], 'app == "web"', namespaceSelector='team == "web"',
        egress=[{"action": "Allow", "destination": {"selector": 'kind == "dns"'}},
                {"action": "Deny", "destination": {}}]),
    {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
     "metadata": {"name": "public-dns", "labels": {"kind": "dns"}}, "spec": {"nets": ["8.8.8.8/32"]}},
    {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
     "metadata": {"name": "office", "labels": {"kind": "office"}}, "spec": {"nets": ["192.168.0.0/16"]}},
    {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
     "metadata": {"name": "default.web-ingress", "namespace": "shop"},
     "spec": {"tier": "default", "selector": 'app == "web"', "types": ["Ingress"], "ingress": [{"action": "Allow"}]}},
    {"apiVersion": "projectcalico.org/v3", "kind": "StagedNetworkPolicy",
     "metadata": {"name": "default.staged", "namespace": "shop"}, "spec": {"selector": "all()", "types": ["Egress"]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db-ingress", "namespace": "data"},
     "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
              "ingress": [{"from": [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "172.16.0.0/12"}}]}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "data"}, "spec": {}},
    endpoints("shop", "web", ["web-1", "web-2"]), endpoints("data", "db", ["db-1"]),
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored", "namespace": "shop"}},
]}


def audit(at: datetime, verb: str, resource: str, group: str, namespace: str | None, name: str,
          obj: dict[str, Any] | None, code: int = 200) -> dict[str, Any]:
    ref = {"resource": resource, "name": name, "apiGroup": group, "apiVersion": "v3" if group else "v1"}
    if namespace:
        ref["namespace"] = namespace
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"{verb}-{name}-{at}",
        "stage": "ResponseComplete", "requestURI": f"/x/{resource}/{name}", "verb": verb,
        "user": {"username": "alice"}, "objectRef": ref, "responseStatus": {"code": code},
        "requestReceivedTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "stageTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if obj is not None:
        ev["requestObject"] = obj
        ev["responseObject"] = obj
    elif verb == "delete":
        ev["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
    return ev


def h(hours: int) -> datetime:
    return START + timedelta(hours=hours)


web2_legacy = pod("shop", "web-2", generate="web-", app="legacy")
KUBE_EVENTS = [
    audit(h(6), "create", "pods", "", "data", "db-2", pod("data", "db-2", app="db")),
    audit(h(12), "patch", "pods", "", "shop", "web-2", web2_legacy),
    # refused (403): must not change the state
    audit(h(13), "update", "networkpolicies", "networking.k8s.io", "data", "db-ingress",
          {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "db-ingress", "namespace": "data"}, "spec": {"podSelector": {"matchLabels": {"app": "x"}}}},
          code=403),
]
EE_EVENTS = [
    audit(h(3), "create", "globalnetworkpolicies", "projectcalico.org", None, "default.hep-all",
          gnp("default.hep-all", ["Ingress"], "has(node)")),
    audit(h(9), "patch", "networkpolicies", "projectcalico.org", "shop", "default.web-ingress",
          {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
           "metadata": {"name": "default.web-ingress", "namespace": "shop"},
           "spec": {"tier": "default", "selector": 'app == "web"', "types": ["Ingress"],
                    "ingress": [{"action": "Allow", "protocol": "TCP"}]}}),
    audit(h(18), "delete", "globalnetworkpolicies", "projectcalico.org", None, "default.global-egress", None),
]


def flow(at: datetime, src: tuple[str, str, str], dst: tuple[str, str, str]) -> dict[str, Any]:
    """A flow at default aggregation (names "-", prefixes in *_name_aggr) between (type, namespace, prefix)."""
    t = int(at.timestamp())
    return {"start_time": t, "end_time": t + 300, "action": "allow", "reporter": "src", "proto": "tcp",
            "source_type": src[0], "source_namespace": src[1], "source_name": "-", "source_name_aggr": src[2],
            "dest_type": dst[0], "dest_namespace": dst[1], "dest_name": "-", "dest_name_aggr": dst[2],
            "bytes_in": 10, "bytes_out": 20, "packets_in": 1, "packets_out": 1, "num_flows": 1}


WEB, DB1, HEP = ("wep", "shop", "web-*"), ("wep", "data", "db-1"), ("hep", "-", "node1-eth0")
FLOWS = [
    flow(h(10), WEB, DB1), flow(h(10), WEB, DB1),
    flow(h(11), ("net", "-", "pub"), WEB),
    flow(h(12), DB1, HEP),
    flow(h(13), WEB, ("ns", "-", "public-dns")),
    flow(START - timedelta(hours=2), WEB, ("net", "-", "pub")),  # before the interval
]


@pytest.fixture(scope="module")
def cluster(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("reports"), **module_engine)
    m = Margay(settings, clock=FakeClock(START))
    b = m.backend
    resources = load_dump(yaml.safe_dump(SNAPSHOT).encode(), "snapshot.yaml")
    assert snapshots.take(b, "c1", resources, started=START - timedelta(hours=1),
                          completed=START - timedelta(hours=1) + timedelta(seconds=2)) == 19  # all but the ConfigMap
    for lt, evs in ((REGISTRY["audit_kube"], KUBE_EVENTS), (REGISTRY["audit_ee"], EE_EVENTS)):
        resp, _ = b.ingest(lt, "c1", b"\n".join(orjson.dumps(e) for e in evs), key=None, now=END,
                           respond=lambda c: {"failed": c.failed_lines, "ok": c.succeeded})
        assert resp == {"failed": 0, "ok": len(evs)}, resp
    resp, _ = b.ingest(REGISTRY["flows"], "c1", b"\n".join(orjson.dumps(f) for f in FLOWS), key=None, now=END,
                       respond=lambda c: {"failed": c.failed_lines, "ok": c.succeeded})
    assert resp == {"failed": 0, "ok": len(FLOWS)}, resp
    yield b
    m.close()


def report(name: str, endpoints: dict[str, Any] | None = None, rtype: str = "inventory") -> dict[str, Any]:
    spec: dict[str, Any] = {"reportType": rtype, "schedule": "0 0 * * *"}
    if endpoints is not None:
        spec["endpoints"] = endpoints
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": name}, "spec": spec}


def test_snapshot_round_trip(cluster: Any) -> None:
    got = snapshots.latest(cluster, "c1", START)
    assert got is not None
    when, res = got
    assert when == START - timedelta(hours=1) + timedelta(seconds=2)
    assert sorted(res["Pod"]) == [("data", "db-1"), ("shop", "node-agent"), ("shop", "web-1"), ("shop", "web-2")]
    assert list(res["projectcalico.org/GlobalNetworkPolicy"]) == [("", "default.global-egress"), ("", "default.web-egress")]
    assert sorted(res["projectcalico.org/GlobalNetworkSet"]) == [("", "office"), ("", "public-dns")]
    assert res["projectcalico.org/NetworkSet"] == {}  # an empty List: none, not unknown
    assert snapshots.latest(cluster, "c1", START - timedelta(hours=2)) is None


def test_state_replays_audit(cluster: Any) -> None:
    tl = timeline(cluster, "c1", START, END)
    spans = [(a, b, copy.deepcopy(s)) for a, b, s in tl.states()]
    assert [(a.hour, b.hour if b != END else 24) for a, b, _ in spans] == [
        (0, 3), (3, 6), (6, 9), (9, 12), (12, 18), (18, 24)]
    assert ("data", "db-2") in spans[2][2]["Pod"] and ("data", "db-2") not in spans[1][2]["Pod"]
    assert spans[3][2]["projectcalico.org/NetworkPolicy"][("shop", "default.web-ingress")]["spec"]["ingress"][0][
        "protocol"] == "TCP"
    assert spans[4][2]["Pod"][("shop", "web-2")]["metadata"]["labels"] == {"app": "legacy"}
    assert ("", "default.global-egress") not in spans[5][2]["projectcalico.org/GlobalNetworkPolicy"]
    knp = spans[5][2]["networking.k8s.io/NetworkPolicy"][("data", "db-ingress")]
    assert knp["spec"]["podSelector"] == {"matchLabels": {"app": "db"}}  # the refused update changed nothing


def test_inventory_whole_cluster(cluster: Any) -> None:
    doc = reporter.run(cluster, "c1", report("daily"), START, END, END + timedelta(minutes=30))
    back = reporter.stored(cluster, "c1", "daily", END)
    assert back["endpoints"] == doc["endpoints"]
    files = inventory.downloads(back)
    assert files["summary.csv"] == (
        "startTime,endTime,endpointSelector,namespaceNames,namespaceSelector,serviceAccountNames,"
        "serviceAccountSelectors,endpointsNumInScope,endpointsNumIngressProtected,endpointsNumEgressProtected,"
        "namespacesNumInScope,namespacesNumIngressProtected,namespacesNumEgressProtected,serviceAccountsNumInScope\n"
        "2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,,,,,,5,3,1,2,1,0,3")
    assert files["endpoints.csv"] == (
        "endpoint,ingressProtected,egressProtected,envoyEnabled,appliedPolicies,services\n"
        "HostEndpoint(node1-eth0),false,false,false,GlobalNetworkPolicy(default.hep-all),\n"
        "Pod.v1(data/db-1),true,false,false,GlobalNetworkPolicy(default.global-egress);"
        "NetworkPolicy.networking.k8s.io/v1(data/db-ingress),Service.v1(data/db)\n"
        "Pod.v1(data/db-2),true,false,false,GlobalNetworkPolicy(default.global-egress);"
        "NetworkPolicy.networking.k8s.io/v1(data/db-ingress),\n"
        "Pod.v1(shop/web-1),true,true,true,GlobalNetworkPolicy(default.web-egress);"
        "NetworkPolicy(shop/default.web-ingress),Service.v1(shop/web)\n"
        "Pod.v1(shop/web-2),false,false,false,GlobalNetworkPolicy(default.web-egress);"
        "NetworkPolicy(shop/default.web-ingress),Service.v1(shop/web)\n")
    assert files["namespaces.csv"] == ("namespace,ingressProtected,egressProtected,envoyEnabled\n"
                                       "data,true,false,false\nshop,false,false,false\n")
    assert files["services.csv"] == ("service,ingressProtected,envoyEnabled\n"
                                     "Service.v1(data/db),true,false\nService.v1(shop/web),false,false\n")


def test_inventory_scoped(cluster: Any) -> None:
    spec = {"selector": 'app in {"web","legacy"}', "namespaces": {"names": ["shop"]}}
    reporter.run(cluster, "c1", report("shop-web", spec), START, END, END)
    files = inventory.downloads(reporter.stored(cluster, "c1", "shop-web", END))
    assert files["summary.csv"].splitlines()[1] == (
        '2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,"app in {""web"",""legacy""}",shop,,,,2,1,1,1,0,0,2')
    assert [r.split(",")[0] for r in files["endpoints.csv"].splitlines()[1:]] == ["Pod.v1(shop/web-1)", "Pod.v1(shop/web-2)"]


def test_no_snapshot_is_a_clear_error(cluster: Any) -> None:
    with pytest.raises(NotFound, match="no snapshot of cluster 'c1'"):
        reporter.run(cluster, "c1", report("early"), START - timedelta(days=3), START - timedelta(days=2), END)


@pytest.mark.parametrize(("obj", "field"), [
    ({"kind": "GlobalReport", "metadata": {"name": "r"}, "spec": {"reportType": "nope"}}, "spec.reportType"),
    ({"kind": "GlobalReport", "metadata": {}, "spec": {"reportType": "inventory"}}, "metadata.name"),
    ({"kind": "GlobalReport", "metadata": {"name": 'a"b'}, "spec": {"reportType": "inventory"}}, "metadata.name"),
    ({"kind": "GlobalReport", "metadata": {"name": "r"}, "spec": {"reportType": "inventory", "schedule": "0 0 *"}},
     "spec.schedule"),
    ({"kind": "GlobalReport", "metadata": {"name": "r"},
      "spec": {"reportType": "inventory", "endpoints": {"selector": "app == "}}}, "spec.endpoints.selector"),
    ({"kind": "GlobalReport", "metadata": {"name": "r"},
      "spec": {"reportType": "inventory", "endpoints": {"namespaces": {"names": "shop"}}}},
     "spec.endpoints.namespaces.names"),
])
def test_malformed_globalreport_names_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(ParseError, match=field.replace(".", r"\.")):
        reporter.check_globalreport(obj)


@pytest.mark.parametrize(("dump", "field"), [
    (b"kind: PodList\napiVersion: v1\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: p}}]", r"items\[0\]\.metadata\.namespace"),
    (b"kind: List\nitems: [{kind: Pod}]", r"items\[0\]\.kind"),
    (b"kind: List\nitems: 3", r"document 1\.items"),
    (b"{apiVersion: v1, kind: Namespace, metadata: {name: a, labels: {x: [1]}}}", r"metadata\.labels"),
    (b"kind: [", r"dump.yaml line \d+: not YAML or JSON"),
])
def test_malformed_dump_names_the_field(dump: bytes, field: str, tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=field):
        load_dump(dump, "dump.yaml")


POLICY_AUDIT_HEADER = ("startTime,endTime,endpointSelector,namespaceNames,namespaceSelector,serviceAccountNames,"
                       "serviceAccountSelectors,numCreatedPolicies,numModifiedPolicies,numDeletedPolicies\n")


def test_policy_audit_whole_cluster(cluster: Any) -> None:
    reporter.run(cluster, "c1", report("changes", rtype="policy-audit"), START, END, END)
    back = reporter.stored(cluster, "c1", "changes", END)
    files = policy_audit.downloads(back)
    # the refused (403) update of db-ingress is no change; create at 03:00, patch at 09:00, delete at 18:00
    assert files["summary.csv"] == POLICY_AUDIT_HEADER + "2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,,,,,,1,1,1"
    events = orjson.loads(files["events.json"])
    assert [(e["verb"], e["objectRef"]["name"], e["requestReceivedTimestamp"]) for e in events] == [
        ("create", "default.hep-all", "2026-12-01T03:00:00.000000Z"),
        ("patch", "default.web-ingress", "2026-12-01T09:00:00.000000Z"),
        ("delete", "default.global-egress", "2026-12-01T18:00:00.000000Z")]
    assert events[1]["responseObject"]["spec"]["ingress"] == [{"action": "Allow", "protocol": "TCP"}]
    assert "cluster" not in events[0] and "generated_time" not in events[0]
    assert yaml.safe_load(files["events.yaml"]) == events
    assert set(reporter.downloads(back)) == {"summary.csv", "events.json", "events.yaml", "report.json",
                                             "summary.html"}


def test_policy_audit_scoped_to_policies_of_in_scope_endpoints(cluster: Any) -> None:
    spec = {"namespaces": {"selector": 'team == "web"'}}
    reporter.run(cluster, "c1", report("shop-changes", spec, rtype="policy-audit"), START, END, END)
    files = policy_audit.downloads(reporter.stored(cluster, "c1", "shop-changes", END))
    assert files["summary.csv"] == POLICY_AUDIT_HEADER + (
        '2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,,,"team == ""web""",,,0,1,0')
    assert [e["objectRef"]["name"] for e in orjson.loads(files["events.json"])] == ["default.web-ingress"]


def test_network_access(cluster: Any) -> None:
    reporter.run(cluster, "c1", report("access", rtype="network-access"), START, END, END)
    files = network_access.downloads(reporter.stored(cluster, "c1", "access", END))
    assert files["summary.csv"] == (
        "startTime,endTime,endpointSelector,namespaceNames,namespaceSelector,serviceAccountNames,"
        "serviceAccountSelectors,endpointsNumIngressProtected,endpointsNumEgressProtected,"
        "endpointsNumIngressUnprotected,endpointsNumEgressUnprotected,endpointsNumIngressFromInternet,"
        "endpointsNumEgressToInternet,endpointsNumIngressFromOtherNamespace,endpointsNumEgressToOtherNamespace,"
        "endpointsNumEnvoyEnabled\n"
        "2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,,,,,,3,1,2,4,2,2,4,2,1")
    db_policies = "GlobalNetworkPolicy(default.global-egress);NetworkPolicy.networking.k8s.io/v1(data/db-ingress)"
    web_policies = "GlobalNetworkPolicy(default.web-egress);NetworkPolicy(shop/default.web-ingress)"
    assert files["endpoints.csv"] == (
        "endpoint,ingressProtected,egressProtected,ingressFromInternet,egressToInternet,ingressFromOtherNamespace,"
        "egressToOtherNamespace,envoyEnabled,appliedPolicies,trafficAggregationPrefix,"
        "endpointsGeneratingTrafficToThisEndpoint,endpointsReceivingTrafficFromThisEndpoint\n"
        "HostEndpoint(node1-eth0),false,false,false,false,false,false,false,GlobalNetworkPolicy(default.hep-all),"
        "node1-eth0,Pod.v1(data/db-1),\n"
        f"Pod.v1(data/db-1),true,false,false,false,true,false,false,{db_policies},db-1,Pod.v1(shop/web-*),"
        "HostEndpoint(node1-eth0)\n"
        f"Pod.v1(data/db-2),true,false,false,false,true,false,false,{db_policies},,,\n"
        f"Pod.v1(shop/web-1),true,true,true,true,true,true,true,{web_policies},web-*,Network(pub),"
        "GlobalNetworkSet(public-dns);Pod.v1(data/db-1)\n"
        f"Pod.v1(shop/web-2),false,false,true,true,true,true,false,{web_policies},web-*,Network(pub),"
        "GlobalNetworkSet(public-dns);Pod.v1(data/db-1)\n")


def test_history_and_diff(cluster: Any) -> None:
    six = START + timedelta(hours=6)
    reporter.run(cluster, "c1", report("hist"), START, six, six)
    reporter.run(cluster, "c1", report("hist"), six, END, END)
    runs = history.runs(cluster, "c1", "hist", since=START, until=END)
    assert [r["id"] for r in runs] == ["hist_2026-12-02T00:00:00Z", "hist_2026-12-01T06:00:00Z"]
    assert runs[1]["endpointsSummary"]["numTotal"] == 4 and runs[0]["endpointsSummary"]["numTotal"] == 5
    older, newer = (reporter.stored(cluster, "c1", "hist", t) for t in (six, END))
    d = history.compare(cluster, "c1", older, newer)
    assert d["endpointsAppeared"] == ["Pod.v1(data/db-2)"] and d["endpointsVanished"] == []
    assert d["becameIngressUnprotected"] == ["Pod.v1(shop/web-2)"]
    assert d["becameEgressUnprotected"] == ["Pod.v1(data/db-1)", "Pod.v1(shop/web-2)"]
    assert d["becameIngressProtected"] == ["HostEndpoint(node1-eth0)"] and d["becameEgressProtected"] == []
    assert d["policiesAppeared"] == [] and d["policiesVanished"] == []
    assert d["policiesChanged"] == ["NetworkPolicy(shop/default.web-ingress)"]  # patched at 09:00
    page = reporter.downloads(newer)["summary.html"]
    assert "<td>Pod.v1(shop/web-2)</td><td>NO</td><td>NO</td>" in page and "endpointsSummary.numTotal" in page
