"""A fleet on both engines: once the embedded store has merged cold indices across clusters, and while its
hot data are group commits' files of many clusters (OpenSearch keeps Calico's per-cluster daily indices),
every read, count, aggregation, index listing and drop is still per cluster, and a reader of one cluster
learns nothing of another's rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from opensearchpy.exceptions import NotFoundError

from margay.clock import FakeClock
from margay.query.model import Query
from margay.query.selector import parse_selector
from margay.retention.policy import RetentionPolicy
from margay.retention.scheduler import RetentionScheduler
from margay.store.backend import EsPlan, Partition
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb.combiner import Pending

from .test_contract import DATA, FLOWS, NOW, ingest, ndjson, open_store, respond

CLUSTERS = ["c1", "c2", "c3"]
MIDNIGHT = int(datetime(2023, 11, 15, tzinfo=UTC).timestamp())


@pytest.fixture(params=["duckdb", "duckdb-hot", "opensearch"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Three clusters' flows (DATA's 60 records over two days, a different share each), settled: on the
    embedded engine its indices are merged across clusters into one shared file per day. `duckdb-hot`: the
    three clusters' batches arrived together, and their group commit wrote one file per day for all three
    (store/duckdb/combiner.py), not yet merged."""
    if request.param == "duckdb-hot":
        store = DuckDBBackend(tmp_path, compact_interval=3600)
        group = [Pending(FLOWS, c, ndjson(DATA[no * 10:]), len(DATA) - no * 10, None, NOW, respond)
                 for no, c in enumerate(CLUSTERS)]
        store.combiner._run(group)
        assert store.combiner.groups == 1 and all(g.outcome is not None for g in group)
        assert store.stats()["folders"] == 2 and store.stats()["files"] == 2
        assert all(f.grouped for fs in store.catalog.parts.values() for f in fs)
        yield store
        store.close()
        return
    for store in open_store(request, tmp_path):
        for no, c in enumerate(CLUSTERS):
            ingest(store, FLOWS, ndjson(DATA[no * 10:]), cluster=c)
        if isinstance(store, DuckDBBackend):
            store.compact_cold_after = 0
            assert store.compact() == 2
            store.sweep_folders()
            assert store.stats()["folders"] == 2 and store.stats()["files"] == 2
        yield store


def held(c: str) -> list[int]:
    return [r["bytes_out"] for r in DATA[CLUSTERS.index(c) * 10:]]


def search(store: Any, clusters: list[str], selector: str | None = None, **kw: Any) -> Any:
    return store.search(Query(FLOWS, clusters, selector=parse_selector(selector) if selector else None,
                              selector_text=selector, size=1000, now=NOW, total_hits=True, **kw))


def test_reads_counts_and_aggregations_stay_per_cluster(fleet: Any) -> None:
    for c in CLUSTERS:
        res = search(fleet, [c])
        assert sorted(i["bytes_out"] for i in res.items) == held(c) and res.total == len(held(c))
        assert {i["cluster"] for i in res.items} == {c}
        others = [o for o in CLUSTERS if o != c]
        # Naming another cluster finds nothing: not its rows, not its count, not its buckets.
        sel = f'cluster IN {{"{others[0]}", "{others[1]}"}}'
        assert search(fleet, [c], sel).total == 0
        assert fleet.count(Query(FLOWS, [c], selector=parse_selector(sel), selector_text=sel, now=NOW)) == 0
        agg = fleet.aggregate(Query(FLOWS, [c], now=NOW), {"k": {"terms": {"field": "cluster", "size": 10}}}).result
        assert [(b["key"], b["doc_count"]) for b in agg["k"]["buckets"]] == [(c, len(held(c)))]
    both = search(fleet, ["c1", "c3"])
    assert both.total == len(held("c1")) + len(held("c3"))
    es = fleet.es_count([EsPlan(FLOWS, {"c2": None})], {}, now=NOW)
    assert es.body["count"] == len(held("c2"))


def test_index_listing_and_dropping_one_clusters_day(fleet: Any) -> None:
    day14 = {c: sum(1 for r in DATA[i * 10:] if r["end_time"] < MIDNIGHT) for i, c in enumerate(CLUSTERS)}
    parts = [(p.cluster, p.day, p.docs) for p in fleet.partitions(FLOWS)]
    assert parts == [(c, d, n) for c in CLUSTERS
                     for d, n in (("20231114", day14[c]), ("20231115", len(held(c)) - day14[c])) if n]
    assert all(p.bytes > 0 for p in fleet.partitions(FLOWS))
    assert fleet.partitions(FLOWS, ["c2"])[0].index == "tigera_secure_ee_flows.c2.20231114"
    assert fleet.drop(Partition("flows", "c2", "20231114")) == day14["c2"]
    assert [p.day for p in fleet.partitions(FLOWS, ["c2"])] == ["20231115"]
    assert search(fleet, ["c2"]).total == len(held("c2")) - day14["c2"]
    assert sorted(i["bytes_out"] for i in search(fleet, ["c1"]).items) == held("c1")
    assert search(fleet, ["c3"]).total == len(held("c3"))
    assert fleet.drop(Partition("flows", "c2", "20231114")) == 0
    assert fleet.stats()["records"] == sum(len(held(c)) for c in CLUSTERS) - day14["c2"]


