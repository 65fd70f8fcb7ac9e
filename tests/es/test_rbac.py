"""RBAC on /es/: index patterns expand only to what the caller may read; nothing readable -> 403;
namespace-scoped readers get the filter inside the query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from access.conftest import CLUSTERS, RBAC, TOKENS, token_of, write_tokens
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.testing.server import ServerThread


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    base: Path = tmp_path_factory.mktemp("es-rbac")
    write_tokens(base / "tokens.yaml", TOKENS)
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True))
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server, httpx.Client(base_url=server.url + "/es", timeout=30) as http:
        for name in ("flows", "dns", "audit_ee"):
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


def test_nothing_readable_is_403(es: tuple[httpx.Client, str]) -> None:
    http, _ = es
    assert _search(http, "alice", "tigera_secure_ee_dns.*").status_code == 403
    assert _search(http, "mallory", "*").status_code == 403
    assert http.post("/tigera_secure_ee_flows.*/_search", json={}).status_code == 401
    count = http.post("/tigera_secure_ee_flows.west.*/_count", json={},
                      headers={"authorization": f"Bearer {token_of('alice')}"})
    assert count.status_code == 403


def test_namespace_scoped_reader_filtered_in_query(es: tuple[httpx.Client, str]) -> None:
    http, admin = es
    r = _search(http, "frank", "tigera_secure_ee_flows.*")  # frank: east, namespace shop only
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["hits"]
    assert hits and all("shop" in (h["_source"]["source_namespace"], h["_source"]["dest_namespace"]) for h in hits)
    full = http.post("/tigera_secure_ee_flows.east.*/_count", json={},
                     headers={"authorization": f"Bearer {admin}"}).json()["count"]
    assert r.json()["hits"]["total"]["value"] < full
