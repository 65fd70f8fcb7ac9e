"""Linseed compatibility, written from Linseed's request structs and handler defaults
(`linseed/pkg/apis/v1/{params,l3_log,audit,dns_log,events}.go`), on both engines over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.testing.server import ServerThread

NDJSON = {"content-type": "application/x-ndjson", "x-cluster-id": "east"}
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
T0 = 1_700_000_000


def _flow(i: int, src: str, dst: str, policies: list[str], pending: list[str] | None = None) -> dict[str, Any]:
    return {"start_time": T0 + i * 60, "end_time": T0 + i * 60 + 60, "action": "allow", "reporter": "src",
            "proto": "tcp", "source_ip": src, "dest_ip": dst, "source_type": "wep", "dest_type": "wep",
            "source_namespace": "shop", "dest_namespace": "data", "source_name_aggr": "web-*",
            "dest_name_aggr": "db-*", "dest_port": 5432, "bytes_in": 10 * (i + 1), "bytes_out": 1,
            "packets_in": 1, "packets_out": 1, "num_flows": 1, "num_flows_started": 1, "num_flows_completed": 1,
            "host": "node-1",
            "policies": {"all_policies": policies, "enforced_policies": policies,
                         "pending_policies": pending or [], "transit_policies": []}}


FLOWS = [
    _flow(0, "10.0.0.1", "10.1.0.1", ["0|default|shop/default.web-egress|allow|0"]),
    _flow(1, "10.0.0.2", "10.1.0.2", ["0|security|security.block-egress|deny|2"]),
    _flow(2, "10.1.0.1", "10.0.0.9", ["0|default|data/knp.default.db-ingress|allow|0"],
          ["0|default|data/staged:default.db-open|allow|0"]),
    _flow(3, "10.0.0.4", "10.1.0.4", ["0|__PROFILE__|__PROFILE__.kns.shop|allow|0"]),
]


def _audit(i: int, verb: str, level: str, code: int, user: str, resource: str, name: str, ns: str = "",
           uri_extra: str = "") -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource, "name": name, "apiGroup": "projectcalico.org", "apiVersion": "v3"}
    if ns:
        ref["namespace"] = ns
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Event", "level": level, "auditID": f"a-{i}",
            "stage": "ResponseComplete", "requestURI": f"/apis/projectcalico.org/v3/{resource}/{name}{uri_extra}",
            "verb": verb, "user": {"username": user, "groups": ["g"]}, "sourceIPs": ["10.0.0.5"],
            "objectRef": ref, "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": f"2023-11-14T22:1{i}:00.000000Z",
            "stageTimestamp": f"2023-11-14T22:1{i}:00.100000Z"}


AUDIT = [
    _audit(0, "create", "RequestResponse", 201, "alice", "networkpolicies", "default.a", "shop"),
    _audit(1, "delete", "RequestResponse", 200, "bob", "globalnetworkpolicies", "default.b"),
    _audit(2, "delete", "Metadata", 403, "bob", "networkpolicies", "default.c", "data"),
    _audit(3, "patch", "RequestResponse", 200, "carol", "networksets", "n1", "shop", "?dryRun=All"),
]


def _dns(i: int, qname: str, rrname: str, rdata: str) -> dict[str, Any]:
    return {"start_time": f"2023-11-14T22:1{i}:00Z", "end_time": f"2023-11-14T22:1{i}:30Z", "type": "log",
            "count": 1, "client_name": "-", "client_name_aggr": "web-*", "client_namespace": "shop",
            "client_ip": None, "client_labels": {}, "servers": [], "qname": qname, "qclass": "IN",
            "qtype": "A", "rcode": "NoError", "host": "node-1",
            "rrsets": [{"name": rrname, "class": "IN", "type": "CNAME", "rdata": [rdata]}],
            "latency": {"count": 1, "mean": 1000, "max": 1000}, "latency_count": 1, "latency_mean": 1000,
            "latency_max": 1000}


DNS = [_dns(0, "api.example.com", "api.example.com", "edge.cdn.net"),
       _dns(1, "www.example.org", "www.example.org", "lb.example.org"),
       _dns(2, "shop.example.net", "shop.example.net", "api.example.com")]


def _ndjson(docs: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in docs)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("linseed")
    with ServerThread(create_app(Settings(data_dir=data, **module_engine))) as s:
        for path, docs in (("/api/v1/flows/logs/bulk", FLOWS), ("/api/v1/audit/logs/kube/bulk", AUDIT),
                           ("/api/v1/dns/logs/bulk", DNS)):
            r = httpx.post(s.url + path, content=_ndjson(docs), headers=NDJSON, timeout=60)
            assert r.status_code == 200 and r.json()["succeeded"] == len(docs), r.text
        yield s.url


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json={"time_range": ALL_TIME, **body}, headers={"x-cluster-id": "east"},
                      timeout=60)


def items(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = post(url, path, body)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# -- QueryParams: max_page_size 0 is Linseed's default page of 1000 (GetMaxPageSize) ----------------------

def test_max_page_size_zero_is_the_default_page(site: str) -> None:
    got = items(site, "/api/v1/flows/logs", {"max_page_size": 0})
    assert len(got) == len(FLOWS)
    assert len(items(site, "/api/v1/flows/logs", {"max_page_size": 1})) == 1
    r = post(site, "/api/v1/flows/logs", {"max_page_size": -1})
    assert r.status_code == 400 and "max_page_size" in r.text


# -- FlowLogParams --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("match", "want"), [
    ({"type": "src", "ips": ["10.0.0.1", "10.0.0.2"]}, {"10.0.0.1", "10.0.0.2"}),
    ({"type": "dst", "ips": ["10.0.0.9"]}, {"10.1.0.1"}),
    ({"type": "any", "ips": ["10.1.0.1"]}, {"10.0.0.1", "10.1.0.1"}),
    ({"ips": ["10.1.0.1"]}, {"10.0.0.1", "10.1.0.1"}),  # type defaults to any
])
def test_ip_matches(site: str, match: dict[str, Any], want: set[str]) -> None:
    got = items(site, "/api/v1/flows/logs", {"ip_matches": [match]})
    assert {f["source_ip"] for f in got} == want


@pytest.mark.parametrize(("param", "matches", "want"), [
    ("policy_matches", [{"tier": "security"}], {"10.0.0.2"}),
    ("policy_matches", [{"tier": "default", "action": "allow"}], {"10.0.0.1", "10.1.0.1"}),
    ("policy_matches", [{"tier": "default", "namespace": "shop", "name": "web-egress"}], {"10.0.0.1"}),
    ("policy_matches", [{"type": "knp", "namespace": "data", "name": "db-ingress"}], {"10.1.0.1"}),
    ("policy_matches", [{"tier": "security"}, {"namespace": "shop"}], {"10.0.0.1", "10.0.0.2"}),  # ORed
    ("enforced_policy_matches", [{"action": "deny"}], {"10.0.0.2"}),
    ("pending_policy_matches", [{"staged": True, "namespace": "data", "tier": "default", "name": "db-open"}],
     {"10.1.0.1"}),
    ("pending_policy_matches", [{"tier": "default"}], {"10.1.0.1"}),
    ("transit_policy_matches", [{"tier": "default"}], set()),
])
def test_policy_matches(site: str, param: str, matches: list[dict[str, Any]], want: set[str]) -> None:
    got = items(site, "/api/v1/flows/logs", {param: matches})
    assert {f["source_ip"] for f in got} == want


def test_typed_filters_and_the_selector_are_anded(site: str) -> None:
    got = items(site, "/api/v1/flows/logs", {"selector": "bytes_in >= 20",
                                             "ip_matches": [{"type": "src", "ips": ["10.0.0.1", "10.0.0.2"]}]})
    assert [f["source_ip"] for f in got] == ["10.0.0.2"]
    agg = post(site, "/api/v1/flows/logs/aggregation",
               {"policy_matches": [{"tier": "default"}], "aggregations": {"s": {"sum": {"field": "bytes_in"}}}})
    assert agg.status_code == 200, agg.text
    assert agg.json() == {"s": {"value": 10.0 + 30.0}}  # the map itself, as Linseed answers


@pytest.mark.parametrize(("body", "needle"), [
    ({"ip_matches": [{"type": "sideways", "ips": ["1.2.3.4"]}]}, "ip_matches[0].type"),
    ({"ip_matches": {"ips": []}}, "ip_matches: expected a list"),
    ({"policy_matches": [{"tier": "a.b"}]}, "policy_matches[0].tier"),
    ({"policy_matches": [{"action": "maybe"}]}, "policy_matches[0].action"),
    ({"verbs": ["delete"]}, "verbs: not a parameter of the flows endpoint"),
])
def test_bad_typed_filters_are_400_naming_the_field(site: str, body: dict[str, Any], needle: str) -> None:
    r = post(site, "/api/v1/flows/logs", body)
    assert r.status_code == 400
    assert needle in r.json()["error"]["message"]


# -- AuditLogParams -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "want"), [
    ({"verbs": ["delete"]}, {"a-1", "a-2"}),
    ({"levels": ["Metadata"]}, {"a-2"}),
    ({"response_codes": [201, 403]}, {"a-0", "a-2"}),
    ({"authors": ["alice", "carol"]}, {"a-0", "a-3"}),
    ({"kinds": ["globalnetworkpolicies", "networksets"]}, {"a-1", "a-3"}),
    ({"stages": ["ResponseComplete"], "verbs": ["delete"], "levels": ["RequestResponse"]}, {"a-1"}),
    ({"object_refs": [{"name": "default.a", "namespace": "shop"}, {"resource": "globalnetworkpolicies"}]},
     {"a-0", "a-1"}),
    ({"object_refs": [{"name": "default.a", "namespace": "data"}]}, set()),
    ({"exclude_dry_runs": True}, {"a-0", "a-1", "a-2"}),
])
def test_audit_filters(site: str, body: dict[str, Any], want: set[str]) -> None:
    got = items(site, "/api/v1/audit/logs", {"type": "kube", **body})
    assert {a["auditID"] for a in got} == want


def test_audit_filter_errors(site: str) -> None:
    r = post(site, "/api/v1/audit/logs", {"type": "kube", "response_codes": ["200"]})
    assert r.status_code == 400 and "response_codes[0]" in r.json()["error"]["message"]
    r = post(site, "/api/v1/audit/logs", {"type": "kube", "object_refs": [{"kind": "Pod"}]})
    assert r.status_code == 400 and "unknown field 'kind'" in r.json()["error"]["message"]


# -- DNSLogParams ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("match", "want"), [
    ({"type": "qname", "domains": ["api.example.com"]}, {"api.example.com"}),
    ({"type": "rrset", "domains": ["www.example.org"]}, {"www.example.org"}),
    ({"type": "rrdata", "domains": ["api.example.com"]}, {"shop.example.net"}),
    ({"type": "any", "domains": ["api.example.com"]}, {"api.example.com", "shop.example.net"}),
])
def test_domain_matches(site: str, match: dict[str, Any], want: set[str]) -> None:
    got = items(site, "/api/v1/dns/logs", {"domain_matches": [match]})
    assert {d["qname"] for d in got} == want


# -- bulk: 200 with per-record errors when any record is stored; the /ingestion prefix ----------------------

def _send_like_calico(url: str, path: str, body: bytes, attempts: int = 5) -> list[httpx.Response]:
    """Calico's Go client and fluent-bit output: a non-2xx answer is retried, the same body again."""
    answers = []
    for _ in range(attempts):
        r = httpx.post(url + path, content=body, headers=NDJSON, timeout=60)
        answers.append(r)
        if 200 <= r.status_code < 300:
            break
    return answers