def test_retention_drops_expired_days_of_every_cluster(fleet: Any) -> None:
    policy = RetentionPolicy({"flows": 2})  # the 14th expires on the 16th, the 15th on the 17th
    dropped = RetentionScheduler(fleet, policy, clock=FakeClock(datetime(2023, 11, 16, 12, tzinfo=UTC))).run_once()
    assert {(p.cluster, p.day) for p in dropped} == {(c, "20231114") for c in CLUSTERS}
    assert {(p.cluster, p.day) for p in fleet.partitions(FLOWS)} == {(c, "20231115") for c in CLUSTERS}
    for c in CLUSTERS:
        assert sorted(i["bytes_out"] for i in search(fleet, [c]).items) == [
            r["bytes_out"] for r in DATA[CLUSTERS.index(c) * 10:] if r["end_time"] >= MIDNIGHT]


def test_dropping_several_clusters_days_at_once(fleet: Any) -> None:
    """Backend.drop_many (retention's call): exactly the given indices go, the others stay whole, the counts are
    per index (0 for one already gone), and listings and per-cluster reads are right after."""
    day14 = {c: sum(1 for r in DATA[i * 10:] if r["end_time"] < MIDNIGHT) for i, c in enumerate(CLUSTERS)}
    parts = [Partition("flows", "c1", "20231114"), Partition("flows", "c3", "20231114"),
             Partition("flows", "c2", "20231115"), Partition("flows", "c9", "20231114")]
    assert fleet.drop_many(parts) == {parts[0].index: day14["c1"], parts[1].index: day14["c3"],
                                      parts[2].index: len(held("c2")) - day14["c2"], parts[3].index: 0}
    assert sorted((p.cluster, p.day, p.docs) for p in fleet.partitions(FLOWS)) == [
        ("c1", "20231115", len(held("c1")) - day14["c1"]), ("c2", "20231114", day14["c2"]),
        ("c3", "20231115", len(held("c3")) - day14["c3"])]
    for c in CLUSTERS:
        res = search(fleet, [c])
        assert {i["cluster"] for i in res.items} <= {c}
        assert sorted(i["bytes_out"] for i in res.items) == sorted(
            r["bytes_out"] for r in DATA[CLUSTERS.index(c) * 10:] if (r["end_time"] < MIDNIGHT) == (c == "c2"))
    assert fleet.drop_many(parts) == {p.index: 0 for p in parts}
    assert fleet.stats()["records"] == day14["c2"] + sum(len(held(c)) - day14[c] for c in ("c1", "c3"))
    assert fleet.drop_many([]) == {}


@pytest.mark.parametrize("fleet", ["opensearch"], indirect=True)  # per-cluster indices: OpenSearch's layout
def test_an_opensearch_index_shared_with_another_cluster_keeps_its_records(fleet: Any) -> None:
    """An index that also holds another cluster's documents (written there by another shipper) loses only the
    dropped clusters' documents (by id: `_delete_by_query` needs the reindex module, which the single drop used
    and this node lacks: it answered "no handler found"); a wholly dropped index is deleted."""
    c1 = fleet.index(FLOWS, "c1", "20231114")
    doc = fleet.request("POST", f"/{c1}/_search", body={"size": 1})["hits"]["hits"][0]["_source"]
    fleet.request("POST", f"/{c1}/_doc", params={"refresh": "true"}, body={**doc, "cluster": "other"})
    parts = [Partition("flows", "c1", "20231114"), Partition("flows", "c2", "20231114")]
    day14 = {c: sum(1 for r in DATA[i * 10:] if r["end_time"] < MIDNIGHT) for i, c in enumerate(CLUSTERS)}
    assert fleet.drop_many(parts) == {parts[0].index: day14["c1"], parts[1].index: day14["c2"]}
    left = {(p.cluster, p.day): p.docs for p in fleet.partitions(FLOWS) if p.day == "20231114"}
    assert left == {("other", "20231114"): 1, ("c3", "20231114"): day14["c3"]}
    with pytest.raises(NotFoundError):  # c2's index held only c2's documents: deleted, not emptied
        fleet.request("GET", f"/{fleet.index(FLOWS, 'c2', '20231114')}")
    assert fleet.request("GET", f"/{c1}/_count")["count"] == 1


