"""/es/ aggregations added for Grafana (extended_stats, percentiles, terms min_doc_count 0) and nested buckets,
on both engines: known answers over a small hand-made index, and bad parameters refused with a 400 naming them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.testing.server import ServerThread

from .test_calico_names import bulk, flow

INDEX = "tigera_secure_ee_flows.c1.20231114"
# 24 flows: bytes_in 0..23; action deny for every 4th; dest_namespace a/b/c by i % 3; source_namespace s0..s3.
DOCS = [flow(i, action="deny" if i % 4 == 0 else "allow", dest_namespace="abc"[i % 3],
             source_namespace=f"s{i % 4}") for i in range(24)]


@pytest.fixture
def es(tmp_path: Path, engine: dict[str, Any]) -> Iterator[str]:
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine))) as s:
        bulk(s.url, [(INDEX, d) for d in DOCS])
        httpx.post(f"{s.url}/es/{INDEX}/_refresh", timeout=60)
        yield s.url


def search(url: str, aggs: dict[str, Any], query: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"size": 0, "aggs": aggs, **({"query": query} if query else {})}
    return httpx.post(f"{url}/es/tigera_secure_ee_flows.c1.*/_search", json=body, timeout=60)


def aggs_of(url: str, aggs: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
    r = search(url, aggs, query)
    assert r.status_code == 200, r.text
    return dict(r.json()["aggregations"])


def test_extended_stats_and_percentiles(es: str) -> None:
    got = aggs_of(es, {"e": {"extended_stats": {"field": "bytes_in", "sigma": 1}},
                       "p": {"percentiles": {"field": "bytes_in", "percents": [0, 10, 50, 100]}}})
    xs = [float(d["bytes_in"]) for d in DOCS]
    n, s = len(xs), sum(xs)
    var = sum(x * x for x in xs) / n - (s / n) ** 2
    e = got["e"]
    assert (e["count"], e["min"], e["max"], e["sum"], e["avg"]) == (24, 0.0, 23.0, s, s / n)
    assert e["sum_of_squares"] == sum(x * x for x in xs)
    assert e["variance"] == pytest.approx(var, rel=1e-12)
    assert e["std_deviation_bounds"]["upper"] == pytest.approx(s / n + math.sqrt(var), rel=1e-12)
    assert e["variance_sampling"] == pytest.approx(var * n / (n - 1), rel=1e-12)
    # 24 values, each its own t-digest centroid: value i at rank i + 1/2, linear between
    assert got["p"]["values"] == {"0.0": 0.0, "10.0": pytest.approx(1.9), "50.0": 11.5, "100.0": 23.0}
    one = aggs_of(es, {"p": {"percentiles": {"field": "bytes_in", "percents": "50", "keyed": False}}})["p"]
    assert one == {"values": [{"key": 50.0, "value": 11.5}]}  # one value stands for a list of one, as OpenSearch takes it


def test_extended_stats_of_nothing(es: str) -> None:
    e = aggs_of(es, {"e": {"extended_stats": {"field": "bytes_in"}}}, {"term": {"action": "nope"}})["e"]
    assert e["count"] == 0 and e["sum"] == 0.0 and e["min"] is None and e["variance"] is None


def test_terms_min_doc_count_0_lists_every_value(es: str) -> None:
    got = aggs_of(es, {"t": {"terms": {"field": "dest_namespace", "min_doc_count": 0}}},
                  {"term": {"bytes_in": 3}})  # one flow: i = 3 -> dest_namespace "a"
    assert [(b["key"], b["doc_count"]) for b in got["t"]["buckets"]] == [("a", 1), ("b", 0), ("c", 0)]
    nested = aggs_of(es, {"s": {"terms": {"field": "source_namespace", "size": 2}, "aggs": {
        "d": {"terms": {"field": "dest_namespace", "min_doc_count": 0, "order": {"_key": "desc"}}}}}},
        {"range": {"bytes_in": {"lt": 4}}})  # i = 0..3: s0/a, s1/b, s2/c, s3/a
    assert [(b["key"], [(d["key"], d["doc_count"]) for d in b["d"]["buckets"]]) for b in nested["s"]["buckets"]] \
        == [("s0", [("c", 0), ("b", 0), ("a", 1)]), ("s1", [("c", 0), ("b", 1), ("a", 0)])]


def test_nested_terms_cut_per_parent(es: str) -> None:
    got = aggs_of(es, {"a": {"terms": {"field": "action"}, "aggs": {
        "d": {"terms": {"field": "dest_namespace", "size": 1, "shard_size": 100, "order": {"_key": "asc"}},
              "aggs": {"m": {"max": {"field": "bytes_in"}}}}}}})
    want = {}
    for action in ("allow", "deny"):
        rows = [d for d in DOCS if d["action"] == action]
        first = min(d["dest_namespace"] for d in rows)
        inside = [d for d in rows if d["dest_namespace"] == first]
        want[action] = (first, len(inside), float(max(d["bytes_in"] for d in inside)), len(rows) - len(inside))
    assert {b["key"]: (b["d"]["buckets"][0]["key"], b["d"]["buckets"][0]["doc_count"],
                       b["d"]["buckets"][0]["m"]["value"], b["d"]["sum_other_doc_count"])
            for b in got["a"]["buckets"]} == want


@pytest.mark.parametrize(("aggs", "word"), [
    ({"e": {"extended_stats": {"field": "bytes_in", "sigma": -1}}}, "sigma"),
    ({"p": {"percentiles": {"field": "bytes_in", "percents": [101]}}}, "percent"),
    ({"t": {"terms": {"field": "action", "min_doc_count": -1}}}, "min_doc_count"),
    ({"h": {"histogram": {"field": "bytes_in", "interval": 5, "min_doc_count": "x"}}}, "min_doc_count"),
    ({"h": {"date_histogram": {"field": "end_time", "fixed_interval": "1m", "min_doc_count": [1]}}}, "min_doc_count"),
    ({"h": {"histogram": {"field": "bytes_in", "interval": 5, "extended_bounds": {"min": "x", "max": 9}}}},
     "extended_bounds"),
])
def test_bad_parameters_are_400_naming_them(es: str, aggs: dict[str, Any], word: str) -> None:
    r = search(es, aggs)
    assert r.status_code == 400, r.text
    assert word in r.text


def test_nested_buckets_cost_a_query_per_level_not_per_bucket(tmp_path: Path) -> None:
    """On the embedded engine: terms (24 buckets) > date_histogram > terms + metric is three statements (one per
    level, the metric in the innermost level's GROUP BY), whatever the number of buckets."""
    from datetime import UTC, datetime

    from margay.logtypes import REGISTRY
    from margay.query.es.dsl import QueryCompiler
    from margay.query.es.fields import Fields
    from margay.query.model import Query
    from margay.store.duckdb import DuckDBBackend
    from margay.store.duckdb.aggs import Aggregator, Scope

    from .test_calico_names import T0

    store = DuckDBBackend(tmp_path / "data")
    try:
        store.ingest(REGISTRY["flows"], "c1", b"\n".join(orjson.dumps(d) for d in DOCS), key=None, now=datetime.now(UTC),
                     respond=lambda c: {"failed": c.failed_lines})
        lt = REGISTRY["flows"]
        fields = Fields(lt)
        now = datetime.fromtimestamp(T0 + 3600, UTC)
        aggs = {"b": {"terms": {"field": "bytes_in", "size": 100}, "aggs": {
            "h": {"date_histogram": {"field": "end_time", "fixed_interval": "1m"}, "aggs": {
                "a": {"terms": {"field": "action"}, "aggs": {"m": {"max": {"field": "bytes_out"}}}}}}}}}
        calls: list[str] = []

        def build(run: Any, src: str, ps: list[Any]) -> Any:
            def counted(sql: str, params: list[Any]) -> Any:
                calls.append(sql)
                return run(sql, params)
            return Aggregator(fields, counted, now, QueryCompiler(fields, now).compile).aggregate(aggs, Scope(src, ps))

        got = store.run_over(Query(lt, ["c1"], now=now), build)
        assert len(got["b"]["buckets"]) == 24 and len(calls) == 3
        for b in got["b"]["buckets"]:
            d = next(x for x in DOCS if x["bytes_in"] == b["key"])
            (h,) = b["h"]["buckets"]
            assert h["key"] == (d["end_time"] // 60) * 60_000
            assert [(a["key"], a["doc_count"], a["m"]["value"]) for a in h["a"]["buckets"]] == [(d["action"], 1, 0.0)]
    finally:
        store.close()
