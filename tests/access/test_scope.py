"""Namespace-scoped reads: a RoleBinding in namespace shop shows only records touching shop, others withheld."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.query.restriction import WITHHELD, Restriction
from margay.testing.server import ServerThread

from .conftest import RBAC, TOKENS, Rig, kube_people, write_tokens

PAIRS = [("shop", "shop"), ("shop", "db"), ("db", "shop"), ("db", "db")]
WIDE = {"time_range": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}


def flows() -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    return b"\n".join(orjson.dumps(dict(base, source_namespace=s, dest_namespace=d, source_name_aggr=f"{s}-src-*",
                                        dest_name_aggr=f"{d}-dst-*", dest_ip="10.9.9.9", source_ip="10.8.8.8",
                                        dest_labels={"labels": [f"app={d}"]}, process_name=f"/bin/{s}-tool",
                                        process_id=f"{s}{d}", policies=_policies(s, d)))
                      for s, d in PAIRS)


def _policies(s: str, d: str) -> dict[str, list[str]]:
    """Both sides' namespaced policies judged the flow: their names name the namespaces."""
    hits = [f"0|default|{s}/default.{s}-src-egress|allow|0", f"1|default|{d}/default.{d}-dst-ingress|allow|0"]
    return {"all_policies": hits, "enforced_policies": hits, "pending_policies": [], "transit_policies": []}


def waf() -> bytes:
    """WAF logs between the pairs: each endpoint is an object (`source.name`, `destination.namespace`); each also
    carries keys no WAF field declares (kept and returned as sent) whose text names the destination."""
    base = orjson.loads(SAMPLES["waf"][0])
    return b"\n".join(orjson.dumps(dict(base, source={"ip": "10.8.8.8", "name": f"{s}-src-0", "namespace": s},
                                        destination={"ip": "10.9.9.9", "hostname": f"{d}-dst", "name": f"{d}-dst-0",
                                                     "namespace": d}, path=f"/{s}-src-0/to/{d}-dst-0",
                                        headers={"Host": f"{d}-dst.{d}.svc"}, request_line=f"GET http://{d}-dst/",
                                        rules=[{"id": "930100", "message": f"Path Traversal Attack on {d}-dst-0",
                                                "file": f"/etc/waf/{d}-dst-0.conf", "severity": "critical"}]))
                      for s, d in PAIRS)


def events() -> bytes:
    """Events whose text names the other side: withheld from a scoped reader like the side itself."""
    return b"\n".join(orjson.dumps({"id": f"ev-{s}-{d}", "time": 1700000000, "type": "global_alert", "severity": 50,
                                    "source_namespace": s, "dest_namespace": d, "source_name": f"{s}-src-0",
                                    "dest_name": f"{d}-dst-0", "description": f"{s}-src-0 talked to {d}-dst-0",
                                    "record": {"peer": f"{d}-dst-0"}}) for s, d in PAIRS)


@pytest.fixture(scope="module", params=["local", pytest.param("kube", marks=pytest.mark.rig)])
def scoped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           module_engine: dict[str, Any]) -> Iterator[Rig]:
    """Local RBAC from YAML, and `--kubeconfig` against the real API server (namespaced SubjectAccessReviews),
    each on both engines."""
    base = tmp_path_factory.mktemp("scope")
    if module_engine["backend"] == "opensearch":  # each RBAC source its own indices on the shared engine
        module_engine = {**module_engine, "opensearch_prefix": f"{module_engine['opensearch_prefix']}{request.param}-"}
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    people: dict[str, str] = {}
    if request.param == "local":
        write_tokens(base / "tokens.yaml", TOKENS)
        settings = Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                            admin_token=True, **module_engine)
    else:
        kube = request.getfixturevalue("kube")
        people = kube_people(kube)
        write_tokens(base / "tokens.yaml", {n: e for n, e in TOKENS.items() if "cluster" in e})
        settings = Settings(data_dir=base / "data", tokens=base / "tokens.yaml", admin_token=True,
                            kubeconfig=kube.kubeconfig_for("margay", base / "kubeconfig"), **module_engine)
    app = create_app(settings)
    with ServerThread(app) as server:
        rig = Rig(server.url, app.state.margay.access.admin_token, base / "tokens.yaml")
        rig.people = people
        for path, body, ctype in [("/api/v1/flows/logs/bulk", flows(), "application/x-ndjson"),
                                  ("/api/v1/dns/logs/bulk", "\n".join(SAMPLES["dns"]).encode(), "application/x-ndjson"),
                                  ("/api/v1/audit/logs/kube/bulk", "\n".join(SAMPLES["audit_kube"]).encode(),
                                   "application/x-ndjson"),
                                  ("/api/v1/bgp/logs/bulk", "\n".join(SAMPLES["bgp"]).encode(), "text/plain"),
                                  ("/api/v1/events/bulk", events(), "application/x-ndjson"),
                                  ("/api/v1/waf/logs/bulk", waf(), "application/x-ndjson")]:
            r = rig.post("admin", path, None, cluster="east", content=body, headers={"content-type": ctype})
            assert r.status_code == 200, r.text
        yield rig
        rig.http.close()


