"""The rows a read can touch once row-group statistics rule out what they can (store/duckdb/pruning.py): the
estimate never leaves out a matching row, narrows to a namespace's row groups in a shared file, and picks the
search's engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend, pruning
from margay.store.duckdb import reader as reader_mod
from margay.store.duckdb.layout import layout_sort

from .test_layout import CLUSTERS, NOW, batch, shared_files

FLOWS = REGISTRY["flows"]
COLUMNS = pruning.pruning_columns(FLOWS, layout_sort(FLOWS))


def query(selector: str | None, clusters: list[str] | None = None) -> Query:
    return Query(FLOWS, clusters or ["beta"], size=10, selector=parse_selector(selector) if selector else None,
                 selector_text=selector, sort=[SortKey("end_time", True)], now=NOW)


def test_the_pruning_columns_are_the_layouts_leading_strings() -> None:
    assert COLUMNS[:4] == ("cluster", "source_namespace", "action", "dest_namespace")
    assert "end_time" not in COLUMNS and "_seq" not in COLUMNS


@pytest.mark.parametrize(("selector", "pins"), [
    (None, {"cluster": {"beta"}}),
    ('source_namespace = "ns1"', {"cluster": {"beta"}, "source_namespace": {"ns1"}}),
    ('source_namespace = "ns1" AND action = "deny"', {"cluster": {"beta"}, "source_namespace": {"ns1"}, "action": {"deny"}}),
    ('source_namespace IN {"ns1", "ns2"} AND source_namespace = "ns2"', {"cluster": {"beta"}, "source_namespace": {"ns2"}}),
    # What the statistics cannot prove is left out: OR, NOT, !=, NOTIN, wildcards, other columns, numbers.
    ('source_namespace = "ns1" OR action = "deny"', {"cluster": {"beta"}}),
    ('NOT source_namespace = "ns1"', {"cluster": {"beta"}}),
    ('source_namespace != "ns1"', {"cluster": {"beta"}}),
    ('source_namespace NOTIN {"ns1"}', {"cluster": {"beta"}}),
    ('source_namespace IN {"ns*"}', {"cluster": {"beta"}}),
    ('proto = "tcp" AND dest_port = 80', {"cluster": {"beta"}}),
])
def test_pinned_takes_only_what_statistics_can_rule_out(selector: str | None, pins: dict[str, set[str]]) -> None:
    got = pruning.pinned(query(selector), COLUMNS)
    assert {COLUMNS[at]: set(v) for at, v in got.items()} == pins
    assert all(list(v) == sorted(v) for v in got.values())  # sorted: a binary search per row group


def _store(tmp_path: Path) -> DuckDBBackend:
    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_cold_after=0)
    store.shared_row_group = 2048  # DuckDB's least: many row groups per shared file, each of few namespaces
    for no, c in enumerate(CLUSTERS):
        store.ingest(FLOWS, c, batch(no, 0, 9000), key=None, now=NOW, respond=lambda conv: {})
    assert store.compact() == 2  # 15 hours from 23:00: one shared file per day
    return store


def test_touched_never_leaves_out_a_matching_row(tmp_path: Path) -> None:
    """For each selector and cluster, every row of the row groups ruled out is checked: none matches."""
    store = _store(tmp_path)
    try:
        files = shared_files(store)
        assert max(pq.ParquetFile(f.path).metadata.num_row_groups for f in files) >= 10
        total = sum(f.rows for f in files)
        cases = ['source_namespace = "ns1"', 'source_namespace = "ns1" AND action = "deny"', 'action = "allow"',
                 'source_namespace IN {"ns0", "ns2"}', 'source_namespace = "nope"', None]
        narrowed = 0
        for cluster in CLUSTERS:
            for sel in cases:
                q = query(sel, [cluster])
                pins = pruning.pinned(q, COLUMNS)
                kept = 0
                for f in files:
                    meta, table = pq.ParquetFile(f.path), pq.read_table(f.path, columns=list(COLUMNS))
                    groups = pruning.row_groups(f.path, COLUMNS)
                    assert groups is not None and len(groups) == meta.metadata.num_row_groups
                    at = 0
                    for rows, bounds in groups:
                        part = table.slice(at, rows).to_pylist()
                        at += rows
                        if pruning._may_match(bounds, pins):
                            kept += rows
                        else:  # ruled out: no row in it may match the pins
                            assert not any(all(r[COLUMNS[at]] in v for at, v in pins.items()) for r in part), (cluster, sel)
                assert pruning.touched(files, pins, lambda f: pruning.row_groups(f.path, COLUMNS)) == kept
                narrowed += kept < total
        assert narrowed >= len(CLUSTERS) * (len(cases) - 1)  # the statistics did rule groups out
        assert pruning.touched(files, {}, lambda f: pytest.fail("no pins: no footer is read")) == total
        assert pruning.touched(files, {0: ("beta",)}, lambda f: None) == total  # unreadable footers: all rows
    finally:
        store.close()


def test_the_search_picks_its_engine_by_the_rows_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    try:
        files = shared_files(store)
        asked: list[Any] = []
        real = DuckDBBackend.cursor

        def spy(self: DuckDBBackend, rows: int | None = None, files: int = 0) -> Any:
            asked.append(rows)
            return real(self, rows, files)

        monkeypatch.setattr(DuckDBBackend, "cursor", spy)
        monkeypatch.setattr(reader_mod, "_ONE_PASS_ROWS", 0)  # the sort-key statement, then the fetch
        monkeypatch.setattr(reader_mod, "_INLINE_TOTAL_ROWS", 0)
        assert store._touched(query(None), files) == sum(f.rows for f in files)  # under the bound: not worked out
        monkeypatch.setattr(reader_mod, "SMALL_READ_ROWS", 4096)  # this store's 27,000 rows are over it
        first: dict[str | None, Any] = {}
        for sel in (None, 'source_namespace = "ns1" AND action = "deny"'):
            asked.clear()
            q = query(sel)
            page = store.search(q)
            first[sel] = (asked[0], page.items, page.total)
            # The sort-key statement's engine by the rows the statistics leave; the fetch's by its hits.
            assert asked == [store._touched(q, files), len(page.items) * reader_mod.FETCH_ROWS_PER_HIT]
        wide, narrow = first[None], first['source_namespace = "ns1" AND action = "deny"']
        assert narrow[0] < wide[0] < sum(f.rows for f in files)  # beta's row groups, then ns1's deny ones
        assert narrow[1] and all(i["source_namespace"] == "ns1" and i["action"] == "deny" for i in narrow[1])
        # The same answers as when every stored row counted.
        monkeypatch.setattr(DuckDBBackend, "_touched", lambda self, q, fs: sum(f.rows for f in fs))
        for sel, (_, items, total) in first.items():
            page = store.search(query(sel))
            assert (page.items, page.total) == (items, total)
    finally:
        store.close()


def _row_groups_scanned(store: DuckDBBackend, sql: str, params: list[Any], tmp_path: Path) -> int:
    """DuckDB's own count of the row groups a statement scanned (its JSON profile)."""
    out = tmp_path / "profile.json"
    cur = store.cursor(10)
    try:
        cur.execute("SET enable_profiling = 'json'")
        cur.execute(f"SET profiling_output = '{out}'")
        cur.execute(sql, params).fetchall()
    finally:
        cur.close()
    found: list[int] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("name") == "READ_PARQUET":
            found.append(int(node["row_groups_scanned"]))
        for child in node.get("children", []):
            walk(child)

    for op in json.loads(out.read_text())["operator"]:
        walk(op)
    return sum(found)