@pytest.fixture
def fresh(tmp_path: Path, engine: dict[str, Any]) -> Iterator[str]:
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine))) as s:
        yield s.url


def test_a_retried_partial_failure_batch_stores_each_good_record_once(fresh: str) -> None:
    good = [_flow(i, f"10.9.0.{i}", "10.1.0.1", []) for i in range(5)]
    bad = {**_flow(9, "10.9.0.9", "10.1.0.1", []), "action": "permit"}
    body = _ndjson([good[0], good[1], bad, *good[2:]])
    answers = _send_like_calico(fresh, "/ingestion/api/v1/flows/logs/bulk", body)
    assert [a.status_code for a in answers] == [200]
    assert answers[0].json() == {"total": 6, "succeeded": 5, "failed": 1, "errors": [
        {"line": 3, "field": "action", "msg": "must be one of: allow, deny"}]}
    stored = items(fresh, "/api/v1/flows/logs", {"max_page_size": 0})
    assert sorted(f["source_ip"] for f in stored) == sorted(g["source_ip"] for g in good)


def test_a_batch_with_nothing_stored_is_400_and_retries_store_nothing(fresh: str) -> None:
    bad = [{**_flow(i, "10.9.0.1", "10.1.0.1", []), "action": "permit"} for i in range(3)]
    answers = _send_like_calico(fresh, "/api/v1/flows/logs/bulk", _ndjson(bad), attempts=3)
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert answers[0].json()["succeeded"] == 0 and answers[0].json()["failed"] == 3
    assert post(fresh, "/api/v1/flows/logs", {}).json()["total_hits"] == 0