def test_flows_touching_the_namespace_with_the_other_side_withheld(scoped: Rig) -> None:
    r = scoped.post("frank", "/api/v1/flows/logs", WIDE, cluster="east")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    seen = sorted((i["source_namespace"], i["dest_namespace"]) for i in items)
    assert seen == sorted(p for p in PAIRS if "shop" in p)
    for i in items:
        if i["dest_namespace"] != "shop":
            assert i["dest_name_aggr"] == WITHHELD and i["dest_ip"] == WITHHELD and i["dest_labels"] is None
            assert i["withheld"] == ["dest"]
        if i["source_namespace"] != "shop":
            assert i["source_name_aggr"] == WITHHELD and i["source_ip"] == WITHHELD and i["withheld"] == ["source"]
    assert "db-src-" not in r.text and "db-dst-" not in r.text and "app=db" not in r.text
    # the policies that judged a flow are both sides': withheld with either
    assert [i["policies"] for i in items if i.get("withheld")] == [None, None]
    assert [len(i["policies"]["all_policies"]) for i in items if not i.get("withheld")] == [2]
    probe = {**WIDE, "selector": 'policies.all_policies = "1|default|db/default.db-dst-ingress|allow|0"'}
    r = scoped.post("frank", "/api/v1/flows/logs", probe, cluster="east")
    assert r.status_code == 200 and r.json()["total_hits"] == 0, r.text  # no oracle on them either
    assert scoped.post("admin", "/api/v1/flows/logs", probe, cluster="east").json()["total_hits"] == 2
    # The administrator sees all four, nothing withheld.
    assert len(scoped.post("admin", "/api/v1/flows/logs", WIDE, cluster="east").json()["items"]) == 4


def test_fields_of_a_side_only_read_records_where_that_side_is_in_scope(scoped: Rig) -> None:
    r = scoped.post("frank", "/api/v1/flows/fields/dest_name_aggr/values", WIDE, cluster="east")
    assert {v["value"] for v in r.json()["values"]} == {"shop-dst-*"}
    r = scoped.post("frank", "/api/v1/flows/logs", {**WIDE, "selector": 'dest_name_aggr = "db-dst-*"'}, cluster="east")
    assert r.json()["total_hits"] == 0  # no oracle on withheld names
    aggs = {"d": {"terms": {"field": "dest_name_aggr"}}, "n": {"terms": {"field": "action"}}}
    r = scoped.post("frank", "/api/v1/flows/logs/aggregation", {**WIDE, "aggregations": aggs}, cluster="east")
    assert {b["key"] for b in r.json()["d"]["buckets"]} == {"shop-dst-*"}


def test_l3_flows_withhold_out_of_scope_endpoints(scoped: Rig) -> None:
    r = scoped.post("frank", "/api/v1/flows", WIDE, cluster="east")
    items = r.json()["items"]
    names = {(i["key"]["source"]["aggregated_name"], i["key"]["destination"]["aggregated_name"]) for i in items}
    assert names == {("shop-src-*", "shop-dst-*"), ("shop-src-*", WITHHELD), (WITHHELD, "shop-dst-*")}
    assert "db-" not in r.text


