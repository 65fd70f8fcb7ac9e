"""RBAC on /es/, on both engines: index patterns expand only to what the caller may read; an unreadable
index looks exactly like a missing one; namespace-scoped readers get the filter inside the query and
every index its own plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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