def test_an_idempotent_replay_of_a_partial_batch_answers_200_again(fresh: str) -> None:
    body = _ndjson([FLOWS[0], {**FLOWS[1], "reporter": "sideways"}])
    headers = {**NDJSON, "idempotency-key": "batch-1"}
    first = httpx.post(fresh + "/api/v1/flows/logs/bulk", content=body, headers=headers, timeout=60)
    again = httpx.post(fresh + "/api/v1/flows/logs/bulk", content=body, headers=headers, timeout=60)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert post(fresh, "/api/v1/flows/logs", {}).json()["total_hits"] == 1
    # another batch under the used key: a 409 on either engine (the key's stored response keeps its digest)
    other = httpx.post(fresh + "/api/v1/flows/logs/bulk", content=_ndjson([FLOWS[0]]), headers=headers, timeout=60)
    assert other.status_code == 409 and "another batch" in other.text, other.text
    assert post(fresh, "/api/v1/flows/logs", {}).json()["total_hits"] == 1


# -- Linseed's functional-test records (tests/data/calico-linseed) come back with every value sent -----------

FIXTURES = Path(__file__).parent.parent / "data" / "calico-linseed"
ROUND_TRIP = {  # file: (bulk path, read path, read body)
    "flow_logs_legacy.txt": ("/api/v1/flows/logs/bulk", "/api/v1/flows/logs", {}),
    "ee_audit_logs_legacy.txt": ("/api/v1/audit/logs/ee/bulk", "/api/v1/audit/logs", {"type": "ee"}),
    "kube_audit_logs_legacy.txt": ("/api/v1/audit/logs/kube/bulk", "/api/v1/audit/logs", {"type": "kube"}),
    "l7_logs_legacy.txt": ("/api/v1/l7/logs/bulk", "/api/v1/l7/logs", {}),
    "l7_logs_gateway_collector.txt": ("/api/v1/l7/logs/bulk", "/api/v1/l7/logs", {}),
    "dns_logs_legacy.txt": ("/api/v1/dns/logs/bulk", "/api/v1/dns/logs", {}),
    "bgp_logs_legacy.txt": ("/api/v1/bgp/logs/bulk", "/api/v1/bgp/logs", {}),
    "anomaly_detection_event.json": ("/api/v1/events/bulk", "/api/v1/events", {}),
    "waf_logs_legacy.txt": ("/api/v1/waf/logs/bulk", "/api/v1/waf/logs", {}),
}


