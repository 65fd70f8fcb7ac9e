"""Reads of many clusters on both engines: the stored cluster list follows every commit and drop (the embedded
store keeps it between changes instead of walking its partitions per request), and a read of more clusters
than an IN list names (sql.CLUSTER_LIST_AT), of all of them (no cluster condition at all on the embedded store)
or of a namespace-scoped reader returns exactly what it may see - rows, counts and buckets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from margay.query.model import Query
from margay.query.restriction import WITHHELD, Restriction
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend
from margay.store.sql import CLUSTER_LIST_AT

from .test_contract import DNS, FLOWS, NOW, flow, ingest, ndjson, open_store

MANY = [f"f-{i:02d}" for i in range(CLUSTER_LIST_AT + 8)]  # more than an IN list names


def records(no: int) -> list[dict[str, Any]]:
    """Cluster number `no`'s three flows: source namespaces ns0, ns1, ns2 in turn (flow(i): ns{i % 3})."""
    return [flow(3 * no + k) for k in range(3)]


@pytest.fixture(params=["duckdb", "opensearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from open_store(request, tmp_path)


@pytest.fixture(params=["duckdb", "opensearch"])
def many(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """MANY clusters' flows; on the embedded engine merged across clusters into shared files."""
    for store in open_store(request, tmp_path):
        for no, c in enumerate(MANY):
            ingest(store, FLOWS, ndjson(records(no)), cluster=c)
        if isinstance(store, DuckDBBackend):
            store.compact_cold_after = 0
            assert store.compact() >= 1
            store.sweep_folders()
            assert store.stats()["folders"] <= 2  # every cluster's rows in the shared files of two days
        yield store


def held(clusters: list[str]) -> list[tuple[str, int]]:
    return sorted((c, r["bytes_out"]) for c in clusters for r in records(MANY.index(c)))


def read(store: Any, clusters: list[str], restriction: Restriction | None = None) -> tuple[list[dict[str, Any]], int]:
    q = Query(FLOWS, clusters, size=1000, now=NOW, total_hits=True, **({"restriction": restriction} if restriction else {}))
    res = store.search(q)
    assert res.total == store.count(q) == len(res.items)
    return res.items, res.total


def buckets(store: Any, clusters: list[str], restriction: Restriction | None = None) -> dict[str, int]:
    q = Query(FLOWS, clusters, now=NOW, **({"restriction": restriction} if restriction else {}))
    agg = store.aggregate(q, {"k": {"terms": {"field": "cluster", "size": 1000}}}).result
    return {b["key"]: b["doc_count"] for b in agg["k"]["buckets"]}


def test_the_cluster_list_follows_every_commit_and_drop(store: Any) -> None:
    assert store.clusters() == [] and store.partitions() == []
    ingest(store, FLOWS, ndjson(records(0)), cluster="c1")
    assert store.clusters() == ["c1"] and store.clusters(FLOWS) == ["c1"] and store.clusters(DNS) == []
    ingest(store, FLOWS, ndjson(records(1)), cluster="c2")  # a new cluster appears at once
    ingest(store, FLOWS, ndjson(records(2)), cluster="c1")  # and a known one's count follows
    assert store.clusters() == store.clusters(FLOWS) == ["c1", "c2"]
    assert {p.cluster: p.docs for p in store.partitions(FLOWS)} == {"c1": 6, "c2": 3}
    if isinstance(store, DuckDBBackend):  # merged across clusters: the same indices, now in a shared file
        store.compact_cold_after = 0
        assert store.compact() >= 1
        assert store.stats()["folders"] == 1
        assert {p.cluster: p.docs for p in store.partitions(FLOWS)} == {"c1": 6, "c2": 3}
    day = store.partitions(FLOWS, ["c1"])[0].day
    assert store.drop_many([Partition("flows", "c1", day)]) == {Partition("flows", "c1", day).index: 6}
    assert store.clusters() == store.clusters(FLOWS) == ["c2"]  # a dropped cluster is gone from the list
    assert [p.cluster for p in store.partitions()] == ["c2"]
    assert read(store, ["c1", "c2"])[1] == 3
    assert store.drop(Partition("flows", "c2", day)) == 3
    assert store.clusters() == [] and store.partitions() == []


def test_reads_of_many_clusters_return_exactly_theirs(many: Any) -> None:
    assert many.clusters() == MANY
    for clusters in (MANY, MANY[1:], MANY[:2], MANY[-1:]):  # all; a list parameter; an IN list; one
        items, total = read(many, clusters)
        assert sorted((i["cluster"], i["bytes_out"]) for i in items) == held(clusters) and total == 3 * len(clusters)
        assert buckets(many, clusters) == dict.fromkeys(clusters, 3)


def test_a_namespace_scoped_reader_of_many_clusters_sees_nothing_withheld(many: Any) -> None:
    """Scoped to ns0 on all but the last two clusters: of those only the flows from ns0, with their other side
    withheld; nothing else, in rows, counts or buckets."""
    scoped = {c: frozenset({"ns0"}) for c in MANY[:-2]}
    restriction = Restriction(scoped)
    items, total = read(many, MANY, restriction)
    want = sorted([(c, r["bytes_out"]) for c in MANY[:-2] for r in records(MANY.index(c))
                   if r["source_namespace"] == "ns0"] + held(MANY[-2:]))
    assert sorted((i["cluster"], i["bytes_out"]) for i in items) == want and total == len(want)
    for i in items:
        if i["cluster"] in scoped:
            assert i["source_namespace"] == "ns0" and i["dest_name_aggr"] == WITHHELD and i["withheld"] == ["dest"]
        else:
            assert "withheld" not in i and i["dest_name_aggr"] != WITHHELD
    per = buckets(many, MANY, restriction)
    assert per == {c: n for c in MANY if (n := sum(1 for w in want if w[0] == c))}
    assert sum(per.values()) == total
    # A scoped reader of a subset (more names than an IN list) sees only its part of it.
    items, total = read(many, MANY[1:], Restriction({c: scoped[c] for c in MANY[1:-2]}))
    assert sorted((i["cluster"], i["bytes_out"]) for i in items) == [w for w in want if w[0] != MANY[0]]
