"""Dropping many clusters' day at once on the embedded store (Backend.drop_many, issue #25): each shared file is
rewritten once without all of them, or deleted when none of its clusters remains; a crash at any point of it
loses and duplicates nothing, and what was committed stays dropped (store/duckdb/layout.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from margay.store.backend import Partition
from margay.store.catalog import SHARED
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import compactor as compactor_mod
from margay.store.journal import apply_moves
from margay.store.opensearch.indices import _chunks

from .test_layout import FLOWS, NOW, batch, crash, shared_files, values

CLUSTERS = ["alpha", "beta", "gamma", "delta", "eps"]
GONE = ["alpha", "eps", "gamma"]  # alpha and eps share files with beta and delta; gamma has one of its own
DAY = "20231114"


def open_store(path: Path) -> DuckDBBackend:
    # 600 rows a shared file (by cluster name): {alpha, beta}, {delta, eps}, {gamma} on the 14th, every cluster in one on the 15th.
    return DuckDBBackend(path, compact_interval=3600, compact_cold_after=0, compact_target_rows=600)


def fill(store: DuckDBBackend) -> dict[str, list[int]]:
    """300 records of each cluster on the 14th, 100 on the 15th, merged across clusters; what each holds."""
    held: dict[str, list[int]] = {}
    for no, c in enumerate(CLUSTERS):
        for start, n in ((0, 300), (600, 100)):
            store.ingest(FLOWS, c, batch(no, start, n), key=f"{c}-{start}", now=NOW, respond=lambda _: {})
            held.setdefault(c, []).extend(no * 1_000_000 + start + j for j in range(n))
    store.compact()
    store.sweep_folders()
    day14 = [sorted(c for c, _ in f.clusters) for f in store.catalog.parts[("flows", SHARED, DAY)]]
    assert sorted(day14) == [["alpha", "beta"], ["delta", "eps"], ["gamma"]]
    return held


def without_day14(values: list[int]) -> list[int]:
    return [v for v in values if v % 1_000_000 >= 600]


def test_dropping_many_clusters_rewrites_each_shared_file_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    held = fill(store)
    lines: list[dict[str, Any]] = []
    append = store.journal.append
    store.journal.append = lambda entry: (lines.append(entry), append(entry))[1]  # type: ignore[method-assign]
    gone = ["alpha", "beta", "eps"]
    parts = [Partition("flows", c, DAY) for c in gone]
    assert store.drop_many(parts) == {p.index: 300 for p in parts}
    # One journal line per shared file holding them: {alpha, beta} deleted outright, {delta, eps} rewritten once
    # (data file and roll-up); cluster by cluster it took three (a rewrite of each file, then a delete).
    assert sorted(len(e["moves"]) for e in lines) == [0, 2] and {e["op"] for e in lines} == {"unshare"}
    for c in CLUSTERS:
        assert values(store, c) == (without_day14(held[c]) if c in gone else held[c]), c
    assert sorted((p.cluster, p.day, p.docs) for p in store.partitions(FLOWS)) == sorted(
        [(c, DAY, 300) for c in CLUSTERS if c not in gone] + [(c, "20231115", 100) for c in CLUSTERS])
    assert store.stats()["records"] == 5 * 400 - 3 * 300
    # Already gone: nothing more to remove, no journal line; the same index twice counts once.
    lines.clear()
    assert store.drop_many(parts + parts[:1]) == {p.index: 0 for p in parts} and lines == []
    # The day's last clusters: their files go, and the day's shared folder with them.
    rest = [Partition("flows", c, DAY) for c in ("delta", "gamma")]
    assert store.drop_many(rest) == {p.index: 300 for p in rest}
    assert ("flows", SHARED, DAY) not in store.catalog.parts and len(shared_files(store)) == 1
    assert not store.catalog.part_dir(("flows", SHARED, DAY)).exists()
    store.close()
    again = open_store(tmp_path)
    assert [values(again, c) for c in CLUSTERS] == [without_day14(held[c]) for c in CLUSTERS]
    on_disk = set((tmp_path / "store").rglob("*.parquet"))
    assert on_disk == {p for fs in again.catalog.parts.values() for f in fs for p in (f.path, f.rollup) if p}
    again.close()


def test_one_drop_spans_days_types_and_per_cluster_folders(tmp_path: Path) -> None:
    """Indices not merged yet (their own folders) and shared ones, of two days, in one call."""
    store = open_store(tmp_path)
    held = fill(store)
    store.ingest(FLOWS, "beta", batch(1, 900, 20), key="late", now=NOW, respond=lambda _: {})  # the 15th, unmerged
    held["beta"] += [1_000_000 + 900 + j for j in range(20)]
    parts = [Partition("flows", "beta", "20231115"), Partition("flows", "alpha", DAY)]
    assert store.drop_many(parts) == {parts[0].index: 120, parts[1].index: 300}
    assert values(store, "beta") == [v for v in held["beta"] if v % 1_000_000 < 600]
    assert values(store, "alpha") == without_day14(held["alpha"])
    assert all(values(store, c) == held[c] for c in ("gamma", "delta", "eps"))
    assert not store.catalog.part_dir(("flows", "beta", "20231115")).exists()
    store.close()


class Crash(Exception):
    pass


def test_a_crash_after_the_folders_line_and_before_the_shared_files_keeps_the_shared_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unmerged indices' files go under one `drop` line; killed before the first shared file's line, they
    stay gone after a restart, the shared rows stay whole, and the drop run again finishes the job."""
    store = open_store(tmp_path)
    held = fill(store)
    store.ingest(FLOWS, "alpha", batch(0, 300, 20), key="late", now=NOW, respond=lambda _: {})  # the 14th, unmerged
    append = store.journal.append

    def journal(entry: dict[str, Any]) -> None:
        if entry["op"] == "unshare":
            raise Crash
        append(entry)

    monkeypatch.setattr(store.journal, "append", journal)
    with pytest.raises(Crash):
        store.drop_many([Partition("flows", c, DAY) for c in GONE])
    crash(store)
    monkeypatch.undo()
    again = open_store(tmp_path)
    assert [values(again, c) for c in CLUSTERS] == [held[c] for c in CLUSTERS]  # alpha's late 20 dropped
    parts = [Partition("flows", c, DAY) for c in GONE]
    assert again.drop_many(parts) == {p.index: 300 for p in parts}
    assert [values(again, c) for c in CLUSTERS] == [
        without_day14(held[c]) if c in GONE else held[c] for c in CLUSTERS]
    again.close()