@pytest.mark.parametrize("selector", ['source_namespace = "ns1"', 'source_namespace = "ns1" AND action = "deny"',
                                      'source_namespace IN {"ns0", "ns2"}', None])
def test_duckdb_prunes_the_row_groups_the_estimate_rules_out(tmp_path: Path, selector: str | None) -> None:
    """The estimate leans on DuckDB skipping those row groups too: were an upgrade to stop, a read the estimate
    put on one thread would scan everything there. DuckDB's profile must scan no row group the estimate ruled out
    (it may skip more: its bloom filters rule out values between a row group's min and max)."""
    store = _store(tmp_path / "store")
    try:
        files = shared_files(store)
        q = query(selector)
        pins = pruning.pinned(q, COLUMNS)
        kept = sum(1 for f in files for _, bounds in (pruning.row_groups(f.path, COLUMNS) or ())
                   if pruning._may_match(bounds, pins))
        where, params = store.compiler.where(q, covered=False)
        sql = f"SELECT count(*) FROM read_parquet(?) AS t WHERE {where}"  # noqa: S608 - the compiler's WHERE
        assert 0 < _row_groups_scanned(store, sql, [[str(f.path) for f in files], *params], tmp_path) <= kept
        total = sum(pq.ParquetFile(f.path).metadata.num_row_groups for f in files)
        assert kept < total
    finally:
        store.close()