def test_dns_by_client_and_audit_by_object_namespace(scoped: Rig) -> None:
    items = scoped.post("frank", "/api/v1/dns/logs", WIDE, cluster="east").json()["items"]
    assert items and all(i["client_namespace"] == "shop" for i in items)
    for server in items[0].get("servers") or []:
        if server.get("namespace") != "shop":
            assert server["name"] == WITHHELD
    audit = scoped.post("frank", "/api/v1/audit/logs", {**WIDE, "type": "kube"}, cluster="east").json()["items"]
    assert audit and all(i["objectRef"]["namespace"] == "shop" for i in audit)


def test_no_namespace_no_access_and_other_clusters_refused(scoped: Rig) -> None:
    assert scoped.post("frank", "/api/v1/bgp/logs", WIDE, cluster="east").status_code == 403
    assert scoped.post("frank", "/api/v1/flows/logs", WIDE, cluster="west").status_code == 403
    indices = scoped.get("frank", "/api/v1/indices").json()["items"]
    assert {(i["log_type"], i["docs"]) for i in indices} == {("flows", None), ("dns", None), ("audit_kube", None),
                                                             ("events", None), ("waf", None)}


def test_scope_filter_is_parameterised() -> None:
    from margay.logtypes import REGISTRY
    from margay.query.restriction import Restriction
    from margay.query.sql import compile_selector

    hostile = "x'); DROP TABLE t; --"
    node = Restriction({"east": frozenset({hostile})}).selector(REGISTRY["flows"], ["west", "east"])
    assert node is not None
    sql, params = compile_selector(node, REGISTRY["flows"])
    assert "DROP" not in sql and any(hostile == p or (isinstance(p, list) and hostile in p) for p in params)


def test_l7_gateway_hostnames_are_withheld_with_the_destination() -> None:
    """A gateway's route and listener hostnames name the destination's host as its URL does."""
    rec = dict(orjson.loads(SAMPLES["l7"][0]), cluster="east", src_namespace="shop", dest_namespace="db",
               gateway_route_hostname="secret.db.internal", gateway_listener_hostname="db.example",
               gateway_route_name="db-route")
    (out,) = Restriction({"east": frozenset({"shop"})}).withhold(REGISTRY["l7"], [dict(rec)])
    assert out["withheld"] == ["dest"] and "secret.db" not in orjson.dumps(out).decode()
    assert {out[k] for k in ("gateway_route_hostname", "gateway_listener_hostname", "gateway_route_name")} == {
        "<withheld>"}
    (whole,) = Restriction({"east": frozenset({"shop", "db"})}).withhold(REGISTRY["l7"], [dict(rec)])
    assert whole["gateway_route_hostname"] == "secret.db.internal"


def test_access_log_names_the_caller(scoped: Rig, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level("INFO", logger="margay.access"):
        scoped.post("frank", "/api/v1/flows/logs", WIDE, cluster="east")
    lines = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "margay.access"
             and r.getMessage().startswith("{")]
    line = lines[-1]
    assert line["user"] == "frank" and line["returned"] == 3 and line["namespaces"] == {"east": ["shop"]}
    assert line["types"] == ["flows"] and line["clusters"] == ["east"]


def test_graph_multi_cluster_events_and_msearch_withhold_too(scoped: Rig) -> None:
    """The other read paths of a scoped reader: the flow graph, a _MULTI_ read, events (their text too) and
    the Elasticsearch API's _msearch -- no name of the db side appears; the administrator sees them."""
    graph = scoped.post("frank", "/api/v1/flows/graph", {**WIDE, "expand": ["shop", "db"]}, cluster="east")
    assert graph.status_code == 200, graph.text
    assert "withheld|" in graph.text and "db-src-" not in graph.text and "db-dst-" not in graph.text
    assert "db-dst-" in scoped.post("admin", "/api/v1/flows/graph", {**WIDE, "expand": ["shop", "db"]},
                                    cluster="east").text
    multi = scoped.post("frank", "/api/v1/flows/logs", {**WIDE, "clusters": ["east"]}, cluster="_MULTI_")
    assert multi.status_code == 200 and len(multi.json()["items"]) == 3 and "db-src-" not in multi.text
    ev = scoped.post("frank", "/api/v1/events", WIDE, cluster="east")
    assert ev.status_code == 200 and len(ev.json()["items"]) == 3, ev.text
    assert "db-src-0" not in ev.text and "db-dst-0" not in ev.text
    assert "db-dst-0" in scoped.post("admin", "/api/v1/events", WIDE, cluster="east").text
    # An event's id may name both endpoints (a threat-feed event's holds both IPs and ports): withheld with a side
    assert sorted(i["id"] for i in ev.json()["items"]) == ["<withheld>", "<withheld>", "ev-shop-shop"], ev.text
    lines = b"".join(orjson.dumps(x) + b"\n" for x in ({"index": "tigera_secure_ee_flows.east.*"}, {"size": 50},
                                                        {"index": "tigera_secure_ee_events.*"}, {"size": 50}))
    ms = scoped.http.post("/es/_msearch", content=lines, headers={"authorization": f"Bearer {scoped.token('frank')}",
                                                                  "content-type": "application/x-ndjson"})
    assert ms.status_code == 200 and [r["status"] for r in ms.json()["responses"]] == [200, 200], ms.text
    assert all(r["hits"]["hits"] for r in ms.json()["responses"])
    assert "db-src-" not in ms.text and "db-dst-" not in ms.text
    assert "ev-shop-db" not in ms.text and "ev-db-shop" not in ms.text and "ev-shop-shop" in ms.text  # no `_id` either


