"""The JSON endpoints the UI added: the flow graph, event dismissal, whoami and the log type catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from margay.query.graph import edge_selector
from margay.store.duckdb.dismissals import Dismissals

from .conftest import RESTRICTED, Site, make_site

RANGE = {"from": "now-3h", "to": "now"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]) -> Iterator[Site]:
    """The simulated site on each engine: the graph and dismissals are the same product on both."""
    yield from make_site(tmp_path_factory, module_engine)


def call(site: Site, path: str, body: Any = None, *, token: str | None = None, cluster: str = "cluster",
         method: str = "POST") -> httpx.Response:
    return httpx.request(method, site.url + path, json=body, timeout=60,
                         headers={"authorization": f"Bearer {token or site.token}", "x-cluster-id": cluster})


def graph(site: Site, **body: Any) -> dict[str, Any]:
    r = call(site, "/api/v1/flows/graph", {"time_range": RANGE, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_graph_namespaces_and_denied_pairs_match_the_topology(site: Site) -> None:
    g = graph(site, max_nodes=200)
    ids = {n["id"] for n in g["nodes"]}
    ct = site.topo.cluster("cluster")
    assert {f"ns|{ns}" for ns in ct.namespaces} <= ids
    assert not g["truncated"]
    # Every namespace-level pair of the topology's matrix is an edge, with deny wherever only denies exist.
    edges = {(e["source"], e["target"]): e for e in g["edges"]}
    expected: dict[tuple[str, str], set[str]] = {}
    for e in ct.edges:
        if e.src.type == "wep" and e.dst.type == "wep":
            expected.setdefault((f"ns|{e.src.namespace}", f"ns|{e.dst.namespace}"), set()).add(e.action)
    for pair, actions in expected.items():
        assert pair in edges, pair
        want = "allow" if actions == {"allow"} else "deny" if actions == {"deny"} else "mixed"
        assert edges[pair]["action"] == want, (pair, edges[pair])


def test_expanded_graph_has_workloads_services_and_the_known_denied_pair(site: Site) -> None:
    g = graph(site, expand=["shop", "data"], max_nodes=300)
    nodes = {n["id"]: n for n in g["nodes"]}
    web = next(i for i in nodes if i.startswith("wl|shop|web-"))
    assert nodes[web]["parent"] == "ns|shop" and nodes["ns|shop"]["expanded"]
    assert nodes["svc|data|db"]["type"] == "service"
    edge = next(e for e in g["edges"] if e["source"] == web and e["target"] == "svc|data|db")
    assert edge["action"] == "deny"
    # The edge's selector lists exactly that edge's flows.
    flows = call(site, "/api/v1/flows", {"time_range": RANGE, "selector": edge["selector"], "max_page_size": 100}).json()
    assert flows["items"]
    for f in flows["items"]:
        k = f["key"]
        assert (k["source"]["namespace"], k["destination"]["namespace"]) == ("shop", "data")
        assert k["source"]["aggregated_name"].startswith("web-") and k["destination"]["aggregated_name"].startswith("db-")


def test_graph_node_cap_folds_the_rest_into_one_more_node(site: Site) -> None:
    g = graph(site, expand=["shop", "data", "payments"], max_nodes=8)
    assert g["truncated"] and g["hidden_nodes"] > 0
    more = next(n for n in g["nodes"] if n["type"] == "more")
    assert more["label"] == f"{g['hidden_nodes']} more"
    assert len([n for n in g["nodes"] if not n.get("expanded")]) <= 8


def test_graph_rejects_bad_parameters(site: Site) -> None:
    assert call(site, "/api/v1/flows/graph", {"max_nodes": 1}).status_code == 400
    bad = call(site, "/api/v1/flows/graph", {"by_cluster": "yes"})
    assert bad.status_code == 400 and "by_cluster" in bad.json()["error"]["message"]
    r = call(site, "/api/v1/flows/graph", {"selector": "action = "})
    assert r.status_code == 400 and "position" in r.json()["error"]["details"]


def test_restricted_user_graph_and_whoami(site: Site) -> None:
    me = call(site, "/api/v1/whoami", token=RESTRICTED, method="GET").json()
    assert me["clusters"] == ["app-cluster-1"] and "all_clusters" not in me  # not even how many it may not read
    assert call(site, "/api/v1/flows/graph", {"time_range": RANGE}, token=RESTRICTED).status_code == 403
    ok = call(site, "/api/v1/flows/graph", {"time_range": RANGE}, token=RESTRICTED, cluster="app-cluster-1")
    assert ok.status_code == 200 and ok.json()["clusters"] == ["app-cluster-1"]


def test_logtypes_catalog(site: Site) -> None:
    items = {t["name"]: t for t in call(site, "/api/v1/logtypes", method="GET").json()["items"]}
    assert set(items) == {"flows", "dns", "audit", "bgp", "events", "l7", "waf", "policy_activity", "runtime"}
    assert "dest_namespace" in {k["name"] for k in items["flows"]["keys"]}
    assert items["audit"]["types"] == ["audit_ee", "audit_kube"]


def test_dismissal_overlay_is_applied_to_reads(site: Site) -> None:
    body = {"time_range": RANGE, "selector": "dismissed = false AND type = \"gtf_suspicious_flow\"", "max_page_size": 100}
    active = call(site, "/api/v1/events", body, cluster="app-cluster-1").json()
    assert active["items"]
    target = active["items"][-1]["id"]
    res = call(site, "/api/v1/events/bulk", {"ids": [target, "no-such-id"]}, cluster="app-cluster-1", method="PUT").json()
    assert res["succeeded"] == 1 and res["errors"][0]["id"] == "no-such-id"
    after = call(site, "/api/v1/events", body, cluster="app-cluster-1").json()
    assert after["total_hits"] == active["total_hits"] - 1 and target not in {e["id"] for e in after["items"]}
    dismissed = call(site, "/api/v1/events", {**body, "selector": f'dismissed = true AND id = "{target}"'},
                     cluster="app-cluster-1").json()
    assert [e["dismissed"] for e in dismissed["items"]] == [True]
    # NOT and != see the overlay too; the same id in another cluster is untouched.
    neg = call(site, "/api/v1/events", {**body, "selector": f'NOT dismissed != false AND id = "{target}"'},
               cluster="app-cluster-1").json()
    assert neg["total_hits"] == 0
    # Aggregations see it as well.
    agg = call(site, "/api/v1/events/aggregation", {"time_range": RANGE, "selector": "dismissed = true",
                                                    "aggregations": {"i": {"terms": {"field": "id", "size": 1000}}}},
               cluster="app-cluster-1").json()
    assert target in {b["key"] for b in agg["i"]["buckets"]}
    # and the Elasticsearch API's hits (the embedded engine's overlay marks them as the Linseed reads do)
    es = call(site, "/es/tigera_secure_ee_events.app-cluster-1.*/_search",
              {"query": {"term": {"id": target}}, "size": 5}).json()
    assert [h["_source"]["dismissed"] for h in es["hits"]["hits"]] == [True], es


def test_dismiss_needs_read_access_to_the_cluster(site: Site) -> None:
    r = call(site, "/api/v1/events/bulk", {"ids": ["x"]}, token=RESTRICTED, cluster="cluster", method="PUT")
    assert r.status_code == 403


def test_dismissals_survive_a_restart(tmp_path: Path) -> None:
    d = Dismissals(tmp_path)
    assert d.add("c1", ["a", "b", "a"]) == ["a", "b"]
    assert d.add("c1", ["a"]) == []
    with open(tmp_path / "events" / "dismissed.ndjson", "ab") as fh:
        fh.write(b'{"cluster": "c1", "id": "tor')  # a torn line from a crash mid-append
    again = Dismissals(tmp_path)
    assert again.ids("c1") == {"a", "b"} and again.ids("c2") == frozenset()


@pytest.mark.parametrize("s,d,sel", [
    ("ns|shop", "ns|data", 'source_type = "wep" AND source_namespace = "shop" AND dest_type = "wep" AND dest_namespace = "data"'),
    ("svc|data|db", "wl|data|db-*", 'dest_service_namespace = "data" AND dest_service_name = "db" AND dest_namespace = "data" '
                                    'AND dest_name_aggr = "db-*"'),
    ("more|", "ns|data", None),
])
def test_edge_selectors(s: str, d: str, sel: str | None) -> None:
    assert edge_selector(s, d, None) == sel
