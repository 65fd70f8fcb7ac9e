"""Smoke tests for the OpenSearch peer: a real 2.19 node from Maven Central jars, over plain HTTP."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

pytestmark = pytest.mark.rig


def http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback http only
        return json.load(resp)


@pytest.fixture
def client(opensearch: str) -> Iterator[OpenSearch]:
    c = OpenSearch(hosts=[opensearch], timeout=30)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def index(client: OpenSearch) -> Iterator[str]:
    """A fresh index name; the index (if made) is deleted afterwards."""
    name = f"rig-flows-{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


FLOWS = [
    {"@timestamp": "2024-05-01T10:05:00Z", "action": "allow", "source_ip": "10.0.0.1", "dest_port": 443,
     "bytes": 1200, "labels": [{"key": "app", "value": "web"}, {"key": "tier", "value": "frontend"}]},
    {"@timestamp": "2024-05-01T10:40:00Z", "action": "deny", "source_ip": "10.0.1.7", "dest_port": 22,
     "bytes": 60, "labels": [{"key": "app", "value": "ssh"}]},
    {"@timestamp": "2024-05-01T11:15:00Z", "action": "allow", "source_ip": "192.168.3.4", "dest_port": 53,
     "bytes": 90, "labels": [{"key": "app", "value": "dns"}, {"key": "tier", "value": "backend"}]},
    {"@timestamp": "2024-05-01T12:30:00Z", "action": "allow", "source_ip": "10.2.0.9", "dest_port": 443,
     "bytes": 5000, "labels": [{"key": "app", "value": "web"}, {"key": "tier", "value": "backend"}]},
]

MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "action": {"type": "keyword"},
        "source_ip": {"type": "ip"},
        "dest_port": {"type": "long"},
        "bytes": {"type": "long"},
        "labels": {"type": "nested", "properties": {"key": {"type": "keyword"}, "value": {"type": "keyword"}}},
    }
}


def test_root_reports_2_19(opensearch: str) -> None:
    assert not opensearch.endswith("/")
    root = http("GET", opensearch + "/")
    assert root["version"]["distribution"] == "opensearch"
    assert root["version"]["number"].startswith("2.19."), root["version"]
    health = http("GET", opensearch + "/_cluster/health")
    assert health["number_of_nodes"] == 1
    assert health["status"] in ("green", "yellow")


def test_index_search_aggregate(opensearch: str, client: OpenSearch, index: str) -> None:
    # create with a mapping (opensearch-py), then check the stored mapping over plain HTTP
    created = client.indices.create(index=index, body={"mappings": MAPPING})
    assert created["acknowledged"] is True
    props = http("GET", f"{opensearch}/{index}/_mapping")[index]["mappings"]["properties"]
    assert {k: v["type"] for k, v in props.items()} == {
        "@timestamp": "date", "action": "keyword", "source_ip": "ip", "dest_port": "long", "bytes": "long",
        "labels": "nested"}
    settings = http("GET", f"{opensearch}/{index}/_settings")[index]["settings"]["index"]
    assert settings["number_of_replicas"] == "0"

    # index: one document over HTTP, the rest with opensearch-py; all with refresh=true
    first = http("PUT", f"{opensearch}/{index}/_doc/flow-0?refresh=true", FLOWS[0])
    assert first["result"] == "created"
    for i, doc in enumerate(FLOWS[1:], start=1):
        resp = client.index(index=index, id=f"flow-{i}", body=doc, params={"refresh": "true"})
        assert resp["result"] == "created"

    # term query
    hits = client.search(index=index, body={"query": {"term": {"action": "allow"}}})["hits"]
    assert hits["total"]["value"] == 3
    assert sorted(h["_id"] for h in hits["hits"]) == ["flow-0", "flow-2", "flow-3"]

    # ip (CIDR) and nested queries
    cidr = client.search(index=index, body={"query": {"term": {"source_ip": "10.0.0.0/16"}}})
    assert sorted(h["_id"] for h in cidr["hits"]["hits"]) == ["flow-0", "flow-1"]
    nested = client.search(index=index, body={"query": {"nested": {"path": "labels", "query": {"bool": {
        "filter": [{"term": {"labels.key": "tier"}}, {"term": {"labels.value": "backend"}}]}}}}})
    assert sorted(h["_id"] for h in nested["hits"]["hits"]) == ["flow-2", "flow-3"]

    # terms aggregation (with a sum) and a date_histogram
    aggs = client.search(index=index, body={"size": 0, "aggs": {
        "by_action": {"terms": {"field": "action"}, "aggs": {"bytes": {"sum": {"field": "bytes"}}}},
        "per_hour": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}},
    }})["aggregations"]
    by_action = {b["key"]: (b["doc_count"], b["bytes"]["value"]) for b in aggs["by_action"]["buckets"]}
    assert by_action == {"allow": (3, 6290.0), "deny": (1, 60.0)}
    per_hour = [(b["key_as_string"], b["doc_count"]) for b in aggs["per_hour"]["buckets"]]
    assert per_hour == [("2024-05-01T10:00:00.000Z", 2), ("2024-05-01T11:00:00.000Z", 1),
                        ("2024-05-01T12:00:00.000Z", 1)]


def test_modules_are_loaded(opensearch: str, client: OpenSearch, index: str) -> None:
    """analysis-common (analyzers), mapper-extras (scaled_float) and painless (scripts) answer."""
    tokens = client.indices.analyze(body={"tokenizer": "whitespace", "filter": ["lowercase", "word_delimiter_graph"],
                                          "text": "Calico-Node DENY"})
    assert [t["token"] for t in tokens["tokens"]] == ["calico", "node", "deny"]

    client.indices.create(index=index, body={"mappings": {"properties": {
        "ratio": {"type": "scaled_float", "scaling_factor": 100}}}})
    client.index(index=index, id="1", body={"ratio": 0.256}, params={"refresh": "true"})
    found = client.search(index=index, body={
        "query": {"match_all": {}},
        "script_fields": {"pct": {"script": {"lang": "painless", "source": "doc['ratio'].value * 100"}}}})
    assert found["hits"]["hits"][0]["fields"]["pct"] == [pytest.approx(26.0)]
