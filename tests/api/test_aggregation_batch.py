"""POST /api/v1/aggregations, several aggregation requests in one round trip, on both engines over real HTTP:
each answer is the one its type's own `/aggregation` route gives; a malformed item is a 4xx naming it.
What a scoped or denied reader gets from a batch: tests/access/test_scope.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000
WIDE = {"time_range": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}
NDJSON, TEXT = {"content-type": "application/x-ndjson"}, {"content-type": "text/plain"}
ROUTES = {"flows": "flows/logs", "dns": "dns/logs", "audit": "audit/logs", "bgp": "bgp/logs", "events": "events"}


def flows(n: int, cluster_ns: tuple[str, ...]) -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    return b"\n".join(orjson.dumps(dict(base, start_time=T0 + i, end_time=T0 + i + 300, bytes_in=i, bytes_out=2 * i,
                                        source_namespace=cluster_ns[i % len(cluster_ns)], num_flows=1 + i % 3,
                                        action="deny" if i % 7 == 0 else "allow")) for i in range(n))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("batch") / "data"
    with ServerThread(create_app(Settings(data_dir=data, **module_engine))) as s, \
            httpx.Client(base_url=s.url, timeout=60) as http:
        for cluster, body in (("east", flows(900, ("shop", "db", "web"))), ("west", flows(300, ("west-only",)))):
            r = http.post("/api/v1/flows/logs/bulk", content=body, headers={"x-cluster-id": cluster, **NDJSON})
            assert r.status_code == 200, r.text
        for path, name in (("dns/logs/bulk", "dns"), ("audit/logs/kube/bulk", "audit_kube"), ("bgp/logs/bulk", "bgp"),
                           ("events/bulk", "events")):
            r = http.post(f"/api/v1/{path}", content="\n".join(SAMPLES[name]).encode(),
                          headers={"x-cluster-id": "east", **(TEXT if name == "bgp" else NDJSON)})
            assert r.status_code == 200, r.text
        yield http


# The overview's shapes: histograms with and without sub-aggregations, terms of size 200 with sums, a
# selector, audit of either kind, nested terms, terms on `cluster` over a named list and over all clusters.
REQUESTS: list[dict[str, Any]] = [
    {"log_type": "flows", "clusters": ["east", "west"],
     "aggregations": {"t": {"date_histogram": {"field": "end_time", "fixed_interval": "60s"}}}},
    {"log_type": "flows", "all_clusters": True, "selector": 'action = "deny"',
     "aggregations": {"t": {"date_histogram": {"field": "end_time", "fixed_interval": "300s"},
                            "aggs": {"f": {"sum": {"field": "num_flows"}}}}}},
    {"log_type": "flows", "clusters": ["east"], "selector": 'reporter = "src"',
     "aggregations": {"k": {"terms": {"field": "source_namespace", "size": 200},
                            "aggs": {"i": {"sum": {"field": "bytes_in"}}, "o": {"sum": {"field": "bytes_out"}}}}}},
    {"log_type": "flows", "all_clusters": True,
     "aggregations": {"c": {"terms": {"field": "cluster", "size": 2}, "aggs": {
         "f": {"sum": {"field": "num_flows"}},
         "a": {"terms": {"field": "action", "size": 5}, "aggs": {"f": {"sum": {"field": "num_flows"}}}}}}}},
    {"log_type": "dns", "clusters": ["east"],
     "aggregations": {"k": {"terms": {"field": "qname", "size": 200}, "aggs": {"c": {"sum": {"field": "count"}}}}}},
    {"log_type": "audit", "clusters": ["east"], "type": "any",
     "aggregations": {"k": {"terms": {"field": "verb", "size": 8}}}},
    {"log_type": "bgp", "clusters": ["east"],
     "aggregations": {"k": {"terms": {"field": "host", "size": 10},
                            "aggs": {"t": {"date_histogram": {"field": "logtime", "fixed_interval": "3600s"}}}}}},
    {"log_type": "events", "all_clusters": True, "selector": "dismissed = false",
     "aggregations": {"s": {"terms": {"field": "severity", "size": 20, "order": {"_key": "desc"}},
                            "aggs": {"t": {"terms": {"field": "type", "size": 5}}}}}},
    {"log_type": "flows", "clusters": ["east"], "num_buckets": 4, "aggregations": {"n": {"sum": {"field": "num_flows"}}}},
]


def alone(http: httpx.Client, item: dict[str, Any]) -> httpx.Response:
    """The item sent to its own route, the way a client of one route sends it."""
    body = {**WIDE, **{k: v for k, v in item.items() if k != "log_type"}}
    return http.post(f"/api/v1/{ROUTES[item['log_type']]}/aggregation", json=body, headers={"x-cluster-id": "_MULTI_"})


def test_each_answer_is_its_own_routes(site: httpx.Client) -> None:
    r = site.post("/api/v1/aggregations", json={"requests": [{**WIDE, **q} for q in REQUESTS]},
                  headers={"x-cluster-id": "_MULTI_"})
    assert r.status_code == 200, r.text
    got = r.json()["responses"]
    assert len(got) == len(REQUESTS)
    for q, answer in zip(REQUESTS, got, strict=True):
        single = alone(site, q)
        assert single.status_code == 200, single.text
        assert answer["status"] == 200
        assert answer["aggregations"] == single.json(), q
        assert answer["path"] == single.headers["x-margay-aggregation-path"]
    # Not vacuous: the data is there and the selection applies per item.
    assert sum(b["doc_count"] for b in got[0]["aggregations"]["t"]["buckets"]) == 1200
    assert {b["key"] for b in got[2]["aggregations"]["k"]["buckets"]} == {"shop", "db", "web"}
    assert [b["key"] for b in got[3]["aggregations"]["c"]["buckets"]] == ["east", "west"]
    assert got[5]["aggregations"]["k"]["buckets"]


def test_streamed_lines_carry_the_same_answers(site: httpx.Client) -> None:
    body = {"requests": [{**WIDE, **q} for q in REQUESTS]}
    whole = site.post("/api/v1/aggregations", json=body, headers={"x-cluster-id": "_MULTI_"}).json()["responses"]
    r = site.post("/api/v1/aggregations", json=body, headers={"x-cluster-id": "_MULTI_", "accept": "application/x-ndjson"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson"), r.text
    lines = [orjson.loads(line) for line in r.text.splitlines()]
    assert sorted(line["index"] for line in lines) == list(range(len(REQUESTS)))  # each once, as it is ready
    assert {line["index"]: {k: v for k, v in line.items() if k != "index"} for line in lines} == dict(enumerate(whole))
    # Malformed is still the whole batch's 400 (found before any line is sent).
    bad = site.post("/api/v1/aggregations", json={"requests": [OK, {**OK, "selector": "action = "}]},
                    headers={"x-cluster-id": "_MULTI_", "accept": "application/x-ndjson"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("requests[1]: "), bad.text


def test_a_named_cluster_header_applies_to_every_item(site: httpx.Client) -> None:
    item = {**WIDE, "log_type": "flows", "aggregations": {"n": {"value_count": {"field": "action"}}}}
    r = site.post("/api/v1/aggregations", json={"requests": [item, {**item, "log_type": "dns", "aggregations": {
        "n": {"value_count": {"field": "qname"}}}}]},
                  headers={"x-cluster-id": "west"})
    assert r.status_code == 200, r.text
    flows_west, dns_west = r.json()["responses"]
    assert flows_west["aggregations"]["n"]["value"] == 300
    assert dns_west["aggregations"]["n"]["value"] == 0  # no DNS logs in west: an empty answer, as the route's
    alone = site.post("/api/v1/dns/logs/aggregation", json={**WIDE, "aggregations": {
        "n": {"value_count": {"field": "qname"}}}}, headers={"x-cluster-id": "west"})
    assert alone.status_code == 200 and alone.json() == dns_west["aggregations"], alone.text


OK = {"log_type": "flows", "all_clusters": True}


@pytest.mark.parametrize(("body", "where", "says"), [
    ({"requests": [OK, {"log_type": "nope"}]}, "requests[1]", "log_type"),
    ({"requests": [OK, "flows"]}, "requests[1]", "expected an object"),
    ({"requests": [{**OK, "selector": "action = "}]}, "requests[0]", "selector"),
    ({"requests": [OK, {**OK, "log_type": "dns", "aggregations": ["t"]}]}, "requests[1]", "aggregations"),
    ({"requests": [OK, {**OK, "aggregations": {"x": {"nope": {}}}}]}, "requests[1]",
     "nope"),
    ({"requests": [{**OK, "log_type": "audit", "type": "both"}]}, "requests[0]", "type"),
    ({"requests": [{"log_type": "flows", "clusters": ["../etc"]}]}, "requests[0]", "clusters[0]"),
    ({"requests": [{**OK, "num_buckets": 0.5}]}, "requests[0]", "num_buckets"),
])
def test_a_malformed_item_is_a_400_naming_it(site: httpx.Client, body: dict[str, Any], where: str, says: str) -> None:
    r = site.post("/api/v1/aggregations", json=body, headers={"x-cluster-id": "_MULTI_"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["message"].startswith(where + ": ") and says in err["message"], err
    assert err["details"]["item"] == int(where[9:-1])


@pytest.mark.parametrize("body", [{}, {"requests": []}, {"requests": {"log_type": "flows"}},
                                  {"requests": [OK] * 65}, {"requests": [], "extra": 1}])
def test_the_batch_itself_is_checked(site: httpx.Client, body: dict[str, Any]) -> None:
    r = site.post("/api/v1/aggregations", json=body, headers={"x-cluster-id": "_MULTI_"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "query_error", r.text
