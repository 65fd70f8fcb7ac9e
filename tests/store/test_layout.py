"""The embedded store's cold layout: indices merged across clusters into shared files, read, dropped and
recovered per cluster (store/duckdb/layout.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query
from margay.query.selector import parse_selector
from margay.store.backend import Partition
from margay.store.catalog import SHARED
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import compactor as compactor_mod
from margay.store.duckdb.combiner import Pending
from margay.store.duckdb.layout import layout_sort

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FLOWS = REGISTRY["flows"]
T0 = int(datetime(2023, 11, 14, 23, 0, tzinfo=UTC).timestamp())  # two hours across midnight
CLUSTERS = ["alpha", "beta", "gamma"]


def batch(cluster_no: int, start: int, n: int) -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    return b"\n".join(orjson.dumps(dict(
        base, bytes_in=cluster_no * 1_000_000 + start + j, start_time=T0 + (start + j) * 6, end_time=T0 + (start + j) * 6 + 5,
        source_namespace=f"ns{j % 3}", action="deny" if j % 4 == 0 else "allow")) for j in range(n))


def fill(store: DuckDBBackend) -> dict[str, list[int]]:
    """Two batches per cluster (1,200 records across midnight each), unequal sizes; what each cluster holds."""
    held: dict[str, list[int]] = {}
    for no, c in enumerate(CLUSTERS):
        for start, n in ((0, 400 + 100 * no), (600, 300)):
            store.ingest(FLOWS, c, batch(no, start, n), key=f"{c}-{start}", now=NOW,
                         respond=lambda conv: {"succeeded": conv.succeeded})
            held.setdefault(c, []).extend(no * 1_000_000 + start + j for j in range(n))
    return held


def values(store: DuckDBBackend, cluster: str, selector: str | None = None) -> list[int]:
    q = Query(FLOWS, [cluster], size=10_000, sort=[], selector=parse_selector(selector) if selector else None,
              selector_text=selector, now=NOW)
    return sorted(i["bytes_in"] for i in store.search(q).items)


def open_store(path: Path) -> DuckDBBackend:
    return DuckDBBackend(path, compact_interval=3600, compact_cold_after=0)


def crash(store: DuckDBBackend) -> None:
    """Stop without any clean-up, as kill -9 would (nothing pending is applied)."""
    store._stop.set()
    store.journal.close()
    for con in (store.con, store.ingest_con, store.compact_con):
        con.close()


def shared_files(store: DuckDBBackend) -> list[Any]:
    return [f for (_, c, _), fs in store.catalog.parts.items() if c == SHARED for f in fs]


def test_cold_indices_merge_across_clusters_and_read_per_cluster(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.shared_row_group = 1000  # one day's shared file (1,500 rows) past it: sorted; the other (900) within it
    held = fill(store)
    before = [(p.log_type, p.cluster, p.day, p.docs) for p in store.partitions()]
    assert store.stats()["folders"] == 6  # 3 clusters x 2 days
    assert store.compact() == 2  # one shared file per day
    store.sweep_folders()
    assert [(p.log_type, p.cluster, p.day, p.docs) for p in store.partitions()] == before  # Calico's indices stay
    assert store.stats()["partitions"] == 6 and store.stats()["files"] == 2 and store.stats()["folders"] == 2
    assert sorted(p.name for p in (tmp_path / "store" / "flows").iterdir()) == [SHARED]  # emptied folders are gone
    assert store.clusters(FLOWS) == CLUSTERS
    for c in CLUSTERS:
        assert values(store, c) == sorted(held[c])
        # A reader of one cluster never sees another's rows, not even when it names them.
        assert values(store, c, f'cluster = "{"beta" if c != "beta" else "alpha"}"') == []
        q = Query(FLOWS, [c], total_hits=True, size=1, now=NOW)
        assert store.search(q).total == len(held[c]) == store.count(q)
    # A shared file of more than one row group is sorted by cluster, namespaces, action, time (its row groups'
    # statistics prune); one of a single row group is left in the order read. Its roll-up came with it.
    assert {f.rows > store.shared_row_group for f in shared_files(store)} == {True, False}, shared_files(store)
    for f in shared_files(store):
        assert f.rollup is not None and f.rollup.exists()
        rows = pq.read_table(f.path, columns=layout_sort(FLOWS)).to_pylist()
        keys = [tuple(r[k] for k in layout_sort(FLOWS)) for r in rows]
        if f.rows > store.shared_row_group:
            assert keys == sorted(keys)
        else:
            assert pq.ParquetFile(f.path).num_row_groups == 1 and keys != sorted(keys)
        assert dict(f.clusters) == {c: n for c, n in f.clusters} and sum(n for _, n in f.clusters) == f.rows
    # Aggregations from the roll-ups equal the raw rows', per cluster.
    q = Query(FLOWS, ["beta"], now=NOW, start=datetime(2023, 11, 14, tzinfo=UTC), end=datetime(2023, 11, 16, tzinfo=UTC))
    aggs = {"a": {"terms": {"field": "action"}, "aggs": {"b": {"sum": {"field": "bytes_in"}}}}}
    got = store.aggregate(q, aggs)
    assert got.path == "rollup"
    beta = [v for v in held["beta"]]
    deny = {1_000_000 + s + j for s, n in ((0, 500), (600, 300)) for j in range(n) if j % 4 == 0}
    want = {"deny": sum(v for v in beta if v in deny), "allow": sum(v for v in beta if v not in deny)}
    assert {b["key"]: b["b"]["value"] for b in got.result["a"]["buckets"]} == want
    store.close()
    again = open_store(tmp_path)  # the per-cluster counts of shared files come back on start-up
    assert [(p.log_type, p.cluster, p.day, p.docs) for p in again.partitions()] == before
    assert all(values(again, c) == sorted(held[c]) for c in CLUSTERS)
    again.close()


def test_dropping_one_clusters_day_rewrites_the_shared_file_without_it(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    held = fill(store)
    store.compact()
    days = {p.day: p.docs for p in store.partitions(FLOWS, ["beta"])}
    assert store.drop(Partition("flows", "beta", "20231114")) == days["20231114"]
    assert [p.day for p in store.partitions(FLOWS, ["beta"])] == ["20231115"]
    assert len(values(store, "beta")) == days["20231115"]
    assert values(store, "alpha") == sorted(held["alpha"]) and values(store, "gamma") == sorted(held["gamma"])
    assert store.drop(Partition("flows", "beta", "20231114")) == 0
    # The last clusters of a shared file: the file goes.
    for c in ("alpha", "gamma"):
        store.drop(Partition("flows", c, "20231114"))
    assert [(p.cluster, p.day) for p in store.partitions()] == [(c, "20231115") for c in CLUSTERS]
    assert len(shared_files(store)) == 1
    store.close()
    assert len(list((tmp_path / "store").rglob("*.parquet"))) == 2  # the data file of the 15th and its roll-up


def test_late_data_of_a_shared_day_lands_beside_it_and_is_merged_again(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    held = fill(store)
    store.compact()
    store.ingest(FLOWS, "beta", batch(1, 900, 50), key="late", now=NOW, respond=lambda c: {"succeeded": c.succeeded})
    held["beta"] += [1_000_000 + 900 + j for j in range(50)]
    assert values(store, "beta") == sorted(held["beta"])  # a per-cluster file beside the shared one
    assert store.compact() == 1 and len(shared_files(store)) == 3
    assert values(store, "beta") == sorted(held["beta"])
    store.close()


@pytest.mark.parametrize("point", ["before-journal", "after-journal", "after-moves"])
@pytest.mark.parametrize("step", ["share", "unshare"])
def test_a_crash_at_any_point_of_a_merge_or_a_drop_loses_and_duplicates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, point: str) -> None:
    store = open_store(tmp_path)
    held = fill(store)
    if step == "unshare":
        store.compact()
    expect = {c: sorted(v) for c, v in held.items()}

    class Crash(Exception):
        pass

    def die(*_: Any, **__: Any) -> Any:
        raise Crash

    if point == "before-journal":  # the new file is in scratch, fsync'd; the journal line never written
        monkeypatch.setattr(store.journal, "append", die)
    elif point == "after-journal":  # committed, nothing renamed yet
        monkeypatch.setattr(compactor_mod, "apply_moves", die)  # Compactor._settle renames for the layout too
    else:  # renamed into place, the catalog not updated, the replaced files not deleted
        monkeypatch.setattr(store.catalog, "swap", die)
    with pytest.raises(Crash):
        if step == "share":
            store.compact()
        else:
            store.drop(Partition("flows", "beta", "20231114"))
    crash(store)
    monkeypatch.undo()
    again = open_store(tmp_path)
    dropped = step == "unshare" and point != "before-journal"  # committed: rolled forward
    for c in CLUSTERS:
        want = [v for v in expect[c] if not (dropped and c == "beta" and v % 1_000_000 < 600)]
        assert values(again, c) == want, c
    assert not list((tmp_path / "scratch").glob("*.parquet"))
    on_disk = {p for p in (tmp_path / "store").rglob("*.parquet")}
    listed = {p for fs in again.catalog.parts.values() for f in fs for p in (f.path, f.rollup) if p is not None}
    assert on_disk == listed  # nothing orphaned, nothing missing
    again.compact()  # and the store goes on: merges and drops work after recovery
    again.drop(Partition("flows", "beta", "20231114"))
    assert [p.day for p in again.partitions(FLOWS, ["beta"])] == ["20231115"]
    assert values(again, "alpha") == expect["alpha"]
    again.close()


@pytest.mark.parametrize("cap", [5, 10])
def test_shared_files_made_of_one_group_commit_get_names_of_their_own(tmp_path: Path, cap: int) -> None:
    """Files holding one group commit's rows share its `_seq` range, so `lo-hi-rows` names alone collide (when a
    group wrote a file per cluster, shared files of one cluster each (cap 5) saw only the first merge land, and
    a file rewritten without alpha took gamma's name, its rename skipped and beta's rows deleted with the old
    file). A group now writes one file for its clusters (`.g0`), merged whole whatever the cap; the file
    rewritten without alpha keeps its range and must still get a name of its own."""
    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=0, compact_target_rows=cap)
    group = [Pending(FLOWS, c, batch(no, 0, 5), 5, f"{c}/flows/g", NOW, lambda conv: {"succeeded": conv.succeeded})
             for no, c in enumerate(CLUSTERS)]
    store.combiner._run(group)
    assert store.combiner.groups == 1 and [g.outcome for g in group] == [({"succeeded": 5}, False)] * 3
    held = {c: [no * 1_000_000 + j for j in range(5)] for no, c in enumerate(CLUSTERS)}
    assert [f.path.name for f in shared_files(store)] == [f"{1:016d}-{16:016d}-15.g0.parquet"]
    merges = 1  # the group's one file, bigger than the cap, goes alone
    assert store.compact() == merges
    assert len(shared_files(store)) == merges == len({f.path for f in shared_files(store)})
    assert store.drop(Partition("flows", "alpha", "20231114")) == 5
    assert values(store, "alpha") == [] and values(store, "beta") == held["beta"]
    assert values(store, "gamma") == held["gamma"]
    store.close()
    again = open_store(tmp_path)
    assert [values(again, c) for c in CLUSTERS] == [[], held["beta"], held["gamma"]]
    on_disk = {p for p in (tmp_path / "store").rglob("*.parquet")}
    assert on_disk == {p for fs in again.catalog.parts.values() for f in fs for p in (f.path, f.rollup) if p is not None}
    again.close()


@pytest.mark.parametrize("hot", [False, True])
def test_every_read_path_of_a_shared_file_stays_in_the_readers_cluster(tmp_path: Path, hot: bool) -> None:
    """A reader of alpha over a file alpha shares with beta and gamma: pages, hints, L3 flows, the flow graph and
    aggregations (from roll-ups), groups (processes, DNS/L7), distinct pairs and /es/ name no other cluster.
    `hot`: the file is the three clusters' group commit (combiner.py), not yet merged (no roll-up: raw rows)."""
    from margay.query.graph import GraphSpec
    from margay.store.backend import EsPlan, GroupKey, GroupSpec

    store = open_store(tmp_path)
    t0 = int(datetime(2023, 11, 14, 10, tzinfo=UTC).timestamp())
    bodies = {c: b"\n".join(orjson.dumps(dict(
        orjson.loads(SAMPLES["flows"][0]), start_time=t0 + i * 60, end_time=t0 + i * 60 + 5, bytes_in=i,
        source_name_aggr=f"w-{c}", dest_name_aggr=f"d-{c}", source_namespace=f"ns-{c}",
        dest_namespace=f"dn-{c}", host=f"h-{c}")) for i in range(300)) for c in CLUSTERS}
    if hot:
        store.combiner._run([Pending(FLOWS, c, b, 300, None, NOW, lambda _: {}) for c, b in bodies.items()])
        assert [f.grouped for f in shared_files(store)] == [True]
    else:
        for c, b in bodies.items():
            store.ingest(FLOWS, c, b, key=None, now=NOW, respond=lambda _: {})
        assert store.compact() == 1 and len(shared_files(store)) == 1
    q = Query(FLOWS, ["alpha"], start=datetime(2023, 11, 14, tzinfo=UTC), end=datetime(2023, 11, 15, tzinfo=UTC),
              now=NOW, size=1000)
    aggs = {"a": {"terms": {"field": "source_namespace"}},
            "h": {"date_histogram": {"field": "end_time", "fixed_interval": "1h"},
                  "aggs": {"n": {"terms": {"field": "dest_namespace"}}}}}
    got = store.aggregate(q, aggs)
    graph = store.flow_graph(q, GraphSpec())
    assert got.path == graph.path == ("raw" if hot else "rollup")
    plan = [EsPlan(FLOWS, {"alpha": None})]
    answers = [
        store.search(q).items, store.field_values(q, "source_namespace", "", 100), store.field_values(q, "host", "", 100),
        store.l3_flows(q, 0), graph, got.result, store.distinct(q, ["source_namespace", "dest_namespace"]),
        store.groups(q, GroupSpec(keys=(GroupKey("ns", "source_namespace"), GroupKey("h", "host")),
                                  sums=(("b", "bytes_in"),)), None),
        store.es_search(plan, {"size": 5, "aggs": {"x": {"terms": {"field": "source_namespace"}},
                                                   "c": {"cardinality": {"field": "host"}}}}, now=NOW).body]
    assert len(answers[0]) == 300 and store.es_count(plan, {}, now=NOW).body["count"] == 300
    assert store.distinct(q, ["source_namespace", "dest_namespace"]) == [("ns-alpha", "dn-alpha")]
    text = repr(answers)
    assert "alpha" in text and "beta" not in text and "gamma" not in text
    store.close()