def test_deleting_events_needs_the_delete_verb_and_touches_only_readable_events(scoped: Rig) -> None:
    docs = [{"id": f"del-{ns}", "time": 1700000000, "type": "global_alert", "severity": 5, "description": "x",
             "source_namespace": ns, "dest_namespace": ns} for ns in ("shop", "db")]
    r = scoped.post("admin", "/api/v1/events/bulk", None, cluster="east",
                    content=b"\n".join(orjson.dumps(d) for d in docs), headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text

    def delete(who: str, ids: list[str]) -> Any:
        return scoped.http.request("DELETE", "/api/v1/events/bulk", json={"ids": ids},
                                   headers={"authorization": f"Bearer {scoped.token(who)}", "x-cluster-id": "east"})

    for who in ("grafana", "frank", "writer-east", "mallory"):  # read-only, scoped read-only, writer, nobody
        r = delete(who, ["del-shop", "del-db"])
        assert r.status_code == 403 and set(r.json()) == {"error"} and "del-" not in r.text, (who, r.text)
    r = delete("ivan", ["del-shop", "del-db"])  # delete in namespace shop: the db event is not found for ivan
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 2, "succeeded": 1, "failed": 1, "deleted": [{"id": "del-shop", "status": 200}],
                        "errors": [{"id": "del-db", "status": 404, "reason": "no event with this id in cluster east"}]}
    left = {i["id"] for i in scoped.post("admin", "/api/v1/events", WIDE, cluster="east").json()["items"]}
    assert "del-db" in left and "del-shop" not in left


def test_dns_flows_of_a_scoped_reader_are_its_clients_only(scoped: Rig) -> None:
    r = scoped.post("frank", "/api/v1/dns/flows", WIDE, cluster="east")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and {i["key"]["source"]["namespace"] for i in items} == {"shop"}
    every = scoped.post("admin", "/api/v1/dns/flows", WIDE, cluster="east").json()["items"]
    assert len(every) > len(items)


def test_waf_logs_withhold_the_other_endpoint_inside_its_object(scoped: Rig) -> None:
    r = scoped.post("frank", "/api/v1/waf/logs", WIDE, cluster="east")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert sorted((i["source"]["namespace"], i["destination"]["namespace"]) for i in items) == sorted(
        p for p in PAIRS if "shop" in p)
    for i in items:
        if i["destination"]["namespace"] != "shop":
            assert i["destination"]["name"] == WITHHELD and i["destination"]["ip"] == WITHHELD
            assert i["destination"]["hostname"] == WITHHELD and i["withheld"] == ["dest"]
            assert i["path"] == WITHHELD  # the request's text may name the other side
            assert [(r["id"], r["message"], r["file"]) for r in i["rules"]] == [("930100", WITHHELD, WITHHELD)]
        if i["source"]["namespace"] != "shop":
            assert i["source"]["name"] == WITHHELD and i["withheld"] == ["source"]
        if i.get("withheld"):  # so may the keys no WAF field declares (kept and returned as sent)
            assert i["headers"] is None and i["request_line"] == WITHHELD
        else:
            assert i["headers"] == {"Host": "shop-dst.shop.svc"} and i["request_line"] == "GET http://shop-dst/"
    assert "db-src-" not in r.text and "db-dst" not in r.text
    hidden = scoped.post("frank", "/api/v1/waf/logs", {**WIDE, "selector": 'destination.name = "db-dst-0"'},
                         cluster="east")
    assert hidden.status_code == 200 and hidden.json()["total_hits"] == 0  # no oracle on withheld names
    es = scoped.http.post("/es/tigera_secure_ee_waf.east.*/_search", json={"size": 10},
                          headers={"authorization": f"Bearer {scoped.token('frank')}"})
    assert es.status_code == 200 and len(es.json()["hits"]["hits"]) == 3, es.text
    assert "db-src-" not in es.text and "db-dst" not in es.text, es.text
    assert len(scoped.post("admin", "/api/v1/waf/logs", WIDE, cluster="east").json()["items"]) == 4


