"""Linseed's policy activity (`linseed/pkg/apis/v1/policy.go`, handler/policy, backend/legacy/policy) and
runtime reports (`apis/v1/runtime.go`, handler/runtime, backend/legacy/runtime), as Calico's Go client asks,
on both engines over real HTTP. RBAC (`policyactivity`, `runtimereports`): tests/access."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

NDJSON = {"content-type": "application/x-ndjson", "x-cluster-id": "east"}
EAST = {"x-cluster-id": "east"}
SERVER_KEYS = ("id", "cluster", "generated_time")


@pytest.fixture
def fresh(tmp_path: Path, engine: dict[str, Any]) -> Iterator[str]:
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine))) as s:
        yield s.url


def _ndjson(docs: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in docs)


def _read(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=EAST, timeout=60)


def _items(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = _read(url, path, body)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _as_sent(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in SERVER_KEYS}


def _activity(kind: str, ns: str, name: str, rule: str, at: str) -> dict[str, Any]:
    return {"policy": {"kind": kind, "namespace": ns, "name": name}, "rule": rule, "last_evaluated": at}


ACTIVITY = [
    _activity("NetworkPolicy", "shop", "default.web-ingress", "4|ingress|0", "2023-11-14T22:10:00.123456789Z"),
    _activity("NetworkPolicy", "shop", "default.web-ingress", "4|egress|1", "2023-11-14T22:11:00Z"),
    _activity("GlobalNetworkPolicy", "", "security.block-egress", "1|egress|2", "2023-11-14T22:12:00Z"),
]
# What Calico's Go client sends for PolicyActivityParams it leaves unset (no omitempty on policy/last_evaluated).
GO_ZERO = {"time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}, "max_page_size": 0,
           "policy": {"kind": "", "namespace": "", "name": ""}, "last_evaluated": "0001-01-01T00:00:00Z",
           "sort": None, "selector": ""}
P = "/api/v1/policy_activity/logs"


def test_policy_activity_bulk_and_the_params_driven_read(fresh: str) -> None:
    bad = {**ACTIVITY[0], "last_evaluated": None}  # the time field is required
    r = httpx.post(fresh + "/ingestion" + P + "/bulk", content=_ndjson([ACTIVITY[0], bad, *ACTIVITY[1:]]),
                   headers=NDJSON, timeout=60)
    assert r.status_code == 200, r.text  # Linseed's bulk: 200 with the per-line errors when any was stored
    assert (r.json()["total"], r.json()["succeeded"], r.json()["failed"]) == (4, 3, 1)
    assert r.json()["errors"][0]["line"] == 2 and r.json()["errors"][0]["field"] == "last_evaluated"

    def rules(body: dict[str, Any]) -> list[str]:
        return [d["rule"] for d in _items(fresh, P, {**GO_ZERO, **body})]

    # Sorted by last_evaluated when no sort is given; values come back as sent, with the cluster and an id.
    got = _items(fresh, P, GO_ZERO)
    assert [_as_sent(d) for d in got] == ACTIVITY
    assert {d["cluster"] for d in got} == {"east"} and all(d["id"] for d in got)
    assert rules({"policy": {"kind": "NetworkPolicy", "namespace": "shop", "name": ""}}) == ["4|ingress|0",
                                                                                                "4|egress|1"]
    assert rules({"policy": {"kind": "", "namespace": "", "name": "security.block-egress"}}) == ["1|egress|2"]
    assert rules({"rules": ["4|egress|1", "1|egress|2"]}) == ["4|egress|1", "1|egress|2"]
    assert rules({"last_evaluated": "2023-11-14T22:11:00Z"}) == ["4|egress|1", "1|egress|2"]  # at or after
    assert rules({"selector": 'policy.namespace = "shop" AND rule = "4|ingress|0"'}) == ["4|ingress|0"]
    assert rules({"sort": [{"field": "last_evaluated", "descending": True}]}) == ["1|egress|2", "4|egress|1",
                                                                                  "4|ingress|0"]
    assert rules({"time_range": {"from": "2023-11-14T22:10:30Z", "to": "2023-11-14T22:11:30Z"}}) == ["4|egress|1"]
    page = _read(fresh, P, {**GO_ZERO, "max_page_size": 2}).json()
    assert len(page["items"]) == 2 and page["total_hits"] == 3
    for body, needle in (({"policy": "x"}, "policy"), ({"policy": {"tier": "a"}}, "policy: unknown field 'tier'"),
                         ({"policy": {"name": 3}}, "policy.name"), ({"rules": "4|egress|1"}, "rules"),
                         ({"last_evaluated": "yesterday"}, "last_evaluated"),
                         ({"ip_matches": [{"ips": ["10.0.0.1"]}]}, "ip_matches: not a parameter of the policy_activity"),
                         ({"selector": "policy.tier = 1"}, "policy.tier")):
        r = _read(fresh, P, {**GO_ZERO, **body})
        assert r.status_code == 400 and needle in r.text and "Traceback" not in r.text, (body, r.text)
    # Through /es/, by Calico's index name.
    q = {"query": {"term": {"policy.kind": "NetworkPolicy"}}, "sort": [{"last_evaluated": "asc"}]}
    r = httpx.post(fresh + "/es/tigera_secure_ee_policy_activity.east.*/_search", json=q, timeout=60)
    assert r.status_code == 200, r.text
    assert [h["_source"]["rule"] for h in r.json()["hits"]["hits"]] == ["4|ingress|0", "4|egress|1"]
    # Calico's single-index name (a `cluster` field in each document) reads the same documents.
    q = {"query": {"term": {"cluster": "east"}}}
    r = httpx.post(fresh + "/es/calico_policy_activity/_search", json=q, timeout=60)
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 3, r.text


def _linseed_id(cluster: str, doc: dict[str, Any]) -> str:
    """Linseed's genDeterministicID: sha256 of cluster|tenant|kind|namespace|name|rule (no tenant here)."""
    p = doc["policy"]
    return hashlib.sha256(f"{cluster}||{p['kind']}|{p['namespace']}|{p['name']}|{doc['rule']}".encode()).hexdigest()


