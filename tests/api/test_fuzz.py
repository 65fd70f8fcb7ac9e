"""Hypothesis drives every HTTP endpoint of a real server (its routes enumerated from the app) with malformed
path parameters, query parameters, headers and bodies: no answer is ever >= 500, every 4xx is in an error
envelope without server paths, the server stays up and its memory stays bounded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.testing.server import ServerThread

EXAMPLES = 600  # per test: about two minutes on the shared 2-core machine (4,000 per test ran clean too)


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str


@dataclass
class Target:
    url: str
    token: str = field(repr=False)
    data_dir: Path = field(repr=False)
    endpoints: list[Endpoint] = field(repr=False)


def endpoints(app: Any) -> list[Endpoint]:
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            out += [Endpoint(r.path, m) for m in sorted(r.methods or []) if m != "HEAD"]
        elif isinstance(r, Mount):
            out.append(Endpoint(r.path + "/{path:path}", "GET"))
    return out


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=base / "data", admin_token=True, max_body_bytes=4 * 1024 * 1024))
    token = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        for lt in REGISTRY.values():  # some data, so that queries reach the store
            if SAMPLES[lt.name][0].startswith("{"):
                r = httpx.post(server.url + "/api/v1" + lt.bulk_path, content="\n".join(SAMPLES[lt.name]).encode(),
                               headers={"content-type": "application/x-ndjson", "authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
        yield Target(server.url, token, base / "data", endpoints(app))


# -- strategies ----------------------------------------------------------------------------------------------
NASTY_TEXT = st.sampled_from(["", " ", "abc", "-1", "0", "1e309", "NaN", "99999999999999999999999", "-9223372036854775809",
                              "true", "null", "{}", "[]", "*", "_all", "..", "../../etc/passwd", "%2e%2e", "a,b", "_MULTI_",
                              "tigera_secure_ee_flows.*", "tigera_secure_ee_flows.cluster.20231114", "\u202e\u0000",
                              "é" * 30, "x" * 500, "now-", "now-1y/d", "2023-13-45", '"', "\\", "{{", "<script>"])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40))
KEYS = ["query", "aggs", "aggregations", "size", "from", "sort", "_source", "track_total_hits", "bool", "must",
        "filter", "should", "must_not", "term", "terms", "range", "match", "match_phrase", "query_string", "exists",
        "wildcard", "prefix", "ids", "nested", "selector", "time_range", "max_page_size", "clusters", "all_clusters",
        "after_key", "field", "interval", "date_histogram", "fixed_interval", "calendar_interval", "min_doc_count",
        "order", "missing", "script", "path", "values", "cap", "expand", "type", "top_hits", "gte", "lt", "format",
        "index", "_index", "create", "delete", "update", "ids", "id", "token", "prefix", "avg", "sum", "max",
        "cardinality", "composite", "sources", "filters", "key", "descending", "value", "from", "to", "keys",
        "percentiles", "stats", "value_count", "histogram", "extended_bounds", "time_zone", "offset", "boost",
        "start_time", "end_time", "dest_namespace", "source_namespace", "action", "cluster", "namespace"]
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=False), TEXT)
JSONISH = st.recursive(SCALAR, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), kids,
                                                max_size=5)), max_leaves=25)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # unlike orjson, writes integers past 64 bits


def deep(n: int) -> bytes:
    return b'{"query":' * n + b"1" + b"}" * n


def header_safe(t: str) -> bool:
    """What an HTTP client can send as a header value at all."""
    return t == t.strip() and t.isprintable() and t.isascii()


BODIES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    JSONISH.map(dumps),
    st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=6).map(dumps),
    st.lists(st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=3).map(dumps), max_size=6)
    .map(lambda lines: b"\n".join(lines) + b"\n"),
    st.integers(min_value=1, max_value=6000).map(deep),
    st.sampled_from([b'{"index":"x"}\n{}\n', b'{"index":{"_index":"tigera_secure_ee_flows.../x"}}\n{}\n',
                     b'{"a":1,"a":2}', b'{"n":' + str(2**64).encode() + b"}", b"\xff\xfe", b"{" * 100_000,
                     b"[" * 100_000, b'{"ids":' + b"[1," * 50_000 + b"1" + b"]" * 1 + b"}"]),
)
HEADERS = st.fixed_dictionaries({}, optional={
    "x-cluster-id": st.one_of(TEXT.filter(header_safe),
                              st.just("_MULTI_"), st.just("cluster")),
    "content-type": st.sampled_from(["application/json", "application/x-ndjson", "text/plain", "text/html",
                                     "multipart/form-data; boundary=x", "application/json; charset=latin-1", ""]),
    "content-encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "x"]),
    "idempotency-key": TEXT.filter(header_safe),
})
QUERY = st.dictionaries(st.sampled_from(["size", "from", "q", "pretty", "format", "h", "s", "v", "bytes", "sort",
                                         "track_total_hits", "rest_total_hits_as_int", "ignore_unavailable",
                                         "allow_no_indices", "expand_wildcards", "host", "ip_version", "filter_path",
                                         "_source", "typed_keys", "search_type", "scroll", "routing", "refresh"]),
                        TEXT.filter(lambda t: "\x00" not in t), max_size=4)
PARAM = st.one_of(NASTY_TEXT, st.sampled_from(["tigera_secure_ee_flows.cluster.*", "tigera_secure_ee_*",
                                               "source_namespace", "action", "echarts.js", "app.js", "nope",
                                               "tigera_secure_ee_flows.cluster,tigera_secure_ee_dns.*"]),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30))
SERVER_PATH = re.compile(r"/(?:tmp|home|root|work|usr|var)/[^\s\"']+")


def fill(path: str, draw_param: Any) -> str:
    from urllib.parse import quote

    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: quote(draw_param(), safe="") or "x", path)


def check(target: Target, r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:500]}"
    text = r.text if r.headers.get("content-type", "").startswith(("application/json", "text/plain")) else ""
    leak = SERVER_PATH.search(text)
    assert leak is None or str(target.data_dir) not in text, f"{what}: reveals a server path: {leak.group(0)}"
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json") and r.content:
        doc = r.json()
        per_line = isinstance(doc, dict) and isinstance(doc.get("errors"), list) and "failed" in doc  # bulk report
        assert per_line or (isinstance(doc, dict) and isinstance(doc.get("error"), dict | str)), \
            f"{what}: no error envelope: {r.text[:300]}"


def send(target: Target, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes | None,
         *, auth: bool = True) -> httpx.Response:
    h = dict(headers)
    if auth:
        h["authorization"] = f"Bearer {target.token}"
    return httpx.request(method, target.url + path, params=query, headers=h, content=body, timeout=60)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_every_endpoint_with_malformed_input(target: Target, data: st.DataObject) -> None:
    ep = data.draw(st.sampled_from(target.endpoints), label="endpoint")
    path = fill(ep.path, lambda: data.draw(PARAM, label="path param"))
    query, headers, body = data.draw(QUERY, label="query"), data.draw(HEADERS, label="headers"), data.draw(BODIES,
                                                                                                         label="body")
    r = send(target, ep.method, path, query, headers, body)
    check(target, r, f"{ep.method} {path}")


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_every_endpoint_without_or_with_bad_credentials(target: Target, data: st.DataObject) -> None:
    ep = data.draw(st.sampled_from(target.endpoints), label="endpoint")
    path = fill(ep.path, lambda: data.draw(PARAM, label="path param"))
    auth = data.draw(st.sampled_from([None, "Bearer", "Bearer x", "Basic abc", "Bearer " + "a" * 5000, "bearer  x"]))
    cookie = data.draw(st.sampled_from([None, "margay_session=x", "margay_session=; margay_csrf=", "=;;=; margay_csrf"]))
    headers = {k: v for k, v in (("authorization", auth), ("cookie", cookie)) if v is not None}
    r = send(target, ep.method, path, data.draw(QUERY), headers, data.draw(BODIES), auth=False)
    check(target, r, f"{ep.method} {path} unauthenticated")
    if ep.path.startswith(("/api/", "/es")) and r.status_code < 400 and auth is None and cookie is None:
        pytest.fail(f"{ep.method} {path} answered {r.status_code} without credentials")


def test_named_cases_are_4xx_in_the_envelope(target: Target) -> None:
    index = "tigera_secure_ee_flows.cluster.*"
    cases = [
        ("GET", f"/es/{index}/_search", {"size": "abc"}, None),
        ("GET", f"/es/{index}/_search", {"from": "-5"}, None),
        ("POST", f"/es/{index}/_search", {}, b'{"size": "abc"}'),
        ("POST", "/es/_bulk", {}, b'{"index":"x"}\n{}\n'),
        ("POST", f"/es/{index}/_search", {}, deep(5000)),
        ("POST", "/api/v1/flows/logs", {}, deep(5000)),
        ("PUT", "/api/v1/events/bulk", {}, b'{"ids": 5}'),
        ("POST", "/api/v1/flows/logs", {}, b'{"max_page_size": "abc"}'),
        ("POST", "/api/v1/flows/logs/aggregation", {}, b'{"aggregations": {"x": {"terms": 5}}}'),
        # nesting under the JSON parser's own limit that a recursive compiler would not survive
        ("POST", f"/es/{index}/_search", {}, b'{"query":' + b'{"bool":{"must":[' * 200 + b'{"match_all":{}}'
         + b"]}}" * 200 + b"}"),
        ("POST", "/api/v1/flows/logs/aggregation", {}, b'{"aggregations":' + b'{"x":{"terms":{"field":"action"},"aggs":' * 150
         + b"{}" + b"}}" * 150 + b"}"),
    ]
    for method, path, query, body in cases:
        r = send(target, method, path, query, {"content-type": "application/json"}, body)
        assert 400 <= r.status_code < 500, (method, path, query, body and body[:60], r.status_code, r.text[:300])
        assert "error" in r.json(), r.text
    # _msearch answers per search, as Elasticsearch does
    deep_aggs = b'{"aggs":' + b'{"x":{"terms":{"field":"action"},"aggs":' * 150 + b"{}" + b"}}" * 150 + b"}"
    r = send(target, "POST", "/es/_msearch", {}, {"content-type": "application/x-ndjson"}, b"{}\n" + deep_aggs + b"\n")
    assert r.status_code == 200 and r.json()["responses"][0]["status"] == 400, r.text[:300]


def test_every_body_has_a_limit(target: Target) -> None:
    """Bodies streamed without a Content-Length past every limit (ingest 4 MiB here, queries 10 MiB)."""
    def chunks() -> Iterator[bytes]:
        block = b"[" + b" " * (1024 * 1024 - 1)
        for _ in range(11):
            yield block

    for ep in target.endpoints:
        if ep.method not in ("POST", "PUT"):
            continue
        # A resource kind of the detector's API that exists, so its body is read (others are 404 unread).
        path = fill(ep.path.replace("{resource}", "globalalerts"), lambda: "tigera_secure_ee_flows.cluster")
        ctype = "application/x-ndjson" if "bulk" in ep.path and ep.method == "POST" else "application/json"
        r = httpx.request(ep.method, target.url + path, content=chunks(), timeout=60,
                          headers={"content-type": ctype, "authorization": f"Bearer {target.token}"})
        assert r.status_code in (400, 404, 405, 413, 415), (ep, r.status_code, r.text[:200])
        if r.status_code != 413:  # refused before the body was read: the route takes no body of this kind
            assert ep.path.startswith(("/es/{path", "/es/_search/scroll", "/es/_pit", "/es/{index}/_search/point")) \
                or ep.path == "/ui/session", (ep, r.status_code, r.text[:200])


def test_server_stays_up_with_bounded_memory(target: Target) -> None:
    """Runs after the fuzzing above (same module): the server answers, and hostile input did not pile up."""
    before = rss_bytes()
    body = orjson.dumps({"query": {"bool": {"must": [{"term": {"action": "allow"}}] * 200}}})
    for _ in range(50):
        send(target, "POST", "/es/tigera_secure_ee_*/_search", {}, {"content-type": "application/json"}, body)
        send(target, "POST", "/api/v1/events/bulk", {}, {"content-type": "application/x-ndjson"}, deep(3000))
    assert httpx.get(target.url + "/-/health", timeout=10).status_code == 200
    grown = rss_bytes() - before
    assert grown < 256 * 1024 * 1024, f"memory grew by {grown / 1e6:.0f} MB over 100 hostile requests"


# -- structured: requests shaped like real ones, with wrong parts ------------------------------------------------
FIELDS = st.one_of(st.sampled_from(sorted({f.name for lt in REGISTRY.values() for f in lt.fields}
                                          | {"user.username", "objectRef.resource", "source_labels.labels",
                                             "policies.all_policies", "cluster", "_id", "_index", "@timestamp"})),
                   TEXT)
LEAF_QUERY = st.one_of(
    st.builds(lambda f, v: {"term": {f: v}}, FIELDS, SCALAR),
    st.builds(lambda f, v: {"terms": {f: v}}, FIELDS, st.one_of(st.lists(SCALAR, max_size=4), SCALAR)),
    st.builds(lambda f, r: {"range": {f: r}}, FIELDS, st.dictionaries(
        st.sampled_from(["gte", "gt", "lte", "lt", "format", "time_zone", "from", "to"]), SCALAR, max_size=3)),
    st.builds(lambda f, v: {"match": {f: v}}, FIELDS, SCALAR),
    st.builds(lambda v: {"query_string": {"query": v}}, TEXT),
    st.builds(lambda f: {"exists": {"field": f}}, FIELDS),
    st.builds(lambda f, v: {"wildcard": {f: v}}, FIELDS, SCALAR),
    st.builds(lambda f, v: {"prefix": {f: v}}, FIELDS, SCALAR),
    st.builds(lambda v: {"ids": {"values": v}}, st.one_of(st.lists(SCALAR, max_size=3), SCALAR)),
    st.just({"match_all": {}}), JSONISH,
)
QUERIES = st.recursive(LEAF_QUERY, lambda kids: st.builds(
    lambda parts: {"bool": parts},
    st.dictionaries(st.sampled_from(["must", "filter", "should", "must_not", "minimum_should_match"]),
                    st.one_of(st.lists(kids, max_size=3), kids, SCALAR), max_size=3)), max_leaves=8)
AGG_TYPES = ["terms", "date_histogram", "histogram", "avg", "sum", "max", "min", "cardinality", "value_count", "stats",
             "filter", "filters", "top_hits", "composite", "percentiles", "range", "date_range", "missing", "nested"]
AGG_PARAMS = st.dictionaries(st.sampled_from(["field", "size", "interval", "fixed_interval", "calendar_interval",
                                              "order", "min_doc_count", "missing", "sources", "filters", "ranges",
                                              "sort", "_source", "extended_bounds", "format", "time_zone", "keys"]),
                             st.one_of(FIELDS, SCALAR, JSONISH), max_size=4)
AGGS = st.recursive(
    st.dictionaries(TEXT.filter(bool), st.builds(lambda t, p: {t: p}, st.sampled_from(AGG_TYPES), AGG_PARAMS),
                    min_size=1, max_size=2),
    lambda kids: st.dictionaries(TEXT.filter(bool), st.builds(lambda t, p, sub: {t: p, "aggs": sub},
                                                              st.sampled_from(AGG_TYPES), AGG_PARAMS, kids),
                                 min_size=1, max_size=2), max_leaves=6)
ES_BODY = st.fixed_dictionaries({}, optional={
    "query": QUERIES, "aggs": AGGS, "size": SCALAR, "from": SCALAR, "sort": st.one_of(
        st.lists(st.one_of(FIELDS, st.dictionaries(FIELDS, st.one_of(st.sampled_from(["asc", "desc"]), JSONISH),
                                                    max_size=2)), max_size=3), SCALAR),
    "_source": st.one_of(st.booleans(), st.lists(FIELDS, max_size=3), JSONISH), "track_total_hits": SCALAR,
    "search_after": st.one_of(st.lists(SCALAR, max_size=3), SCALAR)})
SELECTOR = st.one_of(TEXT, st.builds(lambda f, op, v, j: f"{f} {op} {v} {j}",
                                     FIELDS, st.sampled_from(["=", "!=", "<", ">=", "IN", "NOTIN", "AND", ""]),
                                     st.one_of(TEXT.map(json.dumps), st.just("{\"a\", \"b*\"}"), TEXT),
                                     st.sampled_from(["", "AND", "OR NOT", ")", "("])))
NATIVE_BODY = st.fixed_dictionaries({}, optional={
    "time_range": st.one_of(st.fixed_dictionaries({}, optional={"from": TEXT, "to": TEXT, "field": FIELDS}), SCALAR),
    "selector": st.one_of(SELECTOR, SCALAR), "max_page_size": SCALAR, "aggregations": st.one_of(AGGS, JSONISH),
    "sort": st.one_of(st.lists(st.fixed_dictionaries({"field": FIELDS}, optional={"descending": SCALAR}), max_size=2),
                      SCALAR),
    "after_key": JSONISH, "clusters": st.one_of(st.lists(TEXT, max_size=3), SCALAR), "all_clusters": SCALAR,
    "expand": st.one_of(st.lists(TEXT, max_size=3), SCALAR), "max_nodes": SCALAR, "prefix": SCALAR,
    "size": SCALAR, "type": SCALAR, "total_hits": SCALAR})


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(index=st.sampled_from(["tigera_secure_ee_flows.*", "tigera_secure_ee_*", "tigera_secure_ee_dns.cluster.*",
                              "tigera_secure_ee_audit_*", "tigera_secure_ee_events.*,tigera_secure_ee_l7.*", "_all"]),
       kind=st.sampled_from(["_search", "_count"]), body=ES_BODY)
def test_es_requests_shaped_like_real_ones(target: Target, index: str, kind: str, body: dict[str, Any]) -> None:
    r = send(target, "POST", f"/es/{index}/{kind}", {}, {"content-type": "application/json"}, dumps(body))
    check(target, r, f"POST /es/{index}/{kind}")


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(path=st.sampled_from([
    "/api/v1/flows/logs", "/api/v1/flows/logs/aggregation", "/api/v1/dns/logs", "/api/v1/dns/logs/aggregation",
    "/api/v1/audit/logs", "/api/v1/audit/logs/aggregation", "/api/v1/bgp/logs", "/api/v1/events",
    "/api/v1/events/aggregation", "/api/v1/l7/logs", "/api/v1/flows", "/api/v1/flows/graph",
    "/api/v1/flows/fields/source_namespace/values", "/api/v1/dns/fields/qname/values",
    "/api/v1/audit/fields/verb/values", "/api/v1/events/fields/type/values"]),
       cluster=st.sampled_from(["cluster", "_MULTI_"]), body=NATIVE_BODY)
def test_native_requests_shaped_like_real_ones(target: Target, path: str, cluster: str, body: dict[str, Any]) -> None:
    r = send(target, "POST", path, {}, {"content-type": "application/json", "x-cluster-id": cluster}, dumps(body))
    check(target, r, f"POST {path}")