def test_processes_of_a_scoped_reader_come_from_flows_it_sees_whole(scoped: Rig) -> None:
    """The process fields belong to the reporting endpoint and are withheld with any side: a scoped reader's
    process groups come only from flows whose both endpoints are in its namespaces."""
    r = scoped.post("frank", "/api/v1/processes", WIDE, cluster="east")
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [{"name": "/bin/shop-tool", "endpoint": "shop-src-*", "instanceCount": 1,
                                   "cluster": "east"}]}
    every = scoped.post("admin", "/api/v1/processes", WIDE, cluster="east").json()["items"]
    assert every == [{"name": "/bin/db-tool", "endpoint": "db-src-*", "instanceCount": 2, "cluster": "east"},
                     {"name": "/bin/shop-tool", "endpoint": "shop-src-*", "instanceCount": 2, "cluster": "east"}]
    assert scoped.post("frank", "/api/v1/processes", WIDE, cluster="west").status_code == 403


def test_all_clusters_names_no_cluster_to_a_reader_of_none(scoped: Rig) -> None:
    """`all_clusters: true` names no cluster; a caller who may read none gets a 403 that names none either
    (this server stores one cluster: the 403 named it, while GET /api/v1/clusters lists nothing to them)."""
    assert scoped.get("mallory", "/api/v1/clusters").json() == {"items": [], "total": 0}
    for who, path in (("mallory", "/api/v1/flows/logs"), ("mallory", "/api/v1/processes"),
                      ("mallory", "/api/v1/waf/logs/aggregation"), ("alice", "/api/v1/dns/logs")):
        r = scoped.post(who, path, {**WIDE, "all_clusters": True}, cluster="_MULTI_")
        assert r.status_code == 403 and "any cluster" in r.text and "east" not in r.text, (who, path, r.text)
    named = scoped.post("mallory", "/api/v1/flows/logs", WIDE, cluster="east")
    assert named.status_code == 403 and "of east" in named.text  # the caller's own words may be said back


def test_a_scoped_reader_cannot_dry_run_an_alert_over_whole_clusters(scoped: Rig) -> None:
    """frank may create GlobalAlerts but reads east only in namespace shop: a dry run's events (counted over the
    whole cluster, with their records) named the db endpoints. It is refused; a cluster-wide reader's is not."""
    alert = {"metadata": {"name": "pairs"}, "spec": {
        "description": "${source_name_aggr} to ${dest_name_aggr}", "severity": 50, "dataSet": "flows",
        "aggregateBy": ["source_name_aggr", "dest_name_aggr"], "metric": "count", "condition": "gte", "threshold": 1}}
    body = {"alert": alert, "from": "2023-11-10T00:00:00Z", "to": "2023-11-20T00:00:00Z"}
    r = scoped.post("frank", "/apis/projectcalico.org/v3/globalalerts/-/dry-run", body)
    assert r.status_code == 403 and "db-" not in r.text and "some namespaces of east" in r.text, r.text
    every = scoped.post("admin", "/apis/projectcalico.org/v3/globalalerts/-/dry-run", body)
    assert every.status_code == 200 and every.json()["events"] == len(PAIRS), every.text