@pytest.fixture
def clocked(tmp_path: Path, engine: dict[str, Any]) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock(datetime(2023, 11, 16, tzinfo=UTC))
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine), clock=clock)) as s:
        yield s.url, clock


def test_policy_activity_keeps_one_document_per_rule_the_newest(clocked: tuple[str, FakeClock]) -> None:
    """Linseed's policy backend upserts: one document per (cluster, policy, rule), replaced only by a strictly
    newer last_evaluated, across days (a newer report lands in a later daily index) and within a batch; and
    it writes one identity at most once an hour (its in-memory throttle), counting the others as stored."""
    url, clock = clocked
    a, b = ACTIVITY[0], ACTIVITY[2]

    def post(docs: list[dict[str, Any]], status: int = 200) -> dict[str, Any]:
        r = httpx.post(url + P + "/bulk", content=_ndjson(docs), headers=NDJSON, timeout=60)
        assert r.status_code == status, r.text
        return dict(r.json())

    def read(body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = _read(url, P, {**GO_ZERO, "time_range": {"from": "2023-11-01T00:00:00Z", "to": "2023-12-01T00:00:00Z"},
                           **(body or {})})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ok(answer: dict[str, Any], n: int) -> None:
        assert (answer["total"], answer["succeeded"], answer["failed"]) == (n, n, 0), answer

    ok(post([a, b]), 2)
    # Within the hour a newer report of `a` is answered as stored and not written (Linseed's dedupWindow).
    clock.advance(timedelta(minutes=59))
    ok(post([{**a, "last_evaluated": "2023-11-15T07:00:00Z"}]), 1)
    assert [_as_sent(d) for d in read()["items"]] == [a, b]
    metrics = httpx.get(url + "/-/metrics", timeout=30).text  # the drop is counted
    assert 'margay_dropped_records_total{cluster="east",reason="throttled",type="policy_activity"} 1' in metrics
    # An hour on, the next day: a newer report of `a` (twice in one batch, the newest wins) and an older one
    # of `b`, which changes nothing.
    clock.advance(timedelta(minutes=1))
    a2 = {**a, "last_evaluated": "2023-11-15T09:00:00.5Z"}
    ok(post([{**a, "last_evaluated": "2023-11-15T08:00:00Z"}, a2, {**b, "last_evaluated": "2023-11-14T20:00:00Z"}]), 3)
    got = read()
    assert got["total_hits"] == 2, got
    assert [_as_sent(d) for d in got["items"]] == [b, a2]
    # Each document's id is Linseed's deterministic id.
    assert {d["id"] for d in got["items"]} == {_linseed_id("east", a), _linseed_id("east", b)}
    # The superseded report of `a` answers no read: not within its own day, not in a count or an aggregation.
    day1 = {"time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}}
    assert [d["rule"] for d in read(day1)["items"]] == [b["rule"]]
    r = _read(url, P + "/aggregation", {**GO_ZERO, **day1, "aggregations": {"r": {"terms": {"field": "rule"}}}})
    assert r.status_code == 200, r.text
    assert [(x["key"], x["doc_count"]) for x in r.json()["r"]["buckets"]] == [(b["rule"], 1)]
    r = httpx.post(url + "/es/tigera_secure_ee_policy_activity.east.*/_search",
                   json={"query": {"term": {"rule": a["rule"]}}}, timeout=60)
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 1, r.text
    assert r.json()["hits"]["hits"][0]["_source"]["last_evaluated"] == a2["last_evaluated"]
    # A report of the same time is not newer: the stored one (and when it was stored) stays.
    clock.advance(timedelta(hours=2))
    before = {d["rule"]: d["generated_time"] for d in read()["items"]}
    ok(post([a2]), 1)
    after = read()
    assert after["total_hits"] == 2 and {d["rule"]: d["generated_time"] for d in after["items"]} == before
    # A refused line marks nothing: the next good report of its rule is written at once.
    c = ACTIVITY[1]
    answer = post([{**c, "last_evaluated": "not a time"}], status=400)
    assert answer["failed"] == 1 and answer["succeeded"] == 0
    ok(post([c]), 1)
    assert [d["rule"] for d in read()["items"]] == [c["rule"], b["rule"], a["rule"]]


def _report(ns: str, kind: str, start: str, path: str) -> dict[str, Any]:
    doc = orjson.loads(SAMPLES["runtime"][0])
    doc["pod"] = {**doc["pod"], "namespace": ns}
    return {**doc, "type": kind, "start_time": start, "file": {**doc["file"], "path": path}}


REPORTS = [_report("shop", "ProcessStart", "2023-11-14T22:13:20.460223952Z", "/usr/bin/curl"),
           _report("data", "FileAccess", "2023-11-14T21:00:00Z", "/etc/passwd")]
R = "/api/v1/runtime/reports"


def test_runtime_reports_bulk_and_list(fresh: str) -> None:
    bad = {**REPORTS[0], "start_time": "not a time"}
    r = httpx.post(fresh + R + "/bulk", content=_ndjson([*REPORTS, bad]), headers=NDJSON, timeout=60)
    assert r.status_code == 200, r.text
    assert (r.json()["total"], r.json()["succeeded"], r.json()["failed"]) == (3, 2, 1)
    assert r.json()["errors"][0]["line"] == 3 and r.json()["errors"][0]["field"] == "start_time"
    r = httpx.post(fresh + "/ingestion" + R + "/bulk", content=_ndjson(REPORTS[:1]), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text

    def paths(body: dict[str, Any]) -> list[str]:
        return [d["file"]["path"] for d in _items(fresh, R, body)]

    # Linseed's handler-test body; sorted by start_time; every value (nested objects too) as sent.
    got = _items(fresh, R, {"time_range": {"from": "2021-04-19T14:25:30.169821857-07:00"}, "timeout": "60s",
                            "max_page_size": 0})
    assert [_as_sent(d) for d in got] == [REPORTS[1], REPORTS[0], REPORTS[0]]
    assert {d["cluster"] for d in got} == {"east"} and len({d["id"] for d in got}) == 3
    # Linseed's runtime list bounds generated_time (when margay stored the report) by `from` alone, at or after
    # it; `to` and `field` are ignored: reports that started before `from` but arrived after it are listed.
    after_start = {"from": "2023-11-15T00:00:00Z"}
    every = ["/etc/passwd", "/usr/bin/curl", "/usr/bin/curl"]
    assert paths({"time_range": after_start}) == every
    assert paths({"time_range": {**after_start, "field": "start_time"}}) == every
    assert paths({"time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}}) == every
    assert paths({"time_range": {"from": "2099-01-01T00:00:00Z", "to": "2099-01-02T00:00:00Z"}}) == []
    last = max(d["generated_time"] for d in got)  # the second batch's: `from` equal to it still lists it
    assert paths({"time_range": {"from": last, "to": "2023-11-15T00:00:00Z"}}) == ["/usr/bin/curl"]
    assert paths({"selector": 'pod.namespace = "data"'}) == ["/etc/passwd"]
    assert paths({"selector": 'type = "ProcessStart" AND file_access.created = false'}) == ["/usr/bin/curl"] * 2
    assert paths({"sort": [{"field": "start_time", "descending": True}], "max_page_size": 1}) == ["/usr/bin/curl"]
    for body, needle in (({"selector": "pod.nosuch = 1"}, "pod.nosuch"), ({"max_page_size": -1}, "max_page_size"),
                         ({"rules": ["x"]}, "rules: not a parameter of the runtime")):
        r = _read(fresh, R, body)
        assert r.status_code == 400 and needle in r.text and "Traceback" not in r.text, (body, r.text)
    # The hashes object inside process_start, in a selector and through /es/.
    sha0 = REPORTS[0]["process_start"]["hashes"]["md5"]
    assert len(paths({"selector": f'process_start.hashes.md5 = "{sha0}"'})) == 3
    sha = REPORTS[0]["process_start"]["hashes"]["sha256"]
    q = {"query": {"term": {"process_start.hashes.sha256": sha}}}
    r = httpx.post(fresh + "/es/tigera_secure_ee_runtime.east.*/_search", json=q, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["hits"]["total"]["value"] == 3
    for index in ("calico_runtime_reports", "tigera_secure_ee_runtime.east.fluentd-20231114-000001"):
        r = httpx.post(fresh + f"/es/{index}/_search", json={"query": {"term": {"cluster": "east"}}}, timeout=60)
        assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 3, (index, r.text)


def test_policy_activity_per_policy_as_linseeds_get_policy_activities(fresh: str) -> None:
    """POST /policy_activity (handler/policy GetPolicyActivities): per policy asked for, its newest time and
    its rules by (generation, direction, index), in the request's order."""
    np_, gnp = ("NetworkPolicy", "shop", "default.web"), ("GlobalNetworkPolicy", "", "security.block")
    docs = [_activity(*np_, "3|ingress|0", "2023-11-14T22:00:00Z"), _activity(*np_, "3|ingress|1", "2023-11-14T22:05:00Z"),
            _activity(*np_, "4|ingress|0", "2023-11-14T22:10:00.123456789Z"),
            _activity(*np_, "4|egress|__IMPLICIT_DENIED__", "2023-11-14T22:20:00Z"),
            _activity(*gnp, "1|egress|2", "2023-11-14T22:30:00Z"),
            _activity("NetworkPolicy", "other", "default.web", "4|ingress|0", "2023-11-14T22:40:00Z")]
    r = httpx.post(fresh + P + "/bulk", content=_ndjson(docs), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 6, r.text

    def ask(body: dict[str, Any]) -> list[dict[str, Any]]:
        r = _read(fresh, "/api/v1/policy_activity", body)
        assert r.status_code == 200, r.text
        items = list(r.json()["items"])
        for it in items:
            it["rules"].sort(key=lambda x: (x["direction"], x["index"], x["generation"]))
        return items

    def pol(kind: str, ns: str, name: str, gen: int | None = None) -> dict[str, Any]:
        return {"kind": kind, "namespace": ns, "name": name, **({"generation": gen} if gen else {})}

    def rule(direction: str, index: str, gen: int, at: str) -> dict[str, Any]:
        return {"direction": direction, "index": index, "generation": gen, "last_evaluated": at}

    got = ask({"policies": [pol(*gnp), pol(*np_)]})
    assert got == [
        {"policy": pol(*gnp), "last_evaluated": "2023-11-14T22:30:00Z",
         "rules": [rule("egress", "2", 1, "2023-11-14T22:30:00Z")]},
        {"policy": pol(*np_), "last_evaluated": "2023-11-14T22:20:00Z",
         "rules": [rule("egress", "implicit_deny", 4, "2023-11-14T22:20:00Z"),
                   rule("ingress", "0", 3, "2023-11-14T22:00:00Z"),
                   rule("ingress", "0", 4, "2023-11-14T22:10:00.123456789Z"),
                   rule("ingress", "1", 3, "2023-11-14T22:05:00Z")]}]
    # One generation; a time range on last_evaluated; an empty namespace matches any but answers the global key.
    assert [[(x["generation"], x["index"]) for x in it["rules"]] for it in ask({"policies": [pol(*np_, 4)]})] \
        == [[(4, "implicit_deny"), (4, "0")]]
    window = ask({"policies": [pol(*np_), pol(*gnp)], "from": "2023-11-14T22:06:00Z", "to": "2023-11-14T22:25:00Z"})
    assert [(it["policy"]["name"], len(it["rules"])) for it in window] == [("default.web", 2)]
    assert ask({"policies": [pol("NetworkPolicy", "", "default.web")]}) == []
    assert ask({"policies": []}) == [] and ask({}) == []
    for body, needle in (({"policies": [{"kind": "NetworkPolicy"}]}, "policies[0].name"),
                         ({"policies": [pol(*np_, 0) | {"generation": 0}]}, "policies[0].generation"),
                         ({"policies": [{**pol(*np_), "tier": "x"}]}, "unknown field 'tier'"),
                         ({"policies": "x"}, "policies: expected a list"), ({"selector": "x"}, "unknown field"),
                         ({"policies": [pol(*np_)], "from": "2023-11-15T00:00:00Z", "to": "2023-11-14T00:00:00Z"},
                          "after")):
        r = _read(fresh, "/api/v1/policy_activity", body)
        assert r.status_code == 400 and needle in r.text and "Traceback" not in r.text, (body, r.text)


def test_the_throttle_never_answers_for_a_rule_it_did_not_store(clocked: tuple[str, FakeClock]) -> None:
    """The throttle's identity must be the stored one: a JSON `true` is stored as the keyword 'true', so a
    later report of the rule 'True' is another rule and must be written, not answered as stored and dropped
    (a writer's own cluster only, but a 2xx for a record never stored)."""
    url, clock = clocked
    base = ACTIVITY[0]

    def post(doc: dict[str, Any]) -> None:
        r = httpx.post(url + P + "/bulk", content=_ndjson([doc]), headers=NDJSON, timeout=60)
        assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text

    post({**base, "rule": True})
    clock.advance(timedelta(minutes=1))
    post({**base, "rule": "True"})
    r = _read(url, P, {**GO_ZERO, "time_range": {"from": "2023-11-01T00:00:00Z", "to": "2023-12-01T00:00:00Z"}})
    assert r.status_code == 200, r.text
    assert sorted(d["rule"] for d in r.json()["items"]) == ["True", "true"], r.json()["items"]


def test_policy_activity_answers_the_largest_request_it_accepts(fresh: str) -> None:
    """MAX_POLICIES policies, each with a namespace and a generation (four terms apiece), are a valid request:
    answered, on either engine, not refused by the engine's clause limits as a server error."""
    docs = [_activity("NetworkPolicy", "shop", f"p{i}", "2|ingress|0", "2023-11-14T22:00:00Z") for i in range(3)]
    r = httpx.post(fresh + P + "/bulk", content=_ndjson(docs), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 3, r.text
    policies = [{"kind": "NetworkPolicy", "namespace": "shop", "name": f"p{i}", "generation": 2} for i in range(1000)]
    r = _read(fresh, "/api/v1/policy_activity", {"policies": policies})
    assert r.status_code == 200, r.text[:500]
    assert [it["policy"]["name"] for it in r.json()["items"]] == ["p0", "p1", "p2"]


def test_policy_activity_ids_never_collide_across_identities_or_clusters(clocked: tuple[str, FakeClock]) -> None:
    """Linseed's id hashes `cluster|tenant|kind|namespace|name|rule`: namespace `a|b`, name `c` and namespace
    `a`, name `b|c` give the same string, so the newer report replaced the other on OpenSearch (and both
    answered with one id on the embedded store). Each identity keeps its own document and id; a record whose
    values hold no `|` before the rule keeps Linseed's id; the same identity of another cluster is its own."""
    url, _ = clocked
    one = _activity("NetworkPolicy", "a|b", "c", "1|ingress|0", "2023-11-14T10:00:00Z")
    two = _activity("NetworkPolicy", "a", "b|c", "1|ingress|0", "2023-11-14T11:00:00Z")
    three = _activity("NetworkPolicy|a", "b", "c", "1|ingress|0", "2023-11-14T12:00:00Z")
    plain = ACTIVITY[0]
    for cluster, docs in (("east", [one]), ("east", [two, plain]), ("east", [three]), ("west", [one])):
        r = httpx.post(url + P + "/bulk", content=_ndjson(docs), timeout=60,
                       headers={**NDJSON, "x-cluster-id": cluster})
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text
    got = _items(url, P, {**GO_ZERO, "time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}})
    assert [_as_sent(d) for d in got] == [one, two, three, plain]
    assert len({d["id"] for d in got}) == 4
    assert [d["id"] for d in got][3] == _linseed_id("east", plain)
    assert _linseed_id("east", one) == _linseed_id("east", two)  # the ambiguity the ids avoid
    r = httpx.post(url + P, json={**GO_ZERO, "time_range": {"from": "2023-11-14T00:00:00Z",
                                                            "to": "2023-11-15T00:00:00Z"}},
                   headers={"x-cluster-id": "west"}, timeout=60)
    assert r.status_code == 200 and [_as_sent(d) for d in r.json()["items"]] == [one], r.text
    assert r.json()["items"][0]["id"] not in {d["id"] for d in got}
