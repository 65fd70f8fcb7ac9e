"""Queries over real HTTP: selectors, paging past 10k, multi-cluster reads, aggregations, L3 flows, hints."""

from __future__ import annotations

import httpx
import orjson
import pytest

from margay.client import Client
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000


def flows(n: int, *, start: int = T0, ns: tuple[str, ...] = ("shop", "payments", "data")) -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    out = []
    for i in range(n):
        rec = dict(base, start_time=start + i, end_time=start + i + 300, bytes_in=i, source_namespace=ns[i % len(ns)],
                   action="deny" if i % 10 == 0 else "allow")
        out.append(orjson.dumps(rec))
    return b"\n".join(out)


@pytest.fixture
def loaded(client: Client) -> Client:
    client.bulk("flows", flows(12_345), cluster="east")
    client.bulk("flows", flows(100, ns=("west-only",)), cluster="west")
    return client


def test_selector_filters(loaded: Client) -> None:
    r = loaded.search("flows", {"selector": 'action = "deny" AND source_namespace IN {"shop", "pay*"}',
                                "max_page_size": 5}, ["east"])
    # i % 10 == 0 -> deny; namespaces cycle every 3: deny rows i=0,10,20,... -> shop,payments,data in turn.
    expected = len([i for i in range(12_345) if i % 10 == 0 and (i % 3) in (0, 1)])
    assert r["total_hits"] == expected
    assert all(i["action"] == "deny" and i["source_namespace"] in ("shop", "payments") for i in r["items"])


def test_paging_through_more_than_10k(loaded: Client) -> None:
    seen: list[int] = []
    body: dict = {"max_page_size": 1000, "sort": [{"field": "end_time", "descending": True}]}
    pages = 0
    while True:
        page = loaded.search("flows", body, ["east"])
        seen += [i["bytes_in"] for i in page["items"]]
        pages += 1
        if "after_key" not in page:
            break
        body["after_key"] = page["after_key"]
    assert pages == 13
    assert seen == list(range(12_344, -1, -1))


def test_offset_paging_is_accepted(loaded: Client) -> None:
    page = loaded.search("flows", {"max_page_size": 10, "after_key": {"startFrom": 20}}, ["east"])
    assert [i["bytes_in"] for i in page["items"]] == list(range(20, 30))


def test_time_range_absolute_and_relative(loaded: Client) -> None:
    body = {"time_range": {"from": "2023-11-14T22:13:20Z", "to": "2023-11-14T22:15:00Z"}}
    r = loaded.search("flows", body, ["east"])
    # end_time = T0 + i + 300 within [T0, T0+100] -> none; shift: from T0+300 .. T0+400 inclusive
    assert r["total_hits"] == 0
    r = loaded.search("flows", {"time_range": {"from": T0 + 300, "to": T0 + 400}}, ["east"])
    assert r["total_hits"] == 101
    assert loaded.search("flows", {"time_range": {"from": "now-15m", "to": "now"}}, ["east"])["total_hits"] == 0


def test_multi_cluster_reads(loaded: Client, server: ServerThread) -> None:
    both = loaded.search("flows", {"max_page_size": 0}, ["east", "west"])
    assert both["total_hits"] == 12_445
    r = httpx.post(server.url + "/api/v1/flows/logs", json={"all_clusters": True, "max_page_size": 1},
                   headers={"x-cluster-id": "_MULTI_"})
    assert r.json()["total_hits"] == 12_445
    r = httpx.post(server.url + "/api/v1/flows/logs", json={}, headers={"x-cluster-id": "_MULTI_"})
    assert r.status_code == 400 and "clusters" in r.json()["error"]["message"]


def test_selector_syntax_error_points_at_position(server: ServerThread, loaded: Client) -> None:
    r = httpx.post(server.url + "/api/v1/flows/logs", json={"selector": 'action = "deny" AND'},
                   headers={"x-cluster-id": "east"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "query_error" and err["details"]["position"] == 19
    r = httpx.post(server.url + "/api/v1/flows/logs", json={"selector": 'acton = "deny"'},
                   headers={"x-cluster-id": "east"})
    assert r.status_code == 400 and "action" in r.json()["error"]["message"]


def test_aggregations(loaded: Client) -> None:
    aggs = {"by_action": {"terms": {"field": "action"}, "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}},
            "per_hour": {"date_histogram": {"field": "end_time", "fixed_interval": "1h"}},
            "namespaces": {"cardinality": {"field": "source_namespace"}}}
    res = loaded.post("/api/v1/flows/logs/aggregation", {"aggregations": aggs}, cluster="east")
    buckets = {b["key"]: b for b in res["by_action"]["buckets"]}
    assert buckets["deny"]["doc_count"] == 1235 and buckets["allow"]["doc_count"] == 11_110
    assert buckets["deny"]["bytes"]["value"] == sum(i for i in range(12_345) if i % 10 == 0)
    assert res["namespaces"]["value"] == 3
    assert sum(b["doc_count"] for b in res["per_hour"]["buckets"]) == 12_345


def test_l3_flows_group_in_the_engine(loaded: Client) -> None:
    res = loaded.post("/api/v1/flows", {"time_range": {"from": T0, "to": T0 + 20_000}}, cluster="east")
    items = res["items"]
    keys = {(i["key"]["action"], i["key"]["source"]["namespace"]) for i in items}
    assert keys == {(a, ns) for a in ("allow", "deny") for ns in ("shop", "payments", "data")}
    total = sum(i["log_stats"]["flowLogCount"] for i in items)
    assert total == 12_345
    assert items[0]["enforced_policies"][0]["name"] == "web-egress"


def test_filter_hints(loaded: Client) -> None:
    res = loaded.post("/api/v1/flows/fields/source_namespace/values", {"prefix": "p"}, cluster="east")
    assert res == {"field": "source_namespace", "values": [{"value": "payments", "count": 4115}]}


def test_indices_listing(loaded: Client) -> None:
    items = loaded.get("/api/v1/indices")["items"]
    names = {i["index"] for i in items}
    assert "tigera_secure_ee_flows.east.20231114" in names and "tigera_secure_ee_flows.west.20231114" in names
    assert sum(i["docs"] for i in items) == 12_445
    assert all(i["bytes"] > 0 for i in items)


def test_operator_endpoints(loaded: Client, server: ServerThread) -> None:
    assert httpx.get(server.url + "/-/health").json()["status"] == "ok"
    assert httpx.get(server.url + "/-/version").json()["name"] == "margay"
    text = httpx.get(server.url + "/-/metrics").text
    assert 'margay_records_accepted_total{cluster="east",type="flows"} 12345' in text
    assert "margay_ingest_seconds_count" in text and "margay_store_bytes" in text
    assert "margay_compaction_merges_total " in text and "margay_compaction_active 0" in text


def test_terms_ordered_by_a_metric(loaded: Client) -> None:
    aggs = {"ns": {"terms": {"field": "source_namespace", "size": 2, "order": {"bytes": "desc"}},
                   "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}
    res = loaded.post("/api/v1/flows/logs/aggregation", {"aggregations": aggs}, cluster="east")
    sums = {ns: sum(i for i in range(12_345) if ("shop", "payments", "data")[i % 3] == ns)
            for ns in ("shop", "payments", "data")}
    top = sorted(sums, key=lambda ns: -sums[ns])[:2]
    assert [b["key"] for b in res["ns"]["buckets"]] == top
    assert [b["bytes"]["value"] for b in res["ns"]["buckets"]] == [float(sums[n]) for n in top]
    assert res["ns"]["sum_other_doc_count"] == 12_345 - sum(b["doc_count"] for b in res["ns"]["buckets"])