def test_a_scoped_reader_cannot_save_an_alert_over_whole_clusters(scoped: Rig) -> None:
    """Saving the alert is refused as its dry run is: once saved it runs over every cluster and its events carry
    the records it found (the namespaces frank may not read). A reader of flows of every cluster may save it."""
    alert = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": "pairs"},
             "spec": {"description": "x", "severity": 50, "dataSet": "flows", "period": "1m", "lookback": "30m"}}
    path = "/apis/projectcalico.org/v3/globalalerts/pairs"
    put = scoped.http.put(path, json=alert, headers={"authorization": f"Bearer {scoped.token('frank')}"})
    assert put.status_code == 403 and "may not read flows logs of every cluster" in put.text, put.text
    assert scoped.get("admin", path).status_code == 404
    auth = {"authorization": f"Bearer {scoped.token('admin')}"}
    assert scoped.http.put(path, json=alert, headers=auth).status_code == 201
    assert scoped.http.delete(path, headers=auth).status_code == 200


def test_event_statistics_count_only_what_a_scoped_reader_may_see(scoped: Rig) -> None:
    """The statistics' per-field values and their severity histograms' selectors name fields of an endpoint as
    any read does: a value of a withheld endpoint is neither listed nor counted (it named db-src-0 / db-dst-0,
    and a histogram's selector on a withheld name counted the events holding it)."""
    def values(who: str, *names: str) -> dict[str, dict[str, int]]:
        fields = {f: {"count": True, "group_by_severity": True} for f in names}
        r = scoped.post(who, "/api/v1/events/statistics", {**WIDE, "field_values": fields}, cluster="east")
        assert r.status_code == 200, r.text
        return {f: {v["value"]: v["count"] for v in r.json()["field_values"][f]} for f in fields}

    # One side named: the events where that side is in shop; both: the events with both in shop (as aggregations).
    assert values("frank", "source_name") == {"source_name": {"shop-src-0": 2}}
    assert values("frank", "dest_name") == {"dest_name": {"shop-dst-0": 2}}
    assert values("frank", "source_name", "dest_name") == {"source_name": {"shop-src-0": 1},
                                                           "dest_name": {"shop-dst-0": 1}}
    assert values("admin", "dest_name") == {"dest_name": {"shop-dst-0": 2, "db-dst-0": 2}}
    probe = [{"name": "hidden", "selector": 'dest_name = "db-dst-0"'}, {"name": "seen", "selector": ""}]
    r = scoped.post("frank", "/api/v1/events/statistics", {**WIDE, "severity_histograms": probe}, cluster="east")
    assert r.status_code == 200, r.text
    histograms = r.json()["severity_histograms"]
    assert histograms["hidden"] == [] and sum(b["value"] for b in histograms["seen"]) == 3, r.text


