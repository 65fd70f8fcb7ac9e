"""RBAC on /es/, on both engines: index patterns expand only to what the caller may read; an unreadable
index looks exactly like a missing one; namespace-scoped readers get the filter inside the query and
every index its own plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from access.conftest import CLUSTERS, RBAC, TOKENS, token_of, write_tokens
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.testing.server import ServerThread


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]
       ) -> Iterator[tuple[httpx.Client, str]]:
    base: Path = tmp_path_factory.mktemp("es-rbac")
    write_tokens(base / "tokens.yaml", TOKENS)
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True, **module_engine))
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server, httpx.Client(base_url=server.url + "/es", timeout=30) as http:
        for name in ("flows", "dns", "audit_ee", "l7"):
            lt = REGISTRY[name]
            for cluster in CLUSTERS:
                r = http.post(f"{server.url}/api/v1{lt.bulk_path}", content="\n".join(SAMPLES[name]).encode(),
                              headers={"authorization": f"Bearer {admin}", "x-cluster-id": cluster,
                                       "content-type": "application/x-ndjson"})
                assert r.status_code == 200, r.text
        secret = orjson.loads(SAMPLES["flows"][0]) | {
            "source_namespace": "shop", "dest_namespace": "data", "dest_name_aggr": "secret-db-*",
            "dest_name": "secret-db-0", "dest_service_name": "secret-svc", "dest_ip": "10.99.0.1",
            "reporter": "dst", "process_name": "secret-proc"}
        r = http.post(f"{server.url}/api/v1/flows/logs/bulk", content=orjson.dumps(secret),
                      headers={"authorization": f"Bearer {admin}", "x-cluster-id": "east",
                               "content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        yield http, admin


def _search(http: httpx.Client, who: str, index: str, body: dict | None = None) -> httpx.Response:
    return http.post(f"/{index}/_search", json=body or {"size": 100, "aggs": {"c": {"terms": {"field": "cluster"}}}},
                     headers={"authorization": f"Bearer {token_of(who)}"})


def test_pattern_expands_to_readable_pairs_only(es: tuple[httpx.Client, str]) -> None:
    http, _ = es
    r = _search(http, "alice", "tigera_secure_ee_flows.*")  # alice: flows of east only
    assert r.status_code == 200, r.text
    assert {h["_index"].split(".")[1] for h in r.json()["hits"]["hits"]} == {"east"}
    assert [b["key"] for b in r.json()["aggregations"]["c"]["buckets"]] == ["east"]
    wide = _search(http, "alice", "tigera_secure_ee_*", {"size": 100})
    assert {h["_index"].split(".")[0] for h in wide.json()["hits"]["hits"]} == {"tigera_secure_ee_flows"}
    cat = http.get("/_cat/indices?format=json", headers={"authorization": f"Bearer {token_of('alice')}"})
    assert {row["index"].rsplit(".", 1)[0] for row in cat.json()} == {"tigera_secure_ee_flows.east"}


def test_an_unreadable_index_looks_like_a_missing_one(es: tuple[httpx.Client, str]) -> None:
    http, admin = es
    for who, pattern in (("alice", "tigera_secure_ee_dns.*"), ("mallory", "*")):
        r = _search(http, who, pattern)
        assert r.status_code == 200, r.text
        assert r.json()["hits"]["hits"] == [] and "aggregations" not in r.json()  # as OpenSearch answers
    assert http.post("/tigera_secure_ee_flows.*/_search", json={}).status_code == 401
    count = http.post("/tigera_secure_ee_flows.west.*/_count", json={},
                      headers={"authorization": f"Bearer {token_of('alice')}"})
    assert count.status_code == 200 and count.json()["count"] == 0
    hits = http.post("/tigera_secure_ee_flows.west.*/_search", json={"size": 1},
                     headers={"authorization": f"Bearer {admin}"}).json()["hits"]["hits"]
    day = hits[0]["_index"]  # an index that exists, readable by the admin only
    unreadable = _search(http, "alice", day)
    missing = _search(http, "alice", day.replace(".west.", ".nowhere."))
    assert unreadable.status_code == missing.status_code == 404
    assert unreadable.json()["error"]["type"] == missing.json()["error"]["type"] == "index_not_found_exception"


def test_namespace_scoped_reader_filtered_in_query(es: tuple[httpx.Client, str]) -> None:
    http, admin = es
    r = _search(http, "frank", "tigera_secure_ee_flows.*")  # frank: east, namespace shop only
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["hits"]
    assert hits and all("shop" in (h["_source"]["source_namespace"], h["_source"]["dest_namespace"]) for h in hits)
    full = http.post("/tigera_secure_ee_flows.east.*/_count", json={},
                     headers={"authorization": f"Bearer {admin}"}).json()["count"]
    assert r.json()["hits"]["total"]["value"] < full


def test_each_index_of_a_multi_index_request_gets_its_own_plan(es: tuple[httpx.Client, str]) -> None:
    """gina reads flows of east only in namespace shop but all L7 logs of east: the flows hits of a request
    over both stay narrowed and withheld, whatever order the indices are named in."""
    http, _ = es
    for index in ("tigera_secure_ee_flows.east.*,tigera_secure_ee_l7.east.*",
                  "tigera_secure_ee_l7.east.*,tigera_secure_ee_flows.east.*", "*"):
        r = _search(http, "gina", index, {"size": 100})
        assert r.status_code == 200, r.text
        flows = [h["_source"] for h in r.json()["hits"]["hits"] if h["_index"].startswith("tigera_secure_ee_flows.")]
        assert flows, index
        for f in flows:
            assert "shop" in (f["source_namespace"], f["dest_namespace"])
            if f["dest_namespace"] != "shop":
                assert f["dest_name_aggr"] == "<withheld>" and f["withheld"] == ["dest"]


@pytest.mark.parametrize("body", [
    {"size": 10},
    {"size": 0, "aggs": {"f": {"filter": {"term": {"dest_name_aggr": "secret-db-*"}}}}},
    {"size": 0, "aggs": {"f": {"filters": {"filters": {"a": {"term": {"dest_service_name": "secret-svc"}}}}}}},
    {"size": 0, "aggs": {"t": {"terms": {"field": "dest_service_name"}}, "p": {"terms": {"field": "process_name"}}}},
    {"size": 0, "aggs": {"h": {"top_hits": {"size": 5, "sort": [{"dest_name_aggr": "desc"}]}}}},
    {"size": 5, "sort": [{"dest_name_aggr": "desc"}]},
    {"size": 0, "query": {"term": {"dest_ip": "10.99.0.1"}}, "track_total_hits": True},
], ids=["hits", "filter", "filters", "terms", "top_hits", "sort", "term-oracle"])
def test_a_scoped_reader_learns_nothing_of_the_withheld_side(es: tuple[httpx.Client, str], body: dict) -> None:
    """frank reads east's flows in namespace shop: the destination in `data` of a shop flow is withheld from
    hits, counts, aggregations (filter oracles included), top_hits and sort values; the admin sees it."""
    http, admin = es
    r = _search(http, "frank", "tigera_secure_ee_flows.east.*", body)
    assert r.status_code in (200, 403), r.text
    assert "secret" not in r.text and "10.99.0.1" not in r.text
    if r.status_code == 200 and "filter" in str(body.get("aggs")):
        f = r.json()["aggregations"]["f"]
        counts = [f["doc_count"]] if "doc_count" in f else [b["doc_count"] for b in f["buckets"].values()]
        assert counts == [0]
    if "query" in body:
        assert r.json()["hits"]["total"]["value"] == 0
    full = http.post("/tigera_secure_ee_flows.east.*/_search", json=body, headers={"authorization": f"Bearer {admin}"})
    assert full.status_code == 200, full.text
    seen = "secret" in full.text or '"doc_count":1' in full.text or full.json()["hits"]["total"]["value"] == 1
    assert seen, f"the admin must see what frank may not (else the check is vacuous): {full.text[:300]}"


_MAP = "state.v = state.v ?: []; state.v.add(doc['dest_ip'].toString())"


@pytest.mark.parametrize("body", [
    {"size": 0, "track_total_hits": True, "query": {"regexp": {"dest_name_aggr": "secret.*"}}},
    {"size": 0, "track_total_hits": True, "query": {"fuzzy": {"dest_service_name": {"value": "secret-svd"}}}},
    {"size": 0, "track_total_hits": True, "query": {"simple_query_string": {"query": "secret*"}}},
    {"size": 0, "track_total_hits": True, "query": {"match_bool_prefix": {"dest_service_name": "secret"}}},
    {"size": 5, "track_total_hits": True, "post_filter": {"term": {"dest_ip": "10.99.0.1"}}},
    {"size": 0, "aggs": {"f": {"filter": {"regexp": {"dest_name_aggr": "secret.*"}}}}},
    {"size": 0, "aggs": {"t": {"terms": {"field": "dest_name_aggr", "min_doc_count": 0, "size": 100}}}},
    {"size": 0, "aggs": {"g": {"global": {}, "aggs": {"t": {"terms": {"field": "dest_name_aggr", "size": 100}},
                                                     "h": {"top_hits": {"size": 100}}}}}},
    {"size": 0, "aggs": {"s": {"significant_terms": {"field": "dest_name_aggr", "min_doc_count": 0}}}},
    {"size": 0, "aggs": {"s": {"scripted_metric": {"init_script": "state.v = []", "map_script": _MAP,
                                                    "combine_script": "return state.v",
                                                    "reduce_script": "return states"}}}},
], ids=["regexp", "fuzzy", "simple_query_string", "match_bool_prefix", "post_filter", "filter-regexp",
        "min_doc_count-0", "global", "significant_terms", "scripted_metric"])
def test_no_search_feature_looks_past_a_scoped_readers_narrowing(es: tuple[httpx.Client, str], body: dict) -> None:
    """The pass-through to OpenSearch narrowed only the query: query types the check of named fields did not
    know (regexp, fuzzy, simple_query_string...), post_filter, `global` aggregations (which ignore the query),
    `terms` with min_doc_count 0 (the index's whole term dictionary), significant_terms and scripted_metric each
    told frank the withheld destination of a shop flow, or the other namespaces' values. Now he gets what the
    embedded engine answers: a 400 for what it does not do, and only readable values for what it does."""
    http, admin = es
    r = _search(http, "frank", "tigera_secure_ee_flows.east.*", body)
    assert r.status_code in (200, 400), r.text
    assert "secret" not in r.text and "10.99.0.1" not in r.text, r.text
    if r.status_code == 200 and body.get("track_total_hits"):
        assert r.json()["hits"]["total"]["value"] == 0, r.text
    aggs = body.get("aggs", {})
    if "t" in aggs:  # min_doc_count 0: on both engines, the values of the records frank may read
        assert r.status_code == 200, r.text
        assert [b["key"] for b in r.json()["aggregations"]["t"]["buckets"]] == ["cart-6f7b8-*"]
    if "f" in aggs and r.status_code == 200:
        assert r.json()["aggregations"]["f"]["doc_count"] == 0, r.text
    if "g" in aggs:
        visible = http.post("/tigera_secure_ee_flows.east.*/_count", json={},
                            headers={"authorization": f"Bearer {token_of('frank')}"}).json()["count"]
        assert r.status_code == 400 or r.json()["aggregations"]["g"]["doc_count"] == visible, r.text