def _missing(sent: Any, got: Any, path: str = "") -> list[str]:
    """Where `got` does not hold `sent`'s value (extra keys in `got`'s objects are allowed; a sent value,
    its type, its text and list order are not changed)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{path}: sent an object, got {got!r}"]
        return [p for k, v in sent.items()
                for p in ([f"{path}.{k}: dropped"] if k not in got else _missing(v, got[k], f"{path}.{k}"))]
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        return [p for i, (s, g) in enumerate(zip(sent, got, strict=True)) for p in _missing(s, g, f"{path}[{i}]")]
    return [] if sent == got else [f"{path}: sent {sent!r}, got {got!r}"]


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_linseed_records_round_trip(tmp_path: Path, engine: dict[str, Any], name: str) -> None:
    bulk, read, extra = ROUND_TRIP[name]
    sent = [orjson.loads(line) for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine))) as s:
        r = httpx.post(s.url + bulk, content=_ndjson(sent), headers=NDJSON, timeout=60)
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        got = items(s.url, read, {"max_page_size": 0, **extra})
        # The same documents through the Elasticsearch API, as Kibana or an ES client reads Calico's index.
        prefix = _logtype_of(bulk).index_prefix
        r = httpx.post(s.url + f"/es/{prefix}.east.*/_search", json={"size": 1000}, timeout=60)
        assert r.status_code == 200, r.text
        sources = [h["_source"] for h in r.json()["hits"]["hits"]]
    for where, docs in (("Linseed API", got), ("/es/", sources)):
        assert len(docs) == len(sent), where
        for doc in sent:
            best = min((_missing(doc, g) for g in docs), key=len)
            assert best == [], f"{name} via {where}: no stored record holds {doc}: {best}"


def _logtype_of(bulk: str) -> Any:
    from margay.logtypes import REGISTRY

    return next(lt for lt in REGISTRY.values() if lt.bulk_path and bulk == "/api/v1" + lt.bulk_path)


# -- FlowLogCountParams: POST /flows/logs/count ------------------------------------------------------------

def test_flow_log_counts(site: str) -> None:
    extra = [_flow(10, "10.5.0.1", "10.5.0.2", []), _flow(11, "10.5.0.3", "10.5.0.4", [])]
    extra[0].update(source_namespace="kube-system", dest_namespace="kube-system")
    extra[1].update(source_namespace="-", dest_namespace="kube-system")
    r = httpx.post(site + "/api/v1/flows/logs/bulk", content=_ndjson(extra), headers={**NDJSON, "x-cluster-id": "west"},
                   timeout=60)
    assert r.status_code == 200, r.text

    def count(body: dict[str, Any], cluster: str = "east") -> httpx.Response:
        return httpx.post(site + "/api/v1/flows/logs/count", json={"time_range": ALL_TIME, **body},
                          headers={"x-cluster-id": cluster}, timeout=60)

    assert count({"count_type": "global"}).json() == {"global_count": len(FLOWS), "namespaced_counts": None}
    assert count({"count_type": "namespaced"}).json() == {"namespaced_counts": {"data": 4, "shop": 4}}
    assert count({"count_type": "global_and_namespaced", "ip_matches": [{"type": "src", "ips": ["10.0.0.1"]}]}
                 ).json() == {"global_count": 1, "namespaced_counts": {"data": 1, "shop": 1}}
    # A log whose two namespaces are the same counts once for it; "-" is a namespace value like any other.
    assert count({"count_type": "namespaced"}, "west").json() == {
        "namespaced_counts": {"-": 1, "kube-system": 2}}
    r = count({})
    assert r.status_code == 400 and "count_type" in r.json()["error"]["message"]
    r = count({"count_type": "everything"})
    assert r.status_code == 400 and "count_type" in r.json()["error"]["message"]


# -- EventStatisticsParams: POST /events/statistics ---------------------------------------------------------

DAY = 86_400
EVENTS = [
    {"time": T0 + i * 3600 * 7, "type": t, "name": n, "severity": s, "origin": "margay-test",
     "description": f"event {i}", "source_namespace": "shop", "dest_namespace": d,
     "mitre_ids": ["T1046"] if i % 2 else ["T1046", "T1190"]}
    for i, (t, n, s, d) in enumerate([("gtf_suspicious_flow", "feed-a", 90, "data"),
                                       ("gtf_suspicious_flow", "feed-a", 70, "data"),
                                       ("gtf_suspicious_dns_query", "feed-b", 90, "shop"),
                                       ("waf", "waf-rule", 40, "data"),
                                       ("gtf_suspicious_flow", "feed-c", 90, "kube-system")])
]


def test_event_statistics(site: str) -> None:
    r = httpx.post(site + "/api/v1/events/bulk", content=_ndjson(EVENTS), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == len(EVENTS), r.text
    body = {"field_values": {"type": {"count": True, "group_by_severity": True}, "severity": {"count": True},
                             "mitre_ids": {"count": True}, "dest_namespace": {"count": True}},
            "severity_histograms": [{"name": "high", "selector": "severity >= 70"},
                                    {"name": "low", "selector": "severity < 70"}]}
    r = post(site, "/api/v1/events/statistics", body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["field_values"]["type"] == [
        {"value": "gtf_suspicious_flow", "count": 3, "by_severity": [{"value": 90, "count": 2},
                                                                      {"value": 70, "count": 1}]},
        {"value": "gtf_suspicious_dns_query", "count": 1, "by_severity": [{"value": 90, "count": 1}]},
        {"value": "waf", "count": 1, "by_severity": [{"value": 40, "count": 1}]}]
    assert got["field_values"]["severity"] == [{"value": 90, "count": 3}, {"value": 40, "count": 1},
                                               {"value": 70, "count": 1}]
    assert got["field_values"]["mitre_ids"] == [{"value": "T1046", "count": 5}, {"value": "T1190", "count": 3}]
    assert {v["value"]: v["count"] for v in got["field_values"]["dest_namespace"]} == {
        "data": 3, "shop": 1, "kube-system": 1}
    days = {(e["time"] // DAY) * DAY * 1000 for e in EVENTS}
    high = {b["time"]: b["value"] for b in got["severity_histograms"]["high"]}
    low = {b["time"]: b["value"] for b in got["severity_histograms"]["low"]}
    assert set(high) | set(low) <= days and sum(high.values()) == 4 and sum(low.values()) == 1
    # The request's own selector narrows both.
    narrowed = post(site, "/api/v1/events/statistics", {**body, "selector": "type = waf"}).json()
    assert [v["value"] for v in narrowed["field_values"]["type"]] == ["waf"]
    assert narrowed["severity_histograms"]["high"] == [] and sum(b["value"] for b in narrowed["severity_histograms"]["low"]) == 1
    for bad, needle in (({"field_values": {"description": {"count": True}}}, "field_values.description"),
                        ({"severity_histograms": [{"selector": "severity > 1"}]}, "severity_histograms[0]"),
                        ({"severity_histograms": [{"name": "x", "selector": "severity >"}]}, "selector"),
                        ({"sort": [{"field": "time"}]}, "sort")):
        r = post(site, "/api/v1/events/statistics", bad)
        assert r.status_code == 400 and needle in r.json()["error"]["message"], (bad, r.text)


# -- values as stored; a field margay does not declare is kept and returned --------------------------------

def test_undeclared_fields_are_kept_and_returned(fresh: str) -> None:
    flow = {**_flow(0, "10.7.0.1", "10.7.0.2", []), "new_felix_field": {"a": [1, "x"]}, "flag": None,
            "cluster": "spoofed", "generated_time": "1999-01-01T00:00:00Z"}
    event = {"time": "2023-04-28T19:38:14+00:00", "type": "anomaly_detection_job", "description": "d",
             "severity": 10, "origin": "o", "dismissed": None, "model_version": "v3"}
    for path, doc in (("/api/v1/flows/logs/bulk", flow), ("/api/v1/events/bulk", event)):
        r = httpx.post(fresh + path, content=_ndjson([doc]), headers=NDJSON, timeout=60)
        assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text
    [got] = items(fresh, "/api/v1/flows/logs", {})
    assert got["new_felix_field"] == {"a": [1, "x"]} and "flag" in got and got["flag"] is None
    assert got["cluster"] == "east" and got["generated_time"] != "1999-01-01T00:00:00Z"  # the server's own
    [ev] = items(fresh, "/api/v1/events", {})
    assert (ev["time"], ev["dismissed"], ev["model_version"]) == ("2023-04-28T19:38:14+00:00", None, "v3")
    # Filters read the stored columns: a null `dismissed` is not dismissed, the time is the instant sent.
    assert len(items(fresh, "/api/v1/events", {"selector": "dismissed = false"})) == 1
    window = {"from": "2023-04-28T19:38:14Z", "to": "2023-04-28T19:38:14Z"}
    assert post(fresh, "/api/v1/events", {"time_range": window}).json()["total_hits"] == 1


def test_times_come_back_as_sent(fresh: str) -> None:
    dns = [{**DNS[0], "start_time": "2023-02-10T01:11:46.413467767Z", "end_time": "2023-02-10T01:17:11.310500008Z"},
           {**DNS[1], "start_time": "2023-02-10T01:12:00+00:00", "end_time": 1675991600}]
    bgp = [{"logtime": "2023-02-23T00:11:46", "message": "m", "host": "n", "ip_version": "IPv4"}]
    for path, docs in (("/api/v1/dns/logs/bulk", dns), ("/api/v1/bgp/logs/bulk", bgp)):
        r = httpx.post(fresh + path, content=_ndjson(docs), headers=NDJSON, timeout=60)
        assert r.status_code == 200 and r.json()["succeeded"] == len(docs), r.text
    got = sorted(items(fresh, "/api/v1/dns/logs", {}), key=lambda d: str(d["start_time"]))
    assert [(d["start_time"], d["end_time"]) for d in got] == [
        ("2023-02-10T01:11:46.413467767Z", "2023-02-10T01:17:11.310500008Z"),
        ("2023-02-10T01:12:00+00:00", 1675991600)]
    # Sorting and ranges use the instant: the nanosecond record ends last.
    newest = items(fresh, "/api/v1/dns/logs", {"sort": [{"field": "end_time", "descending": True}]})
    assert newest[0]["end_time"] == "2023-02-10T01:17:11.310500008Z"
    [b] = items(fresh, "/api/v1/bgp/logs", {})
    assert b["logtime"] == "2023-02-23T00:11:46"


# -- DNSFlowParams / L7FlowParams: POST /dns/flows and /l7/flows (legacy/{dns,l7}/flows.go) ------------------

def _dns_log(ns: str, name: str, rcode: str, lc: int, mean: int, mx: int) -> dict[str, Any]:
    return {"start_time": "2023-11-14T22:10:00Z", "end_time": "2023-11-14T22:10:05Z", "type": "log", "count": 1,
            "client_name": f"{name}-1", "client_name_aggr": name, "client_namespace": ns, "client_ip": "10.0.1.1",
            "qname": "qname", "qclass": "IN", "qtype": "A", "rcode": rcode, "rrsets": [], "servers": [],
            "latency": {"count": 15, "mean": 5_000_000_000, "max": 10_000_000_000},
            "latency_count": lc, "latency_mean": mean, "latency_max": mx, "host": "n"}


def test_dns_flows(fresh: str) -> None:
    # As Linseed's TestListDNSFlows: ten logs of one client and response code make one flow.
    logs = [_dns_log("default", "my-deployment", "NoError", 100, 100, 100) for _ in range(10)]
    logs += [_dns_log("default", "other", "NXDomain", 1, 30, 40), _dns_log("default", "other", "NXDomain", 3, 10, 90)]
    r = httpx.post(fresh + "/api/v1/dns/logs/bulk", content=_ndjson(logs), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 12, r.text
    r = post(fresh, "/api/v1/dns/flows", {"max_page_size": 0})
    assert r.status_code == 200, r.text
    assert r.json() == {"total_hits": 0, "items": [
        {"key": {"source": {"type": "wep", "name": "", "aggregated_name": "my-deployment", "namespace": "default",
                            "port": 0}, "response_code": "NoError", "cluster": "east"},
         "latency_stats": {"mean_request_latency": 100.0, "max_request_latency": 100.0,
                           "min_request_latency": 100.0, "latency_count": 1000}, "count": 10},
        {"key": {"source": {"type": "wep", "name": "", "aggregated_name": "other", "namespace": "default",
                            "port": 0}, "response_code": "NXDomain", "cluster": "east"},
         "latency_stats": {"mean_request_latency": 15.0, "max_request_latency": 90.0,  # (30*1 + 10*3) / 4
                           "min_request_latency": 10.0, "latency_count": 4}, "count": 2}]}
    first = post(fresh, "/api/v1/dns/flows", {"max_page_size": 1}).json()
    assert [i["key"]["source"]["aggregated_name"] for i in first["items"]] == ["my-deployment"]
    assert first["after_key"] == {"cluster": "east", "client_namespace": "default",
                                  "client_name_aggr": "my-deployment", "rcode": "NoError"}
    second = post(fresh, "/api/v1/dns/flows", {"max_page_size": 1, "after_key": first["after_key"]}).json()
    assert [i["key"]["source"]["aggregated_name"] for i in second["items"]] == ["other"] and "after_key" not in second
    # No time range: Linseed's last five minutes, which hold none of these 2023 logs.
    r = httpx.post(fresh + "/api/v1/dns/flows", json={}, headers={"x-cluster-id": "east"}, timeout=60)
    assert r.status_code == 200 and r.json()["items"] == []
    r = post(fresh, "/api/v1/dns/flows", {"after_key": {"rcode": "x"}})
    assert r.status_code == 400 and "after_key" in r.text


def _l7(src: str, code: str, port_name: str | None, bytes_in: int, dmean: int, dmax: int) -> dict[str, Any]:
    doc = {"start_time": 1700000000, "end_time": 1700000060, "duration_mean": dmean, "duration_max": dmax,
           "bytes_in": bytes_in, "bytes_out": 2 * bytes_in, "count": 3, "src_name_aggr": src, "src_namespace": "fe",
           "src_type": "wep", "dest_name_aggr": "api-*", "dest_namespace": "be", "dest_type": "wep",
           "dest_port_num": 8080, "dest_service_name": "api", "dest_service_namespace": "be",
           "dest_service_port": 80, "response_code": code, "method": "GET", "url": "/x"}
    if port_name is not None:
        doc["dest_service_port_name"] = port_name
    return doc


def test_l7_flows(fresh: str) -> None:
    logs = [_l7("web-*", "200", "http", 100, 10, 30), _l7("web-*", "200", "http", 300, 20, 50),
            _l7("cli-*", "503", None, 7, 1, 1), _l7("idle-*", "200", "http", 0, 0, 0)]
    logs[3]["bytes_out"] = 0
    r = httpx.post(fresh + "/api/v1/l7/logs/bulk", content=_ndjson(logs), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 4, r.text
    r = httpx.post(fresh + "/api/v1/l7/flows", json={"max_page_size": 0}, headers={"x-cluster-id": "east"}, timeout=60)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    dest = {"type": "wep", "name": "", "aggregated_name": "api-*", "namespace": "be", "port": 8080}
    svc = {"service": {"Namespace": "be", "Name": "api"}, "port": 80}
    assert items == [  # composite order: port name missing first; the flow with no statistics is skipped
        {"key": {"cluster": "east", "source": {"type": "wep", "name": "", "aggregated_name": "cli-*", "namespace": "fe",
                                               "port": 0},
                 "destination": dest, "destination_service": {**svc, "port_name": ""}, "protocol": "tcp"},
         "code": 503, "log_count": 3,
         "stats": {"bytes_in": 7, "bytes_out": 14, "mean_duration": 1, "min_duration": 1, "max_duration": 1}},
        {"key": {"cluster": "east", "source": {"type": "wep", "name": "", "aggregated_name": "web-*", "namespace": "fe",
                                               "port": 0},
                 "destination": dest, "destination_service": {**svc, "port_name": "http"}, "protocol": "tcp"},
         "code": 200, "log_count": 6,
         "stats": {"bytes_in": 400, "bytes_out": 800, "mean_duration": 15, "min_duration": 10, "max_duration": 50}}]


# -- events/bulk: POST creates, PUT dismisses, DELETE deletes (handler/events/handler.go Bulk) ------------

def test_events_bulk_dismiss_and_delete_as_the_go_client_sends_them(fresh: str) -> None:
    events = [{"id": f"ev{i}", "time": 1700000000 + i, "type": "global_alert", "description": "d", "origin": "o",
               "severity": 50} for i in range(4)]
    r = httpx.post(fresh + "/api/v1/events/bulk", content=_ndjson(events), headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 4, r.text
    # The Go client sends the Event objects themselves, one per line.
    lines = _ndjson([{**events[0], "dismissed": True}, {"id": "nope"}])
    r = httpx.put(fresh + "/api/v1/events/bulk", content=lines, headers=NDJSON, timeout=60)
    assert r.status_code == 200 and r.json()["succeeded"] == 1 and r.json()["updated"] == [{"id": "ev0", "status": 200}]
    r = httpx.request("DELETE", fresh + "/api/v1/events/bulk", content=_ndjson([events[1], events[2], {"id": "nope"}]),
                      headers=NDJSON, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 3, "succeeded": 2, "failed": 1,
                        "deleted": [{"id": "ev1", "status": 200}, {"id": "ev2", "status": 200}],
                        "errors": [{"id": "nope", "status": 404, "reason": "no event with this id in cluster east"}]}
    left = {e["id"]: e.get("dismissed") for e in items(fresh, "/api/v1/events", {})}
    assert left == {"ev0": True, "ev3": False}
    assert post(fresh, "/api/v1/events", {"selector": "dismissed = false"}).json()["total_hits"] == 1
    for body in (b"", b"{#}", b'{"ids": "ev0"}', _ndjson([{"id": True}])):
        r = httpx.request("DELETE", fresh + "/api/v1/events/bulk", content=body, headers=NDJSON, timeout=60)
        assert r.status_code == 400 and "Traceback" not in r.text, (body, r.text)


# -- ProcessParams: POST /processes (legacy/processes/processes.go) -----------------------------------------

def _proc(i: int, endpoint: str, name: str, pid: str, reporter: str = "src", ns: str = "shop") -> dict[str, Any]:
    return {**_flow(i, f"10.6.0.{i}", "10.1.0.1", []), "reporter": reporter, "source_name_aggr": endpoint,
            "source_namespace": ns, "process_name": name, "process_id": pid}


PROCS = [_proc(0, "web-*", "/bin/curl", "101"), _proc(1, "web-*", "/bin/curl", "102"),
         _proc(2, "web-*", "/bin/curl", "102"), _proc(3, "web-*", "/usr/bin/python", "7"),
         _proc(4, "db-*", "/bin/psql", "3", ns="data"),
         # Left out as Linseed does: reported by the destination, no process name, several names, several ids.
         _proc(5, "web-*", "/bin/nc", "5", reporter="dst"), _proc(6, "web-*", "-", "-"),
         _proc(7, "web-*", "*", "*"), _proc(8, "web-*", "/bin/sh", "*")]


def test_processes_as_the_go_client_asks(fresh: str) -> None:
    for cluster, docs in (("east", PROCS), ("west", [_proc(9, "web-*", "/bin/curl", "9")])):
        r = httpx.post(fresh + "/api/v1/flows/logs/bulk", content=_ndjson(docs),
                       headers={**NDJSON, "x-cluster-id": cluster}, timeout=60)
        assert r.status_code == 200 and r.json()["succeeded"] == len(docs), r.text
    want = [{"name": "/bin/psql", "endpoint": "db-*", "instanceCount": 1, "cluster": "east"},
            {"name": "/bin/curl", "endpoint": "web-*", "instanceCount": 2, "cluster": "east"},
            {"name": "/usr/bin/python", "endpoint": "web-*", "instanceCount": 1, "cluster": "east"}]
    # Linseed's handler test body (time range and timeout), the Go client's max_page_size 0, and no body at all
    # (everything until now): one list, never an after_key (Linseed's answer has no hits to page).
    go_body = {"time_range": {"from": "2023-11-14T14:25:30.169821857-07:00", "to": "2030-01-01T00:00:00Z"},
               "timeout": "60s", "max_page_size": 0}
    for body in (go_body, {}, {"max_page_size": 1}):
        r = httpx.post(fresh + "/api/v1/processes", json=body, headers={"x-cluster-id": "east"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == {"items": want}, body
    # The selector narrows the flow logs read; a time range outside them finds none.
    assert items(fresh, "/api/v1/processes", {"selector": 'source_namespace = "data"'}) == want[:1]
    assert items(fresh, "/api/v1/processes", {"selector": 'source_ip = "10.6.0.3"'}) == want[2:]
    empty = httpx.post(fresh + "/api/v1/processes", json={"time_range": {"from": "2020-01-01T00:00:00Z",
                                                                         "to": "2020-01-02T00:00:00Z"}},
                       headers={"x-cluster-id": "east"}, timeout=60)
    assert empty.status_code == 200 and empty.json() == {"items": []}
    # Several clusters (x-cluster-id _MULTI_), as Linseed's backend test asks.
    r = httpx.post(fresh + "/api/v1/processes", json={"clusters": ["east", "west"]},
                   headers={"x-cluster-id": "_MULTI_"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [*want, {"name": "/bin/curl", "endpoint": "web-*", "instanceCount": 1,
                                         "cluster": "west"}]
    for content, needle in ((b"{#}", "JSON"), (b'{"max_page_size": -1}', "max_page_size"),
                            (b'{"ip_matches": [{"ips": ["10.6.0.3"]}]}', "ip_matches: not a parameter of the processes"),
                            (b'{"selector": "process_name ="}', "selector")):
        r = httpx.post(fresh + "/api/v1/processes", content=content,
                       headers={"x-cluster-id": "east", "content-type": "application/json"}, timeout=60)
        assert r.status_code == 400 and needle in r.text and "Traceback" not in r.text, (content, r.text)


# -- WAFLogParams / WAFLogAggregationParams: POST /waf/logs, /waf/logs/aggregation, /waf/logs/bulk ---------

def test_waf_logs_selectors_aggregations_and_bulk_errors(fresh: str) -> None:
    from margay.logtypes import SAMPLES

    sent = [orjson.loads(line) for line in (FIXTURES / "waf_logs_legacy.txt").read_bytes().splitlines() if line]
    sample = orjson.loads(SAMPLES["waf"][0])
    bad = {**sample, "@timestamp": None}  # the time field is required
    r = httpx.post(fresh + "/ingestion/api/v1/waf/logs/bulk", content=_ndjson([*sent, bad, sample]), headers=NDJSON,
                   timeout=60)
    assert r.status_code == 200, r.text
    assert (r.json()["total"], r.json()["succeeded"], r.json()["failed"]) == (4, 3, 1)
    assert r.json()["errors"][0]["line"] == 3 and r.json()["errors"][0]["field"] == "@timestamp"

    def paths(body: dict[str, Any]) -> list[str]:
        return [d["path"] for d in items(fresh, "/api/v1/waf/logs", body)]

    # Linseed sorts by @timestamp when no sort is given; Calico's WAF selector keys (source.ip, rules.id, ...).
    assert paths({}) == [sent[0]["path"], sent[1]["path"], sample["path"]]
    assert paths({"sort": [{"field": "@timestamp", "descending": True}]})[0] == sample["path"]
    assert paths({"selector": 'rules.id = "942100"'}) == [sent[1]["path"], sample["path"]]
    assert paths({"selector": 'source.ip = "192.168.202.9"'}) == [sent[0]["path"]]
    assert paths({"selector": 'destination.hostname = "nginx-svc" OR destination.namespace = "shop"'}) == [
        sent[1]["path"], sample["path"]]
    assert paths({"selector": 'rules.severity = "2" AND destination.port_num = 8080'}) == [sample["path"]]
    assert paths({"time_range": {"from": "2023-01-01T00:00:00Z", "to": "2023-06-22T11:17:51.532309951Z"}}) == [
        sent[1]["path"]]
    r = post(fresh, "/api/v1/waf/logs", {"selector": "rules.nosuch = 1"})
    assert r.status_code == 400 and "rules.nosuch" in r.text
    # Aggregations: the map itself; num_buckets adds Linseed's time series bucket over @timestamp.
    aggs = {"hosts": {"terms": {"field": "destination.hostname"}}, "rules": {"cardinality": {"field": "rule_info"}}}
    r = post(fresh, "/api/v1/waf/logs/aggregation", {"aggregations": aggs})
    assert r.status_code == 200, r.text
    assert {b["key"]: b["doc_count"] for b in r.json()["hosts"]["buckets"]} == {"echo-a": 1, "nginx-svc": 1, "cart": 1}
    r = post(fresh, "/api/v1/waf/logs/aggregation", {"aggregations": {"n": {"value_count": {"field": "method"}}},
                                                      "num_buckets": 4})
    assert r.status_code == 200, r.text
    assert sum(b["n"]["value"] for b in r.json()["tb"]["buckets"]) == 3
    # Through /es/, as Calico's WAF mapping has it: `rules` is nested (its `disruptive` is queried inside).
    q = {"query": {"nested": {"path": "rules", "query": {"term": {"rules.disruptive": True}}}},
         "sort": [{"@timestamp": "asc"}]}
    r = httpx.post(fresh + "/es/tigera_secure_ee_waf.east.*/_search", json=q, timeout=60)
    assert r.status_code == 200, r.text
    assert [h["_source"]["path"] for h in r.json()["hits"]["hits"]] == [sent[1]["path"], sample["path"]]
