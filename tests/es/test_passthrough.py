"""/es/ on the OpenSearch backend: requests pass through to the real node, narrowed by RBAC first."""

from __future__ import annotations

import uuid
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
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

pytestmark = pytest.mark.rig


@pytest.fixture(scope="module")
def es_os(opensearch: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    base: Path = tmp_path_factory.mktemp("es-pass")
    write_tokens(base / "tokens.yaml", TOKENS)
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    prefix = f"p{uuid.uuid4().hex[:8]}-"
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True, backend="opensearch", opensearch_url=opensearch,
                              opensearch_prefix=prefix))
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        for kind in ("flows", "dns"):
            for cluster in [*CLUSTERS, "dotted.name-1"]:
                r = httpx.post(f"{server.url}/api/v1/{kind}/logs/bulk", content="\n".join(SAMPLES[kind]).encode(),
                               headers={"authorization": f"Bearer {admin}", "x-cluster-id": cluster,
                                        "content-type": "application/x-ndjson"}, timeout=60)
                assert r.status_code == 200, r.text
            # Not a DNS-1123 name (Calico's rule for cluster names): refused before it reaches the node.
            r = httpx.post(f"{server.url}/api/v1/{kind}/logs/bulk", content="\n".join(SAMPLES[kind]).encode(),
                           headers={"authorization": f"Bearer {admin}", "x-cluster-id": "Upper-Case",
                                    "content-type": "application/x-ndjson"}, timeout=60)
            assert r.status_code == 400 and "DNS-1123" in r.text, r.text
        yield server.url, admin, prefix