@pytest.mark.parametrize("budget", [1, 60, 3_000])
def test_opensearch_drops_name_indices_in_requests_of_bounded_length(budget: int) -> None:
    """A request line over OpenSearch's 4 KB `http.max_initial_line_length` is refused: index names go in groups
    whose comma-joined list stays within the budget (a longer single name alone), each name once, in order."""
    names = [f"tigera_secure_ee_flows.cluster-{i:04d}.20231114" for i in range(200)]
    chunks = list(_chunks(names, budget))
    assert [n for c in chunks for n in c] == names
    assert all(len(",".join(c)) <= budget or len(c) == 1 for c in chunks)
    assert len(chunks) == {1: 200, 60: 200, 3_000: 4}[budget]


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("point", ["before-journal", "after-journal", "between-renames", "after-moves"])
def test_a_crash_at_any_point_of_a_batched_drop_loses_and_duplicates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int) -> None:
    """Killed at the nth shared file's rewrite: before its journal line (in scratch, fsync'd), after it (nothing
    renamed), between the renames of its data file and roll-up, or once renamed (catalog and old file not yet
    swapped). After a restart, the files whose line was written are dropped, the others are whole; nothing is
    orphaned or listed twice, and the drop, run again, completes."""
    store = open_store(tmp_path)
    held = fill(store)
    clusters_of = {str(f.path): {c for c, _ in f.clusters} for f in shared_files(store)}
    written: list[dict[str, Any]] = []
    calls = {"n": 0}

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] == nth

    append = store.journal.append

    def journal(entry: dict[str, Any]) -> None:
        if point == "before-journal" and hit():
            raise Crash
        append(entry)
        written.append(entry)

    def moves(m: list[list[str]]) -> None:
        if hit():
            if point == "between-renames":
                apply_moves(m[:1])
            raise Crash
        apply_moves(m)

    swap = store.catalog.swap

    def swapped(*a: Any, **kw: Any) -> Any:
        if hit():
            raise Crash
        return swap(*a, **kw)

    monkeypatch.setattr(store.journal, "append", journal)
    if point in ("after-journal", "between-renames"):
        monkeypatch.setattr(compactor_mod, "apply_moves", moves)  # Compactor._settle renames for the layout too
    elif point == "after-moves":
        monkeypatch.setattr(store.catalog, "swap", swapped)
    with pytest.raises(Crash):
        store.drop_many([Partition("flows", c, DAY) for c in GONE])
    crash(store)
    monkeypatch.undo()
    if point in ("after-journal", "between-renames"):  # the nth rewrite (a plain delete renames nothing)
        assert sum(1 for e in written if e["moves"]) == nth and written[-1]["moves"]
    else:
        assert len(written) == (nth - 1 if point == "before-journal" else nth)
    committed = {c for e in written for c in clusters_of[e["delete"][0]]} & set(GONE)
    again = open_store(tmp_path)
    for c in CLUSTERS:
        assert values(again, c) == (without_day14(held[c]) if c in committed else held[c]), c
    assert not list((tmp_path / "scratch").glob("*.parquet"))
    on_disk = set((tmp_path / "store").rglob("*.parquet"))
    assert on_disk == {p for fs in again.catalog.parts.values() for f in fs for p in (f.path, f.rollup) if p}
    again.drop_many([Partition("flows", c, DAY) for c in GONE])  # retention's next run completes the drop
    assert [values(again, c) for c in CLUSTERS] == [
        without_day14(held[c]) if c in GONE else held[c] for c in CLUSTERS]
    again.close()