def test_a_cluster_held_by_many_shared_files_of_a_day_is_dropped_from_all(tmp_path: Path) -> None:
    """A big cluster spans several shared files of a day (a million rows each), late data add small ones: the
    drop rewrote at most 8 and then failed as if they 'kept changing', and a failed drop stops retention's run."""
    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=0, compact_target_rows=5)
    for i in range(10):
        store.ingest(FLOWS, "alpha", batch(0, i * 5, 5), key=f"a{i}", now=NOW, respond=lambda _: {})
    store.ingest(FLOWS, "beta", batch(1, 0, 5), key="b", now=NOW, respond=lambda _: {})
    assert store.compact() == 11 and len(shared_files(store)) == 11
    assert store.drop(Partition("flows", "alpha", "20231114")) == 50
    assert values(store, "alpha") == [] and values(store, "beta") == [1_000_000 + j for j in range(5)]
    assert [p.cluster for p in store.partitions()] == ["beta"] and len(shared_files(store)) == 1
    store.close()


def test_shared_files_keep_dictionaries_for_columns_of_few_values_and_group_workload_pairs(tmp_path: Path) -> None:
    """A column chunk of more distinct values than `shared_dictionary_limit` is not dictionary-encoded (its
    dictionary and bloom filter outweighed what they saved); one of few values is. Within a namespace and action,
    rows sort by aggregated names before time. Both are read back as stored."""
    store = open_store(tmp_path)
    store.shared_row_group = 8192  # two row groups: sorted (a file of one row group is left in the order read)
    base = orjson.loads(SAMPLES["flows"][0])
    names, n = store.shared_dictionary_limit * 5 // 4, 8 * store.shared_dictionary_limit  # a few over the limit
    body = b"\n".join(orjson.dumps(dict(
        base, start_time=T0 + j // 8, end_time=T0 + j // 8 + 5, source_name=f"web-{j % names}",
        dest_name_aggr=f"db-{(n - j) % 3}-*")) for j in range(n))
    store.ingest(FLOWS, "alpha", body, key="k", now=NOW, respond=lambda _: {})
    assert store.compact() == 1
    [f] = shared_files(store)
    meta = pq.ParquetFile(f.path).metadata
    chunks = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert "RLE_DICTIONARY" not in chunks["source_name"].encodings
    assert "RLE_DICTIONARY" in chunks["dest_name_aggr"].encodings
    rows = pq.read_table(f.path, columns=["dest_name_aggr", "end_time"]).to_pylist()
    assert [r["dest_name_aggr"] for r in rows] == sorted(r["dest_name_aggr"] for r in rows)
    assert values(store, "alpha", 'source_name = "web-7"') == [base["bytes_in"]] * len(range(7, n, names))
    assert values(store, "alpha", 'dest_name_aggr = "db-1-*"') == [base["bytes_in"]] * len(
        [j for j in range(n) if (n - j) % 3 == 1])
    store.close()
