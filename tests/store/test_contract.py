"""The backend contract: the same tests on the embedded store (DuckDB) and on the rig's real OpenSearch node."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import drop_prefix
from margay.app import create_app
from margay.config import Settings
from margay.ingest.parse import Converted
from margay.logtypes import REGISTRY, SAMPLES, LogType
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend
from margay.store.opensearch import OpenSearchBackend
from margay.testing.server import ServerThread

NOW = datetime(2023, 11, 16, tzinfo=UTC)
FLOWS, DNS, EVENTS, BGP, AUDIT = (REGISTRY[n] for n in ("flows", "dns", "events", "bgp", "audit_ee"))
T0 = int(datetime(2023, 11, 14, 23, 30, tzinfo=UTC).timestamp())  # 60 one-minute flows across midnight


def flow(i: int) -> dict[str, Any]:
    return {
        "start_time": T0 + i * 60, "end_time": T0 + i * 60 + 60, "action": "deny" if i % 3 == 0 else "allow",
        "reporter": "src" if i % 2 else "dst", "proto": "udp" if i % 4 == 0 else "tcp",
        "source_namespace": f"ns{i % 3}", "source_name_aggr": f"web-{i % 5}-*", "source_type": "wep",
        "source_ip": f"10.{i // 256}.{i % 2}.{i % 256}", "dest_namespace": ("shop", "data", "kube-system")[i % 3],
        "dest_name_aggr": f"db-{i % 2}-*", "dest_type": "wep" if i % 7 else "net",
        "dest_port": None if i % 10 == 9 else (80, 443, 5432, 53)[i % 4],
        "dest_domains": ["a.com", "b.com"] if i % 5 == 0 else None, "bytes_in": i * 10, "bytes_out": i,
        "packets_in": 1, "packets_out": 2, "num_flows": 1, "source_labels": {"labels": [f"app=a{i % 2}"]},
        "policies": {"enforced_policies": [f"0|default|ns/default.p{i % 2}|allow|0"]},
        "host": f"node-{i % 4}", "process_name": "-",
    }


DATA = [flow(i) for i in range(60)]
BGP_RECORDS = [
    {"logtime": "2023-11-14T22:13:20Z", "message": "Mesh_1: State changed to up", "host": "n1", "ip_version": "IPv4"},
    {"logtime": "2023-11-14T22:13:25Z", "message": "Mesh_2: Received: Hold timer expired", "host": "n1",
     "ip_version": "IPv6"}]


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records)


def respond(conv: Converted) -> dict[str, Any]:
    return {"total": conv.total, "succeeded": conv.succeeded, "failed": conv.failed_lines,
            "errors": [e.as_dict() for e in conv.errors]}


def ingest(store: Any, lt: LogType, body: bytes, *, cluster: str = "c1", key: str | None = None
           ) -> tuple[dict[str, Any], bool]:
    return store.ingest(lt, cluster, body, key=key, now=NOW, respond=respond)


def open_store(request: pytest.FixtureRequest, tmp_path: Path, engine: str | None = None) -> Iterator[Any]:
    """A fresh store on `engine` (default: the fixture's param), its OpenSearch indices removed after."""
    if (engine or request.param) == "duckdb":
        backend: Any = DuckDBBackend(tmp_path, compact_interval=3600)
        yield backend
        backend.close()
        return
    url = request.getfixturevalue("opensearch")
    prefix = f"ct{uuid.uuid4().hex[:8]}-"
    backend = OpenSearchBackend(url, prefix=prefix, refresh="true")
    try:
        yield backend
    finally:
        backend.close()
        cleanup(url, prefix)


@pytest.fixture(params=["duckdb", "opensearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty store, for tests that write."""
    yield from open_store(request, tmp_path)


@pytest.fixture(scope="module", params=["duckdb", "opensearch"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A store holding DATA (cluster c1) and the samples of the other types, shared by read-only tests."""
    for backend in open_store(request, tmp_path_factory.mktemp("loaded")):
        response, replayed = ingest(backend, FLOWS, ndjson(DATA))
        assert response == {"total": 60, "succeeded": 60, "failed": 0, "errors": []} and not replayed
        for lt in (DNS, EVENTS, AUDIT):
            ingest(backend, lt, "\n".join(SAMPLES[lt.name]).encode())
        ingest(backend, BGP, ndjson(BGP_RECORDS))
        yield backend


def cleanup(url: str, prefix: str) -> None:
    drop_prefix(url, prefix)


@pytest.fixture
def flows(store: Any) -> Any:
    response, replayed = ingest(store, FLOWS, ndjson(DATA))
    assert response == {"total": 60, "succeeded": 60, "failed": 0, "errors": []} and not replayed
    return store


def ids(store: Any, lt: LogType, selector: str | None = None, **kw: Any) -> list[int]:
    """Which DATA records a query returns, by their bytes_out (= their index i)."""
    q = Query(lt, kw.pop("clusters", ["c1"]), selector=parse_selector(selector) if selector else None,
              selector_text=selector, size=kw.pop("size", 1000), now=NOW, **kw)
    return sorted(item["bytes_out"] for item in store.search(q).items)


# -- writes ----------------------------------------------------------------------------------------------


def test_records_come_back_as_written(loaded: Any) -> None:
    res = loaded.search(Query(FLOWS, ["c1"], size=1, sort=[SortKey("end_time")]))
    assert res.total == 60
    doc = res.items[0]
    for k, v in DATA[0].items():
        if isinstance(v, dict):  # struct fields come back with every member, unset ones null
            assert {m: x for m, x in doc[k].items() if x is not None} == v, k
        else:
            assert doc[k] == v, k
    assert doc["cluster"] == "c1" and doc["@timestamp"] == DATA[0]["end_time"] * 1000
    assert isinstance(doc["id"], str) and doc["generated_time"].startswith("2023-11-16T00:00:00")
    assert "margay_seq" not in doc and "_seq" not in doc


def test_bad_lines_are_named_and_good_lines_kept(store: Any) -> None:
    body = b"\n".join([orjson.dumps(DATA[1]), b'{"start_time":1,"end_time":2,"action":"permit","reporter":"src"}',
                       b"not json", orjson.dumps(DATA[2])])
    response, _ = ingest(store, FLOWS, body)
    assert response["succeeded"] == 2 and response["failed"] == 2
    assert [(e["line"], e["field"]) for e in response["errors"]] == [(2, "action"), (3, None)]
    assert ids(store, FLOWS) == [1, 2]


def test_every_type_is_stored_and_read(store: Any) -> None:
    for name in ("dns", "audit_ee", "audit_kube", "events", "l7"):
        lt = REGISTRY[name]
        response, _ = ingest(store, lt, "\n".join(SAMPLES[name]).encode())
        assert response["succeeded"] == len(SAMPLES[name]), (name, response)
        assert store.search(Query(lt, ["c1"])).total == len(SAMPLES[name])


# -- selectors -------------------------------------------------------------------------------------------

FLOW_SELECTORS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ('action = "deny"', lambda r: r["action"] == "deny"),
    ('action != "deny"', lambda r: r["action"] != "deny"),
    ("dest_port > 100", lambda r: r["dest_port"] is not None and r["dest_port"] > 100),
    ("dest_port >= 443", lambda r: r["dest_port"] is not None and r["dest_port"] >= 443),
    ("dest_port < 443", lambda r: r["dest_port"] is not None and r["dest_port"] < 443),
    ("dest_port <= 80", lambda r: r["dest_port"] is not None and r["dest_port"] <= 80),
    ("dest_port != 53", lambda r: r["dest_port"] != 53),
    ('dest_namespace IN {"shop", "data"}', lambda r: r["dest_namespace"] in ("shop", "data")),
    ('dest_namespace NOTIN {"shop"}', lambda r: r["dest_namespace"] != "shop"),
    ('source_name_aggr IN {"web-1*", "web-3-*"}', lambda r: r["source_name_aggr"] in ("web-1-*", "web-3-*")),
    ('source_ip IN {"10.0.1.0/24"}', lambda r: r["source_ip"].startswith("10.0.1.")),
    ('source_ip = "10.0.0.4"', lambda r: r["source_ip"] == "10.0.0.4"),
    ('source_ip > "10.0.0.50"', lambda r: ip_address(r["source_ip"]) > ip_address("10.0.0.50")),
    ('dest_domains = "a.com"', lambda r: r["dest_domains"] is not None),
    ('dest_domains != "a.com"', lambda r: r["dest_domains"] is None),
    ('NOT (action = "deny" OR proto = "udp")', lambda r: r["action"] != "deny" and r["proto"] != "udp"),
    ('action = "allow" AND dest_port = 443', lambda r: r["action"] == "allow" and r["dest_port"] == 443),
    ('end_time >= "2023-11-15T00:00:00Z"', lambda r: r["end_time"] >= T0 + 1800),
    ('start_time < "now-1d"', lambda r: r["start_time"] < NOW.timestamp() - 86400),
    ('source_labels.labels = "app=a1"', lambda r: r["bytes_out"] % 2 == 1),
    ('policies.enforced_policies IN {"*p1|*"}', lambda r: r["bytes_out"] % 2 == 1),
    ("bytes_in > 300 AND bytes_in < 400", lambda r: 300 < r["bytes_in"] < 400),
    ('source_port_num = 1 OR dest_port_num = 5432', lambda r: r["dest_port"] == 5432),
    ('host IN {"node-1", "node-2"} AND NOT dest_type = "net"', lambda r: r["host"] in ("node-1", "node-2")
     and r["dest_type"] != "net"),
]


@pytest.mark.parametrize("selector", [s for s, _ in FLOW_SELECTORS])
def test_flow_selectors(loaded: Any, selector: str) -> None:
    expected = sorted(r["bytes_out"] for r in DATA if dict(FLOW_SELECTORS)[selector](r))
    assert ids(loaded, FLOWS, selector) == expected


def test_selectors_on_nested_maps_text_bools_and_json(loaded: Any) -> None:
    def count(lt: LogType, selector: str) -> int:
        return loaded.search(Query(lt, ["c1"], selector=parse_selector(selector), now=NOW)).total

    assert count(DNS, 'rrsets.name = "api.example.com"') == 1
    assert count(DNS, 'servers.ip IN {"10.96.0.0/16"}') == 1
    assert count(DNS, 'NOT rrsets.name = "api.example.com"') == 2
    assert count(DNS, 'client_labels.app = "web"') == 1
    assert count(DNS, 'client_labels.app != "web"') == 2
    assert count(DNS, 'qname = "NOSUCH.example.org"') == 1  # stored lowercase; the selector is lowercased too
    assert count(DNS, 'qname IN {"*.example.*"}') == 2
    assert count(EVENTS, "dismissed = false") == 2
    assert count(EVENTS, "severity >= 60 AND severity < 100") == 1
    assert count(EVENTS, 'time > "2023-11-14T22:19:00Z"') == 1
    assert count(BGP, 'message = "Mesh_1: State changed to up"') == 1
    assert count(BGP, 'message IN {"*Hold timer*"}') == 1
    assert count(AUDIT, 'user.username = "alice@example.com"') == 1
    assert count(AUDIT, 'responseObject.kind = "Status"') == 1
    assert count(AUDIT, 'objectRef.resource IN {"networkpolicies", "globalnetworkpolicies"}') == 2


# -- time ranges, paging, sort ---------------------------------------------------------------------------


def test_time_ranges(loaded: Any) -> None:
    start = datetime.fromtimestamp(T0 + 600, UTC)
    end = datetime.fromtimestamp(T0 + 1200, UTC)
    expected = [r["bytes_out"] for r in DATA if T0 + 600 <= r["end_time"] <= T0 + 1200]
    assert ids(loaded, FLOWS, start=start, end=end) == expected
    by_start = [r["bytes_out"] for r in DATA if T0 + 600 <= r["start_time"] <= T0 + 1200]
    assert ids(loaded, FLOWS, start=start, end=end, time_field="start_time") == by_start
    assert ids(loaded, FLOWS, start=NOW - timedelta(seconds=1), time_field="generated_time") == list(range(60))
    assert ids(loaded, FLOWS, start=NOW, time_field="generated_time") == []


@pytest.mark.parametrize("sort", [[], [SortKey("bytes_in", True)], [SortKey("dest_port"), SortKey("host", True)],
                                  [SortKey("action"), SortKey("end_time", True)]])
def test_keyset_paging_walks_every_record_in_order(loaded: Any, sort: list[SortKey]) -> None:
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(20):
        res = loaded.search(Query(FLOWS, ["c1"], sort=sort, size=7, after_key=after))
        assert res.total == 60
        seen += res.items
        after = res.after_key
        if after is None:
            break
        assert list(after) == ["searchFrom"]
    assert len(seen) == 60 and len({r["id"] for r in seen}) == 60
    keys = sort or [SortKey("end_time")]

    def rank(r: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for k in keys:
            v = r[k.key]
            missing = v is None
            if isinstance(v, str) and k.descending:
                v = tuple(-ord(c) for c in v)
            elif v is not None and k.descending:
                v = -v
            out += [missing, v if v is not None else 0]
        return tuple(out)

    assert [rank(r) for r in seen] == sorted(rank(r) for r in seen)


def test_offset_paging(loaded: Any) -> None:
    everything = loaded.search(Query(FLOWS, ["c1"], size=60)).items
    res = loaded.search(Query(FLOWS, ["c1"], size=10, after_key={"startFrom": 25}))
    assert [r["id"] for r in res.items] == [r["id"] for r in everything[25:35]]
    assert res.after_key is not None and "searchFrom" in res.after_key
    last = loaded.search(Query(FLOWS, ["c1"], size=10, after_key={"startFrom": 55}))
    assert len(last.items) == 5 and last.after_key is None


def test_sort_errors_are_named(loaded: Any) -> None:
    from margay.errors import QueryError

    with pytest.raises(QueryError, match="dest_domains"):
        loaded.search(Query(FLOWS, ["c1"], sort=[SortKey("dest_domains")]))
    with pytest.raises(QueryError, match="searchFrom"):
        loaded.search(Query(FLOWS, ["c1"], after_key={"searchFrom": [1]}))


# -- aggregations ----------------------------------------------------------------------------------------


def test_terms_with_sub_metrics(loaded: Any) -> None:
    aggs = {"by_action": {"terms": {"field": "action"}, "aggs": {
        "bytes": {"sum": {"field": "bytes_in"}}, "avg_out": {"avg": {"field": "bytes_out"}},
        "top": {"max": {"field": "bytes_in"}}, "ns": {"cardinality": {"field": "dest_namespace"}}}},
        "ports": {"terms": {"field": "dest_port", "size": 2}},
        "domains": {"terms": {"field": "dest_domains"}}}
    got = run_sql_aggs(loaded, aggs)
    buckets = {b["key"]: b for b in got["by_action"]["buckets"]}
    for action in ("allow", "deny"):
        rows = [r for r in DATA if r["action"] == action]
        b = buckets[action]
        assert b["doc_count"] == len(rows)
        assert b["bytes"]["value"] == sum(r["bytes_in"] for r in rows)
        assert b["avg_out"]["value"] == pytest.approx(sum(r["bytes_out"] for r in rows) / len(rows), rel=1e-9)
        assert b["top"]["value"] == max(r["bytes_in"] for r in rows)
        assert b["ns"]["value"] == len({r["dest_namespace"] for r in rows})
    ports = Counter(r["dest_port"] for r in DATA if r["dest_port"] is not None)
    assert [(b["key"], b["doc_count"]) for b in got["ports"]["buckets"]] == sorted(
        ports.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert got["ports"]["sum_other_doc_count"] == sum(ports.values()) - sum(
        b["doc_count"] for b in got["ports"]["buckets"])
    assert [(b["key"], b["doc_count"]) for b in got["domains"]["buckets"]] == [("a.com", 12), ("b.com", 12)]


def run_sql_aggs(store: Any, aggs: dict[str, Any], query: Query | None = None) -> dict[str, Any]:

    return dict(store.aggregate(query or Query(FLOWS, ["c1"]), aggs).result)


def test_date_histogram_and_cardinality(loaded: Any) -> None:
    aggs = {"h": {"date_histogram": {"field": "end_time", "fixed_interval": "10m"},
                  "aggs": {"b": {"sum": {"field": "bytes_out"}}}},
            "hour": {"date_histogram": {"field": "end_time", "calendar_interval": "hour"}},
            "hosts": {"cardinality": {"field": "host"}}, "first": {"min": {"field": "end_time"}}}
    got = run_sql_aggs(loaded, aggs)
    step = 600
    expected = Counter((r["end_time"] // step) * step * 1000 for r in DATA)
    assert [(b["key"], b["doc_count"]) for b in got["h"]["buckets"]] == sorted(expected.items())
    assert got["h"]["buckets"][0]["key_as_string"] == "2023-11-14T23:30:00.000Z"
    assert got["h"]["buckets"][0]["b"]["value"] == sum(r["bytes_out"] for r in DATA
                                                       if r["end_time"] < T0 + 600)
    hours = Counter((r["end_time"] // 3600) * 3600 * 1000 for r in DATA)
    assert [(b["key"], b["doc_count"]) for b in got["hour"]["buckets"]] == sorted(hours.items())
    assert got["hosts"]["value"] == 4
    assert got["first"]["value"] == (T0 + 60) * 1000


def _terms_ref(rows: list[dict[str, Any]], field: str, size: int, order_key: bool = False) -> list[tuple[Any, int]]:
    """The buckets a terms aggregation answers over `rows` (a list field counts each distinct value once)."""
    c: Counter[Any] = Counter()
    for r in rows:
        v = r.get(field)
        for x in (set(v) if isinstance(v, list) else [v]):
            if x is not None:
                c[x] += 1
    ordered = sorted(c.items(), key=lambda kv: kv[0] if order_key else (-kv[1], kv[0]))
    return ordered[:size]


def test_nested_buckets_answer_per_bucket(loaded: Any) -> None:
    """terms > terms > metric, terms > date_histogram > terms, date_histogram > terms on a list field: every
    inner bucket counts only its parents' rows, sizes cut per parent, sum_other_doc_count per parent."""
    aggs = {"a": {"terms": {"field": "action"}, "aggs": {
                "ns": {"terms": {"field": "dest_namespace", "size": 2, "order": {"_key": "asc"}},
                       "aggs": {"b": {"sum": {"field": "bytes_in"}}}}}},
            "p": {"terms": {"field": "dest_port", "size": 2}, "aggs": {
                "h": {"date_histogram": {"field": "end_time", "fixed_interval": "10m"}, "aggs": {
                    "host": {"terms": {"field": "host", "size": 1}, "aggs": {"o": {"avg": {"field": "bytes_out"}}}}}}}},
            "t": {"date_histogram": {"field": "end_time", "fixed_interval": "20m"}, "aggs": {
                "d": {"terms": {"field": "dest_domains"}}}}}
    got = run_sql_aggs(loaded, aggs)
    for a in got["a"]["buckets"]:
        rows = [r for r in DATA if r["action"] == a["key"]]
        want = _terms_ref(rows, "dest_namespace", 2, order_key=True)
        assert [(b["key"], b["doc_count"]) for b in a["ns"]["buckets"]] == want
        assert a["ns"]["sum_other_doc_count"] == len(rows) - sum(n for _, n in want)
        for b in a["ns"]["buckets"]:
            assert b["b"]["value"] == sum(r["bytes_in"] for r in rows if r["dest_namespace"] == b["key"])
    assert [(b["key"], b["doc_count"]) for b in got["p"]["buckets"]] == _terms_ref(DATA, "dest_port", 2)
    for p in got["p"]["buckets"]:
        rows = [r for r in DATA if r["dest_port"] == p["key"]]
        hist = Counter((r["end_time"] // 600) * 600 * 1000 for r in rows)
        lo, hi = min(hist), max(hist)
        assert [h["key"] for h in p["h"]["buckets"]] == list(range(lo, hi + 1, 600_000))  # gaps filled
        for h in p["h"]["buckets"]:
            inside = [r for r in rows if (r["end_time"] // 600) * 600 * 1000 == h["key"]]
            assert h["doc_count"] == len(inside)
            want = _terms_ref(inside, "host", 1)
            assert [(b["key"], b["doc_count"]) for b in h["host"]["buckets"]] == want
            assert h["host"]["sum_other_doc_count"] == len(inside) - sum(n for _, n in want)
            for b in h["host"]["buckets"]:
                outs = [r["bytes_out"] for r in inside if r["host"] == b["key"]]
                assert b["o"]["value"] == pytest.approx(sum(outs) / len(outs), rel=1e-9)
    for t in got["t"]["buckets"]:
        inside = [r for r in DATA if (r["end_time"] // 1200) * 1200 * 1000 == t["key"]]
        assert [(b["key"], b["doc_count"]) for b in t["d"]["buckets"]] == _terms_ref(inside, "dest_domains", 10)


def test_nested_terms_run_one_query_per_level(tmp_path: Path) -> None:
    """On the embedded engine a terms of many buckets with a terms inside costs a query per level, not per bucket."""
    from margay.query.linseed_aggs import linseed_request
    from margay.store.duckdb.aggs import Scope
    from margay.store.duckdb.reads import linseed_aggregator

    store = DuckDBBackend(tmp_path / "data")
    try:
        ingest(store, FLOWS, ndjson(DATA))
        q = Query(FLOWS, ["c1"], now=NOW)
        aggs = {"ip": {"terms": {"field": "source_ip", "size": 1000}, "aggs": {
            "port": {"terms": {"field": "dest_port"}, "aggs": {"b": {"max": {"field": "bytes_in"}}}}}}}
        calls: list[str] = []

        def build(run: Any, src: str, ps: list[Any]) -> Any:
            def counted(sql: str, params: list[Any]) -> Any:
                calls.append(sql)
                return run(sql, params)
            return linseed_aggregator(q, counted).aggregate(linseed_request(q.logtype, aggs), Scope(src, ps))

        got = store.run_over(q, build)
        assert len(got["ip"]["buckets"]) == 60 and len(calls) == 2
        for b in got["ip"]["buckets"]:
            row = next(r for r in DATA if r["source_ip"] == b["key"])
            want = [] if row["dest_port"] is None else [{"key": row["dest_port"], "doc_count": 1,
                                                         "b": {"value": float(row["bytes_in"])}}]
            assert b["port"]["buckets"] == want
    finally:
        store.close()


def test_aggregations_filtered_by_selector_and_time(loaded: Any) -> None:
    q = Query(FLOWS, ["c1"], selector=parse_selector('proto = "udp"'),
              start=datetime.fromtimestamp(T0 + 1800, UTC), now=NOW)
    got = run_sql_aggs(loaded, {"n": {"value_count": {"field": "bytes_in"}}}, q)
    assert got["n"]["value"] == sum(1 for r in DATA if r["proto"] == "udp" and r["end_time"] >= T0 + 1800)


def test_aggregation_errors_are_named(loaded: Any) -> None:
    from margay.errors import QueryError

    with pytest.raises(QueryError, match="nope"):
        run_sql_aggs(loaded, {"x": {"terms": {"field": "nope"}}})
    with pytest.raises(QueryError, match="unsupported aggregation type"):
        run_sql_aggs(loaded, {"x": {"percentiles": {"field": "bytes_in"}}})


# -- multi-cluster, indices, idempotency -----------------------------------------------------------------


def test_multi_cluster(flows: Any) -> None:
    ingest(flows, FLOWS, ndjson(DATA[:5]), cluster="c2")
    ingest(flows, FLOWS, ndjson(DATA[:3]), cluster="Other.Cluster")
    assert ids(flows, FLOWS, clusters=["c2"]) == [0, 1, 2, 3, 4]
    assert len(ids(flows, FLOWS, clusters=["c1", "c2"])) == 65
    assert ids(flows, FLOWS, clusters=["Other.Cluster"]) == [0, 1, 2]
    assert ids(flows, FLOWS, clusters=["other.cluster"]) == []
    assert flows.clusters(FLOWS) == ["Other.Cluster", "c1", "c2"]
    assert flows.clusters(DNS) == []
    res = flows.search(Query(FLOWS, ["c1", "c2"], selector=parse_selector('cluster = "c2"'), now=NOW))
    assert res.total == 5 and {r["cluster"] for r in res.items} == {"c2"}


def test_index_listing_and_dropping(flows: Any) -> None:
    ingest(flows, FLOWS, ndjson(DATA[:2]), cluster="c2")
    parts = [(p.log_type, p.cluster, p.day, p.docs) for p in flows.partitions()]
    assert parts == [("flows", "c1", "20231114", 29), ("flows", "c1", "20231115", 31), ("flows", "c2", "20231114", 2)]
    assert flows.partitions(FLOWS, ["c2"])[0].index == "tigera_secure_ee_flows.c2.20231114"
    assert all(p.bytes > 0 for p in flows.partitions())
    assert flows.drop(Partition("flows", "c1", "20231114")) == 29
    assert ids(flows, FLOWS) == list(range(29, 60))
    assert [(p.cluster, p.day) for p in flows.partitions()] == [("c1", "20231115"), ("c2", "20231114")]
    assert flows.drop(Partition("flows", "c1", "20231114")) == 0
    assert flows.stats()["records"] == 33


def test_retried_batch_is_stored_once(store: Any) -> None:
    body = ndjson(DATA[:10])
    first, replayed = ingest(store, FLOWS, body, key="batch-1")
    assert not replayed and first["succeeded"] == 10
    again, replayed = ingest(store, FLOWS, body, key="batch-1")
    assert replayed and again == first
    assert store.seen(FLOWS, "c1", "batch-1") == first
    assert store.seen(FLOWS, "c1", "batch-2") is None
    assert store.seen(FLOWS, "c2", "batch-1") is None  # keys are per cluster and type
    _, replayed = ingest(store, FLOWS, body, key="batch-1", cluster="c2")
    assert not replayed
    assert len(ids(store, FLOWS)) == 10 and len(ids(store, FLOWS, clusters=["c2"])) == 10


# -- OpenSearch only: a lost acknowledgement, and two stateless replicas -----------------------------------


def test_opensearch_rewrite_of_a_half_written_batch_is_a_no_op(opensearch: str) -> None:
    """A replica died after writing the documents but before recording the key: the retry adds nothing."""
    prefix = f"ct{uuid.uuid4().hex[:8]}-"
    store = OpenSearchBackend(opensearch, prefix=prefix, refresh="true")
    try:
        body = ndjson(DATA[:10])
        ingest(store, FLOWS, body, key="k")
        store.request("DELETE", f"/{store.batches_index}/_doc/{__import__('hashlib').sha256(b'c1/flows/k').hexdigest()}")
        response, replayed = ingest(store, FLOWS, body, key="k")
        assert not replayed and response["succeeded"] == 10
        assert len(ids(store, FLOWS)) == 10
    finally:
        store.close()
        cleanup(opensearch, prefix)


def test_two_replicas_share_one_opensearch(opensearch: str, tmp_path: Path) -> None:
    prefix = f"ct{uuid.uuid4().hex[:8]}-"

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, backend="opensearch", opensearch_url=opensearch,
                        opensearch_prefix=prefix, auth="none", retention_interval=3600)

    headers = {"content-type": "application/x-ndjson", "x-cluster-id": "edge"}
    bulk, read = "/api/v1/flows/logs/bulk", "/api/v1/flows/logs"
    try:
        with ServerThread(create_app(settings("a"))) as a, ServerThread(create_app(settings("b"))) as b:
            r = httpx.post(a.url + bulk, content=ndjson(DATA[:20]), headers={**headers, "idempotency-key": "k1"},
                           timeout=30)
            assert r.status_code == 200 and r.json()["succeeded"] == 20, r.text
            got = httpx.post(b.url + read, json={"max_page_size": 100}, headers={"x-cluster-id": "edge"}, timeout=30)
            assert got.status_code == 200, got.text
            assert got.json()["total_hits"] == 20
            # the client's retry lands on the other replica
            again = httpx.post(b.url + bulk, content=ndjson(DATA[:20]),
                               headers={**headers, "idempotency-key": "k1"}, timeout=30)
            assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
            assert again.json() == r.json()
            got = httpx.post(a.url + read, json={"max_page_size": 100}, headers={"x-cluster-id": "edge"}, timeout=30)
            assert got.json()["total_hits"] == 20
            agg = httpx.post(b.url + read + "/aggregation", headers={"x-cluster-id": "edge"}, timeout=30,
                             json={"aggregations": {"a": {"terms": {"field": "action"}}}})
            assert agg.status_code == 200, agg.text
            assert sum(x["doc_count"] for x in agg.json()["a"]["buckets"]) == 20
            flows = httpx.post(a.url + "/api/v1/flows", headers={"x-cluster-id": "edge"}, timeout=30,
                               json={"time_range": {"from": "2023-11-14T00:00:00Z", "to": "2023-11-16T00:00:00Z"},
                                     "actions": ["deny"]})
            assert flows.status_code == 200, flows.text
            assert sum(i["log_stats"]["flowLogCount"] for i in flows.json()["items"]) == 7
            hints = httpx.post(b.url + "/api/v1/flows/fields/dest_namespace/values", timeout=30,
                               headers={"x-cluster-id": "edge"}, json={"prefix": "S"})
            assert hints.status_code == 200, hints.text
            assert hints.json()["values"] == [{"value": "shop", "count": 7}]
    finally:
        cleanup(opensearch, prefix)


# -- the product's other reads: graph, L3 flows, hints, counts, dismissal, the forwarders' feed -------------


def _reference_groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GRAPH_KEYS groups of flow records computed here, independently of either engine."""
    from margay.query.graph import GRAPH_KEYS

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        full = {"cluster": "c1", "dest_service_namespace": None, "dest_service_name": None, **r}
        domain = min(r["dest_domains"]) if r.get("dest_type") == "net" and r.get("dest_domains") else None
        key = (*(full.get(k) for k in GRAPH_KEYS), domain)
        g = groups.setdefault(key, {**{k: full.get(k) for k in GRAPH_KEYS}, "dest_domain": domain,
                                    "nf": 0, "b": 0, "n": 0})
        g["nf"] += r["num_flows"]
        g["b"] += r["bytes_in"] + r["bytes_out"]
        g["n"] += 1
    return list(groups.values())


@pytest.mark.parametrize("expand,cap", [((), 60), (("shop", "data"), 60), (("shop",), 4)])
def test_flow_graph_folds_like_the_reference(loaded: Any, expand: tuple[str, ...], cap: int) -> None:
    from margay.query.graph import GraphSpec, fold

    spec = GraphSpec(expand, cap)
    rows = loaded.flow_graph(Query(FLOWS, ["c1"], now=NOW), spec)
    want, hidden = fold(_reference_groups(DATA), spec, {})
    assert rows.edges == want and rows.hidden == hidden
    assert rows.path in ("raw", "rollup", "native")
    if cap > 4:  # with four nodes the workloads may fold into "more"
        assert any(n.startswith("wl|shop|") for e in rows.edges for n in (e.source, e.target)) == ("shop" in expand)
    assert (hidden > 0) == (cap == 4)


def test_flow_graph_of_a_scoped_reader_withholds_other_namespaces(loaded: Any) -> None:
    from margay.query.graph import WITHHELD, GraphSpec, fold
    from margay.query.restriction import Restriction

    restriction = Restriction({"c1": frozenset({"ns0"})})
    rows = loaded.flow_graph(Query(FLOWS, ["c1"], now=NOW, restriction=restriction), GraphSpec())
    visible = [r for r in DATA if "ns0" in (r["source_namespace"], r["dest_namespace"])]
    want, _ = fold(_reference_groups(visible), GraphSpec(), {"c1": frozenset({"ns0"})})
    assert rows.edges == want
    nodes = {n for e in rows.edges for n in (e.source, e.target)}
    assert WITHHELD in nodes and not any(n.startswith("ns|ns1") or n.startswith("ns|shop") for n in nodes)


@pytest.mark.parametrize("expand", [(), ("shop",)])
def test_flow_graph_by_cluster_keeps_each_clusters_nodes_apart(flows: Any, expand: tuple[str, ...]) -> None:
    """Two clusters with the same namespaces: `by_cluster` gives each its own nodes (as the reference fold
    does), without it they merge; the node selectors name their cluster."""
    from margay.query.graph import GraphSpec, assemble, fold

    ingest(flows, FLOWS, ndjson(DATA[:40]), cluster="c2")
    groups = _reference_groups(DATA) + [{**g, "cluster": "c2"} for g in _reference_groups(DATA[:40])]
    spec = GraphSpec(expand, 60, by_cluster=True)
    rows = flows.flow_graph(Query(FLOWS, ["c1", "c2"], now=NOW), spec)
    want, hidden = fold(groups, spec, {})
    assert rows.edges == want and rows.hidden == hidden == 0
    nodes = {n for e in rows.edges for n in (e.source, e.target)}
    assert {"@c1|ns|ns0", "@c2|ns|ns0"} <= nodes and not any(n.startswith("ns|") for n in nodes)
    merged = flows.flow_graph(Query(FLOWS, ["c1", "c2"], now=NOW), GraphSpec(expand, 60))
    assert sum(e.flows for e in merged.edges) == sum(e.flows for e in rows.edges)
    assert "ns|ns0" in {n for e in merged.edges for n in (e.source, e.target)}
    out = assemble(rows, spec, None)
    c2 = next(n for n in out["nodes"] if n["id"] == "@c2|ns|ns0")
    assert c2["cluster"] == "c2" and c2["label"] == "ns0"
    assert c2["selector"].startswith('(cluster = "c2" AND source_type = "wep"')
    if expand:
        kids = [n for n in out["nodes"] if n.get("parent") == "@c1|ns|shop"]
        assert kids and all(n["cluster"] == "c1" for n in kids)
        assert next(n for n in out["nodes"] if n["id"] == "@c1|ns|shop")["expanded"]
    # The selector of an edge reads exactly that edge's flow logs of that cluster.
    edge = next(e for e in out["edges"] if e["source"].startswith("@c2|") and e["selector"])
    q = Query(FLOWS, ["c1", "c2"], selector=parse_selector(edge["selector"]), size=1000, now=NOW)
    assert {i["cluster"] for i in flows.search(q).items} == {"c2"}


def test_l3_flows_group_by_endpoint_pair(loaded: Any) -> None:
    items = loaded.l3_flows(Query(FLOWS, ["c1"], size=1000, now=NOW), 0)
    assert sum(i["log_stats"]["flowLogCount"] for i in items) == 60
    assert sum(i["connection_stats"]["bytes_in"] for i in items) == sum(r["bytes_in"] for r in DATA)
    sizes = [i["connection_stats"]["bytes_in"] + i["connection_stats"]["bytes_out"] for i in items]
    assert sizes == sorted(sizes, reverse=True)
    page = loaded.l3_flows(Query(FLOWS, ["c1"], size=3, now=NOW), 2)
    assert [p["key"] for p in page] == [i["key"] for i in items[2:6]]
    denied = loaded.l3_flows(Query(FLOWS, ["c1"], size=1000, now=NOW, selector=parse_selector('action = "deny"')), 0)
    assert {i["key"]["action"] for i in denied} == {"deny"}
    assert sum(i["log_stats"]["flowLogCount"] for i in denied) == 20


def test_l3_flows_of_an_empty_store(store: Any) -> None:
    assert store.l3_flows(Query(FLOWS, ["c1"], size=10, now=NOW), 0) == []


def test_l3_flows_of_a_cluster_without_flows_is_empty(loaded: Any) -> None:
    """A network-access report of a cluster that sent no flows yet: no groups, not an error."""
    assert loaded.l3_flows(Query(FLOWS, ["no-flows-here"], size=1000, now=NOW), 0) == []


def test_distinct_combinations_of_fields(loaded: Any) -> None:
    """Backend.distinct: the (source, destination) namespaces of the flows, as the rows have them; a bad field or a
    namespace-scoped restriction is refused."""
    from margay.errors import Forbidden, QueryError
    from margay.query.restriction import Restriction

    got = loaded.distinct(Query(FLOWS, ["c1"], now=NOW), ["source_namespace", "dest_namespace"])
    assert got == sorted({(r["source_namespace"], r["dest_namespace"]) for r in DATA})
    denied = loaded.distinct(Query(FLOWS, ["c1"], now=NOW, selector=parse_selector('action = "deny"')), ["action"])
    assert denied == [("deny",)]
    assert loaded.distinct(Query(FLOWS, ["no-flows-here"], now=NOW), ["action"]) == []
    with pytest.raises(QueryError, match="nope"):
        loaded.distinct(Query(FLOWS, ["c1"], now=NOW), ["nope"])
    with pytest.raises(Forbidden):
        loaded.distinct(Query(FLOWS, ["c1"], now=NOW, restriction=Restriction({"c1": frozenset({"shop"})})), ["action"])


def test_a_row_filter_of_the_grant_applies_to_every_read(loaded: Any) -> None:
    """Restriction.rows (e.g. the compliance reports a reader may see) narrows search, count and aggregations
    inside the engine, alone and together with a namespace scope."""
    from margay.query.restriction import Restriction
    from margay.query.selector import Compare

    rows = Restriction(rows=Compare("action", "=", "deny"))
    q = Query(FLOWS, ["c1"], size=1000, now=NOW, restriction=rows)
    assert {i["action"] for i in loaded.search(q).items} == {"deny"}
    assert loaded.count(q) == sum(r["action"] == "deny" for r in DATA) == 20
    agg = loaded.aggregate(q, {"a": {"terms": {"field": "action"}}}).result
    assert {b["key"]: b["doc_count"] for b in agg["a"]["buckets"]} == {"deny": 20}
    both = Restriction({"c1": frozenset({"shop"})}, rows=Compare("action", "=", "deny"))
    want = sum(r["action"] == "deny" and "shop" in (r["source_namespace"], r["dest_namespace"]) for r in DATA)
    assert loaded.count(Query(FLOWS, ["c1"], now=NOW, restriction=both)) == want


def test_l3_flows_of_a_scoped_reader(loaded: Any) -> None:
    from margay.query.restriction import WITHHELD, Restriction

    q = Query(FLOWS, ["c1"], size=1000, now=NOW, restriction=Restriction({"c1": frozenset({"shop"})}))
    items = loaded.l3_flows(q, 0)
    assert items and all(i["key"]["destination"]["namespace"] == "shop" or
                         i["key"]["source"]["namespace"] == "shop" for i in items)
    for i in items:
        if i["key"]["source"]["namespace"] != "shop":
            assert i["key"]["source"]["aggregated_name"] == WITHHELD and i["source_ips"] in ([WITHHELD], [])


def test_field_values_and_counts(loaded: Any) -> None:
    values = loaded.field_values(Query(FLOWS, ["c1"], now=NOW), "dest_namespace", "", 10)
    assert [(v.value, v.count) for v in values] == [("data", 20), ("kube-system", 20), ("shop", 20)]
    values = loaded.field_values(Query(FLOWS, ["c1"], now=NOW), "source_name_aggr", "WEB-1", 10)
    assert [(v.value, v.count) for v in values] == [("web-1-*", 12)]
    assert loaded.count(Query(FLOWS, ["c1"], now=NOW, selector=parse_selector('proto = "udp"'))) == 15
    assert loaded.count(Query(FLOWS, ["nowhere"], now=NOW)) == 0


def test_dismissed_events_read_back_dismissed_on_every_path(store: Any) -> None:
    events = [{"id": f"e{i}", "time": 1700000000 + i, "type": "global_alert", "severity": 50,
               "source_namespace": "shop", "description": f"event {i}"} for i in range(5)]
    ingest(store, EVENTS, ndjson(events))
    q = Query(EVENTS, ["c1"], now=NOW)
    assert store.dismiss(q, ["e1", "e3", "missing"]) == ["e1", "e3"]
    got = {i["id"]: i.get("dismissed") for i in store.search(Query(EVENTS, ["c1"], now=NOW)).items}
    assert got["e1"] is True and got["e3"] is True and not got["e0"]
    sel = Query(EVENTS, ["c1"], now=NOW, selector=parse_selector("dismissed = true"))
    assert sorted(i["id"] for i in store.search(sel).items) == ["e1", "e3"]
    assert store.count(Query(EVENTS, ["c1"], now=NOW, selector=parse_selector("dismissed = false"))) == 3
    from margay.errors import QueryError

    with pytest.raises(QueryError):
        store.dismiss(Query(FLOWS, ["c1"], now=NOW), ["e1"])


def test_deleted_events_are_gone_from_every_path(store: Any) -> None:
    from margay.errors import QueryError
    from margay.query.restriction import Restriction

    ns = ["shop"] * 4 + ["data"] * 2
    events = [{"id": f"e{i}", "time": 1700000000 + i, "type": "global_alert", "severity": 50,
               "source_namespace": ns[i], "dest_namespace": ns[i], "description": f"event {i}"} for i in range(6)]
    ingest(store, EVENTS, ndjson(events))
    ingest(store, EVENTS, ndjson(events[:2]), cluster="c2")
    # A reader scoped to namespace shop cannot delete the event of data: it is not found for it.
    scoped = Query(EVENTS, ["c1"], now=NOW, restriction=Restriction({"c1": frozenset({"shop"})}))
    assert store.delete(scoped, ["e1", "e4", "missing"]) == ["e1"]
    # Nor one it sees half (its other side withheld): its id is withheld with that side (a threat-feed event's
    # names both endpoints), so it is no oracle on the other side either.
    ingest(store, EVENTS, ndjson([dict(events[0], id="half", dest_namespace="data")]), cluster="c3")
    half = Query(EVENTS, ["c3"], now=NOW, restriction=Restriction({"c3": frozenset({"shop"})}))
    assert [i["id"] for i in store.search(half).items] == ["<withheld>"]
    assert store.delete(half, ["half"]) == [] and store.dismiss(half, ["half"]) == []
    assert store.delete(Query(EVENTS, ["c1"], now=NOW), ["e1", "e3"]) == ["e3"]  # e1 is already gone
    left = Query(EVENTS, ["c1"], now=NOW)
    assert sorted(i["id"] for i in store.search(left).items) == ["e0", "e2", "e4", "e5"]
    assert store.count(left) == 4
    assert store.count(Query(EVENTS, ["c1"], now=NOW, selector=parse_selector('id IN {"e1", "e3"}'))) == 0
    aggs = store.aggregate(left, {"ns": {"terms": {"field": "source_namespace"}}}).result
    assert {b["key"]: b["doc_count"] for b in aggs["ns"]["buckets"]} == {"shop": 2, "data": 2}
    assert store.dismiss(left, ["e1", "e2"]) == ["e2"]  # a deleted event cannot be dismissed
    fed = store.records_after(EVENTS, 0, 100, upto=store.head_seq())
    assert sorted((r["cluster"], r["id"]) for r in fed) == [
        ("c1", "e0"), ("c1", "e2"), ("c1", "e4"), ("c1", "e5"), ("c2", "e0"), ("c2", "e1"), ("c3", "half")]
    assert store.count(Query(EVENTS, ["c2"], now=NOW)) == 2  # the same ids of another cluster stay
    with pytest.raises(QueryError):
        store.delete(Query(FLOWS, ["c1"], now=NOW), ["e0"])


def test_groups_in_composite_order_with_metrics_and_paging(store: Any) -> None:
    from margay.store.backend import GroupKey, GroupSpec

    def dns(ns: str, name: str | None, rcode: str, count: int, lc: int, mean: int | None, mx: int | None,
            ) -> dict[str, Any]:
        doc = {"start_time": "2023-11-14T22:10:00Z", "end_time": "2023-11-14T22:15:00Z", "type": "log",
               "count": count, "client_namespace": ns, "qname": "a.example", "rcode": rcode,
               "latency_count": lc, "latency_mean": mean, "latency_max": mx}
        if name is not None:
            doc["client_name_aggr"] = name
        return doc

    ingest(store, DNS, ndjson([dns("a", "x", "NoError", 2, 2, 100, 150), dns("a", "x", "NoError", 1, 1, 400, 500),
                               dns("a", "y", "NXDomain", 5, 0, None, None), dns("b", None, "NoError", 1, 1, 7, 7),
                               dns("b", "z", "NoError", 3, 3, 10, 20)]))
    spec = GroupSpec(keys=(GroupKey("ns", "client_namespace"), GroupKey("name", "client_name_aggr"),
                           GroupKey("rcode", "rcode", descending=True)),
                     sums=(("n", "count"), ("lc", "latency_count")), mins=(("lo", "latency_mean"),),
                     maxs=(("hi", "latency_max"),), means=(("mean", "latency_mean", "latency_count"),))
    q = Query(DNS, ["c1"], now=NOW, size=10)
    got = store.groups(q, spec, None)
    assert got == [  # the record without client_name_aggr is in no group: that key has no missing bucket
        {"key": {"ns": "a", "name": "x", "rcode": "NoError"}, "doc_count": 2,
         "metrics": {"n": 3.0, "lc": 3.0, "lo": 100.0, "hi": 500.0, "mean": 200.0}},
        {"key": {"ns": "a", "name": "y", "rcode": "NXDomain"}, "doc_count": 1,
         "metrics": {"n": 5.0, "lc": 0.0, "lo": None, "hi": None, "mean": None}},
        {"key": {"ns": "b", "name": "z", "rcode": "NoError"}, "doc_count": 1,
         "metrics": {"n": 3.0, "lc": 3.0, "lo": 10.0, "hi": 20.0, "mean": 10.0}}]
    page = Query(DNS, ["c1"], now=NOW, size=1)
    first = store.groups(page, spec, None)
    assert [g["key"]["name"] for g in first] == ["x", "y"]  # one page and one more
    assert [g["key"]["name"] for g in store.groups(page, spec, first[0]["key"])] == ["y", "z"]
    missing = GroupSpec(keys=(GroupKey("ns", "client_namespace"), GroupKey("name", "client_name_aggr", missing=True)),
                        sums=(("n", "count"),))
    got = store.groups(q, missing, None)
    assert [(g["key"]["ns"], g["key"]["name"], g["metrics"]["n"]) for g in got] == [
        ("a", "x", 3.0), ("a", "y", 5.0), ("b", None, 1.0), ("b", "z", 3.0)]
    assert [g["key"]["name"] for g in store.groups(q, missing, {"ns": "b", "name": None})] == ["z"]
    from margay.errors import QueryError

    with pytest.raises(QueryError):
        store.groups(q, GroupSpec(keys=(GroupKey("k", "rrsets.name"),)), None)


def test_the_feed_returns_every_record_once_in_order(store: Any) -> None:
    ingest(store, FLOWS, ndjson(DATA[:30]))
    ingest(store, FLOWS, ndjson(DATA[30:]))
    assert store.safe_seq() <= store.head_seq()
    upto = store.head_seq()  # every write has returned: nothing is in flight below the head
    seen: list[int] = []
    pos = 0
    while page := store.records_after(FLOWS, pos, 7, upto=upto):
        seen += [r["_seq"] for r in page]
        assert all(isinstance(r["_time"], float) and r["cluster"] == "c1" for r in page)
        pos = page[-1]["_seq"]
    assert len(seen) == 60 and seen == sorted(seen) and len(set(seen)) == 60
    assert store.backlog(FLOWS, 0)[0] == 60 and store.backlog(FLOWS, seen[9])[0] == 50
    deny = parse_selector('action = "deny"')
    assert len(store.records_after(FLOWS, 0, 1000, upto=upto, where=deny)) == 20
    assert store.backlog(FLOWS, 0, where=deny)[0] == 20


def test_records_with_ips_returns_only_the_hits_in_order(store: Any) -> None:
    """A set of addresses and CIDRs (IPv4 and IPv6) matched in the engine against source_ip/dest_ip of the
    new records only; paged by `_seq` like records_after; bad members and non-IP keys are refused."""
    from margay.errors import QueryError

    records = [dict(r) for r in DATA]
    records[50]["dest_ip"] = "2001:db8::17"
    records[51]["dest_ip"] = "198.51.100.9"
    records[52]["source_ip"] = "2001:db8:0:0:0:0:0:2a"  # not canonical on the wire
    ingest(store, FLOWS, ndjson(records[:30]))
    ingest(store, FLOWS, ndjson(records[30:]))
    upto = store.head_seq()
    everything = store.records_after(FLOWS, 0, 1000, upto=upto)
    seq_of = {r["start_time"]: r["_seq"] for r in everything}

    def starts(docs: list[dict[str, Any]]) -> list[int]:
        return [(d["start_time"] - T0) // 60 for d in docs]

    ips = ["10.0.1.3", "10.0.0.0/30", "198.51.100.0/24", "2001:db8::/120", "203.0.113.7"]
    fields = ("source_ip", "dest_ip")
    hits = store.records_with_ips(FLOWS, 0, fields, ips, 1000, upto=upto)
    # 10.0.0.0/30 holds 10.0.0.0 and 10.0.0.2 (i = 0, 2); 10.0.1.3 is i = 3; the /24 and the v6 /120 their rows
    assert starts(hits) == [0, 2, 3, 50, 51, 52]
    assert [h["_seq"] for h in hits] == sorted(h["_seq"] for h in hits)
    assert all(isinstance(h["_time"], float) and h["cluster"] == "c1" for h in hits)
    assert hits[3]["dest_ip"] == "2001:db8::17"
    # incremental: after the 4th hit only the later ones; a page of 2 then the rest
    assert starts(store.records_with_ips(FLOWS, hits[2]["_seq"], fields, ips, 1000, upto=upto)) == [50, 51, 52]
    first = store.records_with_ips(FLOWS, 0, fields, ips, 2, upto=upto)
    assert starts(first) == [0, 2]
    assert starts(store.records_with_ips(FLOWS, first[-1]["_seq"], fields, ips, 2, upto=upto)) == [3, 50]
    # upto bounds it; one field only; no hit; an empty set
    assert starts(store.records_with_ips(FLOWS, 0, fields, ips, 1000, upto=seq_of[T0 + 2 * 60])) == [0, 2]
    assert starts(store.records_with_ips(FLOWS, 0, ("dest_ip",), ips, 1000, upto=upto)) == [50, 51]
    assert store.records_with_ips(FLOWS, 0, fields, ["192.0.2.1", "192.0.2.128/25"], 1000, upto=upto) == []
    assert store.records_with_ips(FLOWS, 0, fields, [], 1000, upto=upto) == []
    with pytest.raises(QueryError, match="not-an-ip"):
        store.records_with_ips(FLOWS, 0, fields, ["10.0.0.1", "not-an-ip"], 10, upto=upto)
    with pytest.raises(QueryError, match="action"):
        store.records_with_ips(FLOWS, 0, ("action",), ips, 10, upto=upto)


def test_records_with_ips_takes_a_big_set(store: Any) -> None:
    """100,000 members (a tenth of them CIDRs of several lengths) in one call: matched in the engine."""
    import random

    rng = random.Random(3)
    members = {f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
               for _ in range(90_000)}
    members |= {f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24" for _ in range(9_000)}
    members |= {"10.0.1.0/26", "10.0.0.4/31", "172.16.0.0/12"}
    ingest(store, FLOWS, ndjson(DATA))
    hits = store.records_with_ips(FLOWS, 0, ("source_ip", "dest_ip"), sorted(members), 1000,
                                  upto=store.head_seq())
    # 10.0.1.0/26 holds every odd i (10.0.1.i, i < 60); 10.0.0.4/31 holds i = 4
    assert [(h["start_time"] - T0) // 60 for h in hits] == sorted([4, *range(1, 60, 2)])


def test_records_with_ips_returns_the_fields_asked_for_as_the_whole_document_has_them(store: Any) -> None:
    """`returning` narrows each hit to those fields (declared ones, nulls included, and the document's own id,
    cluster, generated_time, @timestamp), each valued exactly as in the whole document; unknown names are
    refused, named."""
    from margay.errors import QueryError

    ingest(store, FLOWS, ndjson(DATA))
    upto, fields, ips = store.head_seq(), ("source_ip", "dest_ip"), ["10.0.1.0/24", "10.0.0.4"]
    whole = store.records_with_ips(FLOWS, 0, fields, ips, 1000, upto=upto)
    asked = ("id", "cluster", "start_time", "dest_port", "source_name", "source_ip", "dest_domains", "action",
             "@timestamp", "generated_time", "proto")
    narrow = store.records_with_ips(FLOWS, 0, fields, ips, 1000, upto=upto, returning=asked)
    assert len(whole) == 31 and any(d["dest_port"] is None for d in whole)  # 30 odd i and i = 4; some nulls
    assert narrow == [{**{k: d[k] for k in asked}, "_seq": d["_seq"], "_time": d["_time"]} for d in whole]
    assert all(set(d) == {*asked, "_seq", "_time"} for d in narrow)
    with pytest.raises(QueryError, match="'bogus'"):
        store.records_with_ips(FLOWS, 0, fields, ips, 10, upto=upto, returning=("action", "bogus"))
    with pytest.raises(QueryError, match="returning"):
        store.records_with_ips(FLOWS, 0, fields, ips, 10, upto=upto, returning=())


def test_a_page_of_the_largest_size(loaded: Any) -> None:
    """max_page_size 10,000 (the result window of OpenSearch) pages like any other size."""
    res = loaded.search(Query(FLOWS, ["c1"], size=10_000, now=NOW))
    assert res.total == 60 and len(res.items) == 60 and res.after_key is None
