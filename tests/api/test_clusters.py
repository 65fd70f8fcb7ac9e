"""A fleet through the native API, on both engines: GET /api/v1/clusters searches and pages the readable clusters,
and `all_clusters: true` reads every readable cluster without naming them (checked at the edge)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000
CLUSTERS = [f"prod-eu-{i:02d}" for i in range(12)] + [f"prod-us-{i:02d}" for i in range(12)] + ["lab"]
ANN = "tok-ann-reads-prod-us-0123456789"
ANN_READS = ["prod-us-01", "prod-us-02", "prod-us-03"]
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "three"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ANN_READS, "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ann"},
     "subjects": [{"kind": "User", "name": "ann"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "three"}},
]
WIDE = {"time_range": {"from": "2023-11-01T00:00:00Z", "to": "2023-12-01T00:00:00Z"}}


@pytest.fixture(scope="module")
def fleet(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("fleet")
    (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": ANN, "user": "ann"}]))
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True, **module_engine))
    admin = app.state.margay.access.admin_token
    record = orjson.loads(SAMPLES["flows"][0])
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        for n, c in enumerate(CLUSTERS):  # cluster n holds n + 1 flow records
            lines = b"\n".join(orjson.dumps(dict(record, start_time=T0 + i, end_time=T0 + i + 300))
                               for i in range(n + 1))
            r = http.post("/api/v1/flows/logs/bulk", content=lines, headers={
                "authorization": f"Bearer {admin}", "content-type": "application/x-ndjson", "x-cluster-id": c})
            assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        yield server.url, admin


def _get(url: str, token: str, **params: Any) -> httpx.Response:
    return httpx.get(url + "/api/v1/clusters", params=params, headers={"authorization": f"Bearer {token}"}, timeout=60)


def _flows(url: str, token: str, body: dict[str, Any], header: str | None = "_MULTI_") -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} | ({"x-cluster-id": header} if header else {})
    return httpx.post(url + "/api/v1/flows/logs/aggregation", timeout=60, headers=headers,
                      json={**WIDE, "aggregations": {"c": {"terms": {"field": "cluster", "size": 100}}}, **body})


def test_the_cluster_list_is_searched_and_paged_on_the_server(fleet: Any) -> None:
    url, admin = fleet
    everything = _get(url, admin).json()
    assert [i["cluster"] for i in everything["items"]] == sorted(CLUSTERS) and everything["total"] == len(CLUSTERS)
    assert everything["items"][0]["readable"]["flows"] == "full"
    us = _get(url, admin, q="us-0").json()
    assert [i["cluster"] for i in us["items"]] == [f"prod-us-{i:02d}" for i in range(10)] and us["total"] == 10
    seen: list[str] = []
    params: dict[str, Any] = {"q": "prod", "limit": 5}
    while True:
        page = _get(url, admin, **params).json()
        assert len(page["items"]) <= 5 and page["total"] == 24
        seen += [i["cluster"] for i in page["items"]]
        if "after" not in page:
            break
        params["after"] = page["after"]
    assert seen == sorted(c for c in CLUSTERS if c.startswith("prod"))
    assert _get(url, admin, q="nothing-like-it").json() == {"items": [], "total": 0}
    assert _get(url, admin, q="PROD-US").json()["total"] == 12  # names are lowercase: so is the search
    for params, field in (({"q": "prod_"}, "q"), ({"q": "a b"}, "q"), ({"q": "x" * 254}, "q"), ({"limit": "0"}, "limit"),
                          ({"limit": "1001"}, "limit"), ({"after": "Bad_Name"}, "after"), ({"prefix": "p"}, "prefix"),
                          # str.isdigit() takes "²", int() refuses it; and over 4,300 digits (was a 500 each)
                          ({"limit": "\u00b2"}, "limit"), ({"limit": "9" * 5000}, "limit")):
        r = _get(url, admin, **params)
        assert r.status_code == 400 and field in r.json()["error"]["message"], (params, r.text)


def test_a_scoped_reader_finds_only_their_clusters(fleet: Any) -> None:
    url, _ = fleet
    page = _get(url, ANN).json()
    assert [i["cluster"] for i in page["items"]] == ANN_READS and page["total"] == 3
    assert _get(url, ANN, q="eu").json() == {"items": [], "total": 0}  # the others are not even counted
    two = _get(url, ANN, limit=2).json()
    assert [i["cluster"] for i in two["items"]] == ANN_READS[:2] and two["after"] == ANN_READS[1]


def test_all_clusters_reads_every_readable_cluster_without_naming_them(fleet: Any) -> None:
    url, admin = fleet
    count = {c: n + 1 for n, c in enumerate(CLUSTERS)}
    r = _flows(url, admin, {"all_clusters": True})
    assert r.status_code == 200, r.text
    assert {b["key"]: b["doc_count"] for b in r.json()["c"]["buckets"]} == count
    listed = _flows(url, admin, {"clusters": CLUSTERS})
    assert listed.json() == r.json()  # the same answer as the full list
    # No header at all is the same request; RBAC still narrows it to the reader's clusters (in the engine).
    assert _flows(url, admin, {"all_clusters": True}, header=None).json() == r.json()
    ann = _flows(url, ANN, {"all_clusters": True})
    assert ann.status_code == 200 and {b["key"]: b["doc_count"] for b in ann.json()["c"]["buckets"]} == {
        c: count[c] for c in ANN_READS}
    page = httpx.post(url + "/api/v1/flows/logs", json={**WIDE, "all_clusters": True, "max_page_size": 1000},
                      headers={"authorization": f"Bearer {ANN}", "x-cluster-id": "_MULTI_"}, timeout=60).json()
    assert {i["cluster"] for i in page["items"]} == set(ANN_READS) and page["total_hits"] == sum(count[c] for c in ANN_READS)


@pytest.mark.parametrize("body,header,field", [
    ({"all_clusters": "yes"}, "_MULTI_", "all_clusters"),
    ({"all_clusters": 1}, "_MULTI_", "all_clusters"),
    ({"all_clusters": True, "clusters": ["lab"]}, "_MULTI_", "clusters"),
    ({"all_clusters": True}, "lab", "all_clusters"),
    ({"all_clusters": False}, "_MULTI_", "clusters"),
    ({"clusters": ["Bad_Name"]}, "_MULTI_", "clusters[0]"),
    ({"clusters": [f"c{i}" for i in range(10_001)]}, "_MULTI_", "clusters"),  # each name is authorized: bounded
])
def test_cluster_selection_is_checked_at_the_edge(fleet: Any, body: dict[str, Any], header: str, field: str) -> None:
    url, admin = fleet
    r = _flows(url, admin, body, header=header)
    assert r.status_code == 400 and field in r.json()["error"]["message"], r.text