def test_deleting_or_dismissing_an_id_leaves_the_events_outside_the_namespaces_alone(scoped: Rig) -> None:
    """Two events of east may carry one id (a writer's own ids; on two days they are two documents on OpenSearch
    too). ivan, who may delete east's events in namespace shop, deletes the shop one; frank, who reads them,
    dismisses the shop one: the db ones stay, undismissed (the embedded engine deleted and dismissed both)."""
    docs = [{"id": f"twin-{verb}", "time": 1700000000 + 86400 * k, "type": "global_alert", "severity": 5,
             "description": "x", "source_namespace": ns, "dest_namespace": ns}
            for verb in ("delete", "dismiss") for k, ns in enumerate(("shop", "db"))]
    r = scoped.post("admin", "/api/v1/events/bulk", None, cluster="east",
                    content=b"\n".join(orjson.dumps(d) for d in docs), headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["succeeded"] == 4, r.text
    for who, verb in (("ivan", "DELETE"), ("frank", "PUT")):
        r = scoped.http.request(verb, "/api/v1/events/bulk", json={"ids": [f"twin-{verb == 'PUT' and 'dismiss' or 'delete'}"]},
                                headers={"authorization": f"Bearer {scoped.token(who)}", "x-cluster-id": "east"})
        assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text
    left = scoped.post("admin", "/api/v1/events", {**WIDE, "selector": 'id IN {"twin-delete", "twin-dismiss"}'},
                       cluster="east").json()["items"]
    assert sorted((i["id"], i["source_namespace"], bool(i.get("dismissed"))) for i in left) == [
        ("twin-delete", "db", False), ("twin-dismiss", "db", False), ("twin-dismiss", "shop", True)]


def test_a_point_in_time_search_names_its_fields_as_any_search(scoped: Rig) -> None:
    """A point in time keeps the plans of its opening (no body): a search in it that named a withheld side's
    field, or asked for raw values, read them over the records where only the other side is in shop."""
    auth = {"authorization": f"Bearer {scoped.token('frank')}"}
    opened = scoped.http.post("/es/tigera_secure_ee_flows.east.*/_pit", params={"keep_alive": "1m"}, headers=auth)
    assert opened.status_code == 200, opened.text
    pit = {"id": opened.json()["id"], "keep_alive": "1m"}
    aggs = {"d": {"terms": {"field": "dest_name_aggr", "size": 10}}}
    r = scoped.http.post("/es/_search", json={"pit": pit, "size": 10, "aggs": aggs}, headers=auth)
    assert r.status_code == 200, r.text
    assert {b["key"] for b in r.json()["aggregations"]["d"]["buckets"]} == {"shop-dst-*"}, r.text
    probe = {"pit": pit, "size": 0, "query": {"term": {"dest_name_aggr": "db-dst-*"}}, "track_total_hits": True}
    r = scoped.http.post("/es/_search", json=probe, headers=auth)
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 0, r.text
    raw = scoped.http.post("/es/_search", json={"pit": pit, "size": 10, "docvalue_fields": ["dest_name_aggr"]},
                           headers=auth)
    assert raw.status_code == 403 and "db-dst-" not in raw.text, raw.text


def test_a_batch_of_aggregations_answers_each_item_as_its_own_route(scoped: Rig) -> None:
    """POST /api/v1/aggregations: each item narrowed as its route narrows it (frank's flows to shop), an item
    the reader may not read (gina's DNS) is that item's 403 while the others are answered."""
    items = [{"log_type": "flows", **WIDE, "aggregations": {"d": {"terms": {"field": "dest_name_aggr"}},
                                                            "n": {"terms": {"field": "action"}}}},
             {"log_type": "dns", **WIDE, "aggregations": {"q": {"terms": {"field": "qname"}}}},
             {"log_type": "events", **WIDE, "aggregations": {"d": {"terms": {"field": "dest_name"}}}},
             {"log_type": "audit", "type": "any", **WIDE, "aggregations": {"v": {"terms": {"field": "verb"}}}}]
    routes = {"flows": "flows/logs", "dns": "dns/logs", "events": "events", "audit": "audit/logs"}
    answers = {}
    for who in ("frank", "gina", "admin"):
        r = scoped.post(who, "/api/v1/aggregations", {"requests": items}, cluster="east")
        assert r.status_code == 200, r.text
        answers[who] = got = r.json()["responses"]
        for item, answer in zip(items, got, strict=True):
            body = {k: v for k, v in item.items() if k != "log_type"}
            alone = scoped.post(who, f"/api/v1/{routes[item['log_type']]}/aggregation", body, cluster="east")
            if alone.status_code == 200:
                assert answer == {"status": 200, "aggregations": alone.json(),
                                  "path": alone.headers["x-margay-aggregation-path"]}, (who, item["log_type"])
            else:
                assert answer == {"status": alone.status_code, **alone.json()}, (who, item["log_type"])
    assert {b["key"] for b in answers["frank"][0]["aggregations"]["d"]["buckets"]} == {"shop-dst-*"}
    assert {b["key"] for b in answers["admin"][0]["aggregations"]["d"]["buckets"]} == {"shop-dst-*", "db-dst-*"}
    assert "db-dst-0" not in orjson.dumps(answers["frank"]).decode()
    assert answers["gina"][1]["status"] == 403 and answers["gina"][1]["error"]["type"] == "forbidden"
    assert answers["gina"][0]["status"] == 200 and answers["gina"][0]["aggregations"]["d"]["buckets"]
    # Streamed, the same answers.
    r = scoped.post("gina", "/api/v1/aggregations", {"requests": items}, cluster="east",
                    headers={"accept": "application/x-ndjson"})
    lines = sorted((orjson.loads(x) for x in r.text.splitlines()), key=lambda x: x["index"])
    assert [{k: v for k, v in x.items() if k != "index"} for x in lines] == answers["gina"]
