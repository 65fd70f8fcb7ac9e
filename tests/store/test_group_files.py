"""A group commit's one file for many clusters (store/duckdb/combiner.py, `.g<n>` files in a day's shared folder):
read, merged, dropped and recovered per cluster, and a crash at any step of its commit loses and duplicates
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from margay.store.backend import Partition
from margay.store.catalog import SHARED
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import engine as engine_mod
from margay.store.duckdb.combiner import Pending

from .test_layout import CLUSTERS, FLOWS, NOW, batch, crash, open_store, values


def group_of(clusters: list[str], start: int, n: int, tag: str) -> list[Pending]:
    """One small batch of `n` flows per cluster (across midnight), keyed."""
    return [Pending(FLOWS, c, batch(CLUSTERS.index(c), start, n), n, f"{c}/flows/{tag}", NOW,
                    lambda conv: {"succeeded": conv.succeeded}) for c in clusters]


def held(start: int, n: int) -> dict[str, list[int]]:
    return {c: [no * 1_000_000 + start + j for j in range(n)] for no, c in enumerate(CLUSTERS)}


def shared(store: DuckDBBackend) -> list[Any]:
    return sorted((f for (_, c, _), fs in store.catalog.parts.items() if c == SHARED for f in fs),
                  key=lambda f: f.path.name)


def on_disk_is_listed(store: DuckDBBackend, root: Path) -> bool:
    on_disk = {p for p in (root / "store").rglob("*.parquet")}
    return on_disk == {p for fs in store.catalog.parts.values() for f in fs for p in (f.path, f.rollup) if p}


def test_a_group_of_many_clusters_writes_one_file_per_day_read_per_cluster(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.compact_cold_after = 3600
    group = group_of(CLUSTERS, 590, 20, "a")  # 20 flows each, 10 of them after midnight
    store.combiner._run(group)
    assert [g.outcome for g in group] == [({"succeeded": 20}, False)] * 3
    files = shared(store)
    assert [f.path.name for f in files] == [f"{1:016d}-{61:016d}-30.g0.parquet", f"{1:016d}-{61:016d}-30.g1.parquet"]
    assert all(f.grouped and f.clusters == (("alpha", 10), ("beta", 10), ("gamma", 10)) for f in files)
    assert store.stats()["folders"] == 2 and store.stats()["partitions"] == 6
    # /-/metrics' margay_ingest_group_commits_total and margay_ingest_grouped_batches_total
    assert (store.stats()["group_commits"], store.stats()["grouped_batches"]) == (1, 3)
    assert {(p.cluster, p.day, p.docs) for p in store.partitions(FLOWS)} == {
        (c, d, 10) for c in CLUSTERS for d in ("20231114", "20231115")}
    for c in CLUSTERS:
        assert values(store, c) == held(590, 20)[c]
    store.close()
    again = open_store(tmp_path)  # the clusters' rows of each file come back from its `cluster` column
    assert [(f.path.name, f.clusters) for f in shared(again)] == [(f.path.name, f.clusters) for f in files]
    assert values(again, "beta") == held(590, 20)["beta"]
    again.close()


def test_group_files_merge_in_tiers_while_hot_and_with_the_days_indices_once_cold(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=3600, compact_min_files=4)
    want: dict[str, list[int]] = {c: [] for c in CLUSTERS}
    for i in range(4):  # four groups of the 14th: one tier of four files
        store.combiner._run(group_of(CLUSTERS, i * 10, 10, f"t{i}"))
        for c, v in held(i * 10, 10).items():
            want[c] += v
    store.ingest(FLOWS, "beta", batch(1, 100, 5), key="alone", now=NOW, respond=lambda c: {"succeeded": c.succeeded})
    want["beta"] += held(100, 5)["beta"]
    assert len(shared(store)) == 4 and all(f.grouped for f in shared(store))
    assert store.compact() == 1  # hot: the group files merged into one sorted shared file with its roll-up
    (merged,) = shared(store)
    assert not merged.grouped and merged.rollup is not None and merged.clusters == tuple((c, 40) for c in CLUSTERS)
    assert ("flows", "beta", "20231114") in store.catalog.parts  # the lone batch's own index, still hot
    store.combiner._run(group_of(CLUSTERS, 200, 5, "late"))
    for c, v in held(200, 5).items():
        want[c] += v
    store.compact_cold_after = 0  # cold: the day's hot files (the index's, the group's) merged into one file
    assert store.compact() == 1
    store.sweep_folders()
    files = shared(store)
    assert len(files) == 2 and not any(f.grouped for f in files)  # the merged tier stays as it is
    assert ("flows", "beta", "20231114") not in store.catalog.parts
    for c in CLUSTERS:
        assert values(store, c) == sorted(want[c])
    assert store.compact() == 0  # settled: nothing merged twice
    assert on_disk_is_listed(store, tmp_path)
    store.close()


def test_a_group_of_more_batches_than_one_writev_takes_stores_each_record_once(tmp_path: Path) -> None:
    # The group's input is written from its bodies in writev calls of group._IOV_MAX buffers (a body and a
    # newline each): a group of more batches than one call takes holds every record once, in order.
    from margay.ingest import group as group_mod

    store = open_store(tmp_path)
    store.compact_cold_after = 3600
    n = group_mod._IOV_MAX // 2 + 3  # batches of one flow: more than one writev call of buffers
    items = [Pending(FLOWS, "alpha", batch(0, 100 + i, 1), 1, f"alpha/one/{i}", NOW,
                     lambda conv: {"succeeded": conv.succeeded}) for i in range(n)]
    store.combiner._commit(items)
    assert [g.outcome for g in items] == [({"succeeded": 1}, False)] * n
    assert values(store, "alpha") == list(range(100, 100 + n))
    store.close()


def test_dropping_a_cluster_from_a_group_file_keeps_the_others_and_its_mark(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.compact_cold_after = 3600
    store.combiner._run(group_of(CLUSTERS, 0, 10, "a"))  # all on the 14th
    assert store.drop_many([Partition("flows", "beta", "20231114")]) == {"tigera_secure_ee_flows.beta.20231114": 10}
    (f,) = shared(store)
    assert f.grouped and f.clusters == (("alpha", 10), ("gamma", 10))  # still a group's file: merged when cold
    assert values(store, "beta") == [] and values(store, "alpha") == held(0, 10)["alpha"]
    assert [p.cluster for p in store.partitions(FLOWS)] == ["alpha", "gamma"]
    store.close()
    again = open_store(tmp_path)
    assert values(again, "beta") == [] and values(again, "gamma") == held(0, 10)["gamma"]
    assert on_disk_is_listed(again, tmp_path)
    again.close()


@pytest.mark.parametrize("point", ["before-journal", "after-journal", "after-moves"])
def test_a_crash_at_any_step_of_a_group_commit_loses_and_duplicates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    store = open_store(tmp_path)
    store.compact_cold_after = 3600

    class Crash(Exception):
        pass

    def die(*_: Any, **__: Any) -> Any:
        raise Crash

    if point == "before-journal":  # the group's files fsync'd in scratch, no journal line
        monkeypatch.setattr(store.journal, "append", die)
    elif point == "after-journal":  # committed, nothing renamed yet
        monkeypatch.setattr(engine_mod, "apply_moves", die)
    else:  # renamed into place, not yet listed
        monkeypatch.setattr(store.catalog, "add", die)
    group = group_of(CLUSTERS, 590, 20, "k")
    store.combiner._run(group)
    assert all(g.outcome is None for g in group)  # no batch is answered 2xx
    crash(store)
    monkeypatch.undo()
    again = open_store(tmp_path)
    again.compact_cold_after = 3600
    committed = point != "before-journal"
    for c in CLUSTERS:
        assert values(again, c) == (held(590, 20)[c] if committed else [])
    assert not list((tmp_path / "scratch").rglob("*.parquet")) and on_disk_is_listed(again, tmp_path)
    # The agents retry: answered from the keys when committed, stored once otherwise.
    for g in group_of(CLUSTERS, 590, 20, "k"):
        response, replayed = again.ingest(FLOWS, g.cluster, g.body, key="k", now=NOW, respond=g.respond)
        assert replayed == committed and response == {"succeeded": 20}
    for c in CLUSTERS:
        assert values(again, c) == held(590, 20)[c]
    again.close()


@pytest.mark.parametrize("point", ["before-journal", "after-journal", "after-moves"])
def test_a_crash_at_any_step_of_merging_group_files_loses_and_duplicates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    from margay.store.duckdb import compactor as compactor_mod

    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=3600, compact_min_files=4)
    want: dict[str, list[int]] = {c: [] for c in CLUSTERS}
    for i in range(4):
        store.combiner._run(group_of(CLUSTERS, i * 10, 10, f"t{i}"))
        for c, v in held(i * 10, 10).items():
            want[c] += v

    class Crash(Exception):
        pass

    def die(*_: Any, **__: Any) -> Any:
        raise Crash

    if point == "before-journal":  # the merged file fsync'd in scratch, no journal line
        monkeypatch.setattr(store.journal, "append", die)
    elif point == "after-journal":  # committed, nothing renamed yet
        monkeypatch.setattr(compactor_mod, "apply_moves", die)
    else:  # renamed into place, the catalog not swapped, the group files not deleted
        monkeypatch.setattr(store.catalog, "swap", die)
    with pytest.raises(Crash):
        store.compact()
    crash(store)
    monkeypatch.undo()
    again = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=3600, compact_min_files=4)
    for c in CLUSTERS:
        assert values(again, c) == sorted(want[c])
    merged = point != "before-journal"  # committed: rolled forward, the group files deleted
    assert [f.grouped for f in shared(again)] == ([False] if merged else [True] * 4)
    assert not list((tmp_path / "scratch").rglob("*.parquet")) and on_disk_is_listed(again, tmp_path)
    assert again.compact() == (0 if merged else 1)  # and the store goes on
    assert [values(again, c) for c in CLUSTERS] == [sorted(want[c]) for c in CLUSTERS]
    again.close()