def test_admin_reads_every_cluster_through_the_node(es_os: tuple[str, str, str]) -> None:
    url, admin, _ = es_os
    r = httpx.post(url + "/es/tigera_secure_ee_flows.*/_search", timeout=60,
                   json={"size": 0, "aggs": {"c": {"terms": {"field": "cluster"}}}},
                   headers={"authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    counts = {b["key"]: b["doc_count"] for b in r.json()["aggregations"]["c"]["buckets"]}
    assert counts == {c: len(SAMPLES["flows"]) for c in [*CLUSTERS, "dotted.name-1"]}


def test_pass_through_is_narrowed_by_rbac(es_os: tuple[str, str, str]) -> None:
    url, _, _ = es_os
    r = httpx.post(url + "/es/tigera_secure_ee_flows.*/_search", timeout=60,
                   json={"size": 100, "query": {"match_all": {}}},
                   headers={"authorization": f"Bearer {token_of('alice')}"})  # alice: flows of east only
    assert r.status_code == 200, r.text
    assert {h["_source"]["cluster"] for h in r.json()["hits"]["hits"]} == {"east"}
    nothing = httpx.post(url + "/es/tigera_secure_ee_dns.*/_search", json={}, timeout=60,
                         headers={"authorization": f"Bearer {token_of('alice')}"})
    assert nothing.status_code == 200 and nothing.json()["hits"]["hits"] == []  # as if there were none


def test_no_reader_looks_up_a_document_of_another_index_through_the_node(es_os: tuple[str, str, str]) -> None:
    """alice reads flows of east in full, so her body once went to the node as it came: a `terms` lookup (or a
    more_like_this document, an indexed shape) made OpenSearch read any index of the node, west's included, and
    its 404 named the node's own prefixed index. Refused for every reader, as the embedded engine refuses it."""
    url, _, prefix = es_os
    west = f"{prefix}tigera_secure_ee_flows.west.20231114"
    hdr = {"authorization": f"Bearer {token_of('alice')}"}
    for query in ({"terms": {"dest_port": {"index": west, "id": "1", "path": "dest_port"}}},
                  {"bool": {"filter": [{"terms": {"dest_port": {"index": "nope", "id": "1", "path": "p"}}}]}},
                  {"more_like_this": {"fields": ["source_name"], "like": [{"_index": west, "_id": "1"}]}}):
        r = httpx.post(url + "/es/tigera_secure_ee_flows.east.*/_search", json={"query": query}, headers=hdr,
                       timeout=60)
        assert r.status_code == 400 and "looking up a document" in r.text and prefix not in r.text, r.text
    r = httpx.post(url + "/es/tigera_secure_ee_flows.east.*/_search", headers=hdr, timeout=60,  # a field's value
                   json={"size": 0, "query": {"term": {"index": "x"}},
                         "aggs": {"index": {"terms": {"field": "dest_port"}}}})
    assert r.status_code == 200, r.text


def test_grafana_msearch_returns_opensearchs_answer(es_os: tuple[str, str, str], opensearch: str) -> None:
    """Grafana's Elasticsearch data source sends _msearch with query_then_fetch headers: through margay the
    admin gets exactly what the node answers for the same requests on its own indices."""
    url, admin, prefix = es_os
    window = {"range": {"@timestamp": {"gte": 0, "lte": 4_102_444_800_000, "format": "epoch_millis"}}}
    bodies = [
        {"size": 0, "query": {"bool": {"filter": [window, {"query_string": {"analyze_wildcard": True,
                                                                            "query": "*"}}]}},
         "aggs": {"2": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h", "min_doc_count": 0,
                                           "format": "epoch_millis"},
                        "aggs": {"1": {"sum": {"field": "bytes_in"}}}}}},
        {"size": 0, "query": {"bool": {"filter": [window]}},
         "aggs": {"3": {"terms": {"field": "source_namespace", "size": 10, "order": {"_key": "desc"},
                                  "min_doc_count": 1}, "aggs": {"1": {"max": {"field": "bytes_out"}}}}}},
    ]

    def msearch(base: str, index: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        lines = b""
        for body in bodies:
            lines += orjson.dumps({"search_type": "query_then_fetch", "ignore_unavailable": True,
                                   "index": [index]}) + b"\n" + orjson.dumps(body) + b"\n"
        r = httpx.post(f"{base}/_msearch", content=lines, timeout=60,
                       headers={**headers, "content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        return r.json()["responses"]

    got = msearch(url + "/es", "tigera_secure_ee_flows.*", {"authorization": f"Bearer {admin}"})
    want = msearch(opensearch, f"{prefix}tigera_secure_ee_flows.*", {})
    assert [g["status"] for g in got] == [200, 200]
    for g, w in zip(got, want, strict=True):
        assert g["aggregations"] == w["aggregations"]
        assert g["hits"]["total"] == w["hits"]["total"]
    assert want[1]["aggregations"]["3"]["buckets"]  # the comparison is not vacuous


GRAFANA_LOGS = {  # Grafana's Logs panel request (pkg/tsdb/elasticsearch testdata_request/logs.request.line1.json)
    "docvalue_fields": ["@timestamp"],
    "query": {"bool": {"filter": [{"range": {"@timestamp": {"format": "epoch_millis", "gte": 0,
                                                            "lte": 4_102_444_800_000}}},
                                  {"query_string": {"analyze_wildcard": True, "query": "action:allow"}}]}},
    "script_fields": {}, "size": 500,
    "sort": {"@timestamp": {"order": "desc", "unmapped_type": "boolean"}, "_doc": {"order": "desc"}},
    "aggs": {"1": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h", "format": "epoch_millis",
                                      "min_doc_count": 0}}},
    "highlight": {"pre_tags": ["@HIGHLIGHT@"], "post_tags": ["@/HIGHLIGHT@"], "fragment_size": 2147483647,
                  "fields": {"*": {}}},
    "fields": [{"field": "@timestamp", "format": "strict_date_optional_time_nanos"}]}


def test_grafana_logs_panel_passes_through(es_os: tuple[str, str, str], opensearch: str) -> None:
    """The Logs panel's body through margay: the node's own hits, `fields` and highlights (only what the
    query matched: margay's narrowing is not highlighted); a namespace-scoped reader is refused."""
    url, admin, prefix = es_os
    index = "tigera_secure_ee_flows.east.*"
    got = httpx.post(f"{url}/es/{index}/_search", json=GRAFANA_LOGS, timeout=60,
                     headers={"authorization": f"Bearer {admin}"})
    assert got.status_code == 200, got.text
    want = httpx.post(f"{opensearch}/{prefix}{index}/_search", json=GRAFANA_LOGS, timeout=60).json()
    mine, theirs = got.json()["hits"]["hits"], want["hits"]["hits"]
    assert mine and len(mine) == len(theirs) == sum(
        orjson.loads(x)["action"] == "allow" for x in SAMPLES["flows"])
    for a, b in zip(mine, theirs, strict=True):
        assert a["_index"] == b["_index"].removeprefix(prefix)
        assert (a["_id"], a["fields"], a["highlight"], a["sort"]) == (b["_id"], b["fields"], b["highlight"], b["sort"])
        assert set(a["highlight"]) == {"action", "event.action"}  # not `cluster`, which margay's filter names
    assert got.json()["aggregations"] == want["aggregations"]
    scoped = httpx.post(f"{url}/es/{index}/_search", json=GRAFANA_LOGS, timeout=60,
                        headers={"authorization": f"Bearer {token_of('gina')}"})  # flows of east, namespace shop
    assert scoped.status_code == 403, scoped.text