@pytest.mark.parametrize("fleet", ["opensearch"], indirect=True)  # per-cluster indices: OpenSearch's layout
def test_retention_of_one_cluster_never_deletes_documents_of_no_named_cluster(fleet: Any) -> None:
    """Documents without a `cluster` field (another shipper's, e.g. Calico's fluentd before Linseed) are no
    cluster's records for margay: no read shows them. The drop counted the index's documents per cluster with a
    `terms` aggregation, which leaves those out, found nothing but the dropped cluster and deleted the whole
    index. Now only the named clusters' documents go; the others stay, whatever their number of clusters."""
    c1, c2 = fleet.index(FLOWS, "c1", "20231114"), fleet.index(FLOWS, "c2", "20231114")
    doc = fleet.request("POST", f"/{c1}/_search", body={"size": 1})["hits"]["hits"][0]["_source"]
    stray = {k: v for k, v in doc.items() if k != "cluster"}
    fleet.request("POST", f"/{c1}/_doc", params={"refresh": "true"}, body=stray)
    # More foreign clusters than a `terms` aggregation's page held (1,000): none of them may go either.
    lines = b"".join(b'{"index":{}}\n' + orjson.dumps({**doc, "cluster": f"x{i}"}) + b"\n" for i in range(1_001))
    fleet.request("POST", f"/{c2}/_bulk", params={"refresh": "true"}, body=lines,
                  headers={"content-type": "application/x-ndjson"})
    day14 = {c: sum(1 for r in DATA[i * 10:] if r["end_time"] < MIDNIGHT) for i, c in enumerate(CLUSTERS)}
    dropped = RetentionScheduler(fleet, RetentionPolicy({"flows": 2}),
                                 clock=FakeClock(datetime(2023, 11, 16, 12, tzinfo=UTC))).run_once()
    assert {(p.cluster, p.day) for p in dropped} >= {(c, "20231114") for c in CLUSTERS}
    assert fleet.request("GET", f"/{c1}/_count")["count"] == 1
    assert fleet.request("POST", f"/{c1}/_search", body={"size": 1})["hits"]["hits"][0]["_source"] == stray
    assert fleet.request("GET", f"/{c2}/_count")["count"] == 1_001
    assert fleet.request("POST", f"/{c2}/_count", body={"query": {"prefix": {"cluster": "c"}}})["count"] == 0
    with pytest.raises(NotFoundError):  # c3's index held only c3's documents: deleted
        fleet.request("GET", f"/{fleet.index(FLOWS, 'c3', '20231114')}")
    # drop_many counts exactly what it removed: nothing more of the named clusters is left.
    assert fleet.drop_many([Partition("flows", c, "20231114") for c in CLUSTERS]) == {
        Partition("flows", c, "20231114").index: 0 for c in CLUSTERS}
    assert all(search(fleet, [c]).total == len(held(c)) - day14[c] for c in CLUSTERS)


@pytest.mark.parametrize("fleet", ["opensearch"], indirect=True)  # per-cluster indices: OpenSearch's layout
def test_es_aggregations_that_ignore_the_query_see_only_the_readers_documents(fleet: Any) -> None:
    """The /es/ pass-through narrows the query to the caller's clusters; a `global` aggregation ignores the query
    and `terms` with min_doc_count 0 lists the index's whole term dictionary, so another shipper's documents in
    c1's index (another cluster's, or without a cluster) were counted and named to a reader of c1."""
    c1 = fleet.index(FLOWS, "c1", "20231114")
    doc = fleet.request("POST", f"/{c1}/_search", body={"size": 1})["hits"]["hits"][0]["_source"]
    fleet.request("POST", f"/{c1}/_doc", params={"refresh": "true"}, body={**doc, "cluster": "other", "proto": "sctp"})
    fleet.request("POST", f"/{c1}/_doc", params={"refresh": "true"},
                  body={**{k: v for k, v in doc.items() if k != "cluster"}, "proto": "gre"})
    body = {"size": 0, "query": {"term": {"proto": "tcp"}}, "aggs": {
        "g": {"global": {}, "aggs": {"p": {"terms": {"field": "proto", "size": 10}}}},
        "z": {"terms": {"field": "proto", "min_doc_count": 0, "size": 10}},
        "c": {"terms": {"field": "cluster", "min_doc_count": 0, "size": 10}}}}
    got = fleet.es_search([EsPlan(FLOWS, {"c1": None})], body, now=NOW).body["aggregations"]
    assert got["g"]["doc_count"] == len(held("c1"))
    mine = {d["proto"] for d in search(fleet, ["c1"]).items}
    assert {b["key"] for b in got["g"]["p"]["buckets"]} == mine
    assert {b["key"] for b in got["z"]["buckets"]} == mine
    assert [b["key"] for b in got["c"]["buckets"]] == ["c1"]
