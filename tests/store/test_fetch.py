"""The embedded engine's search documents: columns NULL in every row of the files read are rendered as constants
(not decoded), and a search whose remembered hits fit its page renders them in its one statement; the documents
are the same either way."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import reader as reader_mod
from margay.store.duckdb.files import _null_columns

NOW = datetime(2023, 11, 16, tzinfo=UTC)
DNS = REGISTRY["dns"]
FLOWS = REGISTRY["flows"]


def _dns(i: int, *, sent: bool) -> dict[str, Any]:
    """A DNS record; `sent`: its start time has nanoseconds (kept as sent) and it has an undeclared key; else
    its times are as margay renders them (nothing kept as sent)."""
    rec: dict[str, Any] = {"start_time": f"2023-11-14T22:{i % 60:02d}:00.123456{'789' if sent else ''}Z",
                           "end_time": f"2023-11-14T22:{i % 60:02d}:30.000000Z", "type": "log", "count": i,
                           "qname": f"q{i}.example", "client_namespace": "shop",
                           "rcode": "NXDomain" if i % 7 == 0 else "NoError"}
    if sent:
        rec["new_field"] = i
    return rec


class _Counting:
    """A cursor that counts the statements it runs."""

    def __init__(self, cur: Any, runs: list[str]) -> None:
        self.cur, self.runs = cur, runs

    def execute(self, sql: str, params: Any = None) -> Any:
        self.runs.append(sql)
        return self.cur.execute(sql, params)

    def close(self) -> None:
        self.cur.close()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = DuckDBBackend(tmp_path, compact_interval=3600)
    # Two files: one whose records keep nothing as sent and have no undeclared key (`_sent_*` and `_extra`
    # NULL throughout), one whose records do.
    s.ingest(DNS, "c", b"\n".join(orjson.dumps(_dns(i, sent=False)) for i in range(0, 40)), key=None, now=NOW,
             respond=lambda _: {})
    s.ingest(DNS, "c", b"\n".join(orjson.dumps(_dns(i, sent=True)) for i in range(40, 80)), key=None, now=NOW,
             respond=lambda _: {})
    yield s
    s.close()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if "rollup" not in p.name and p.parent.name != "rollups")


def test_null_columns_are_the_flat_columns_null_in_every_row(store: DuckDBBackend, tmp_path: Path) -> None:
    plain, sent = _files(tmp_path)
    assert {"_extra", "_sent_start_time", "_sent_end_time"} <= _null_columns(plain)
    assert "_extra" not in _null_columns(sent) and "_sent_start_time" not in _null_columns(sent)
    assert "qname" not in _null_columns(plain) and "count" not in _null_columns(plain)
    # Lists and structs are never listed: an empty list's leaf counts as null, and `[]` renders unlike null.
    nested = {f.name for f in DNS.fields if f.kind.is_list or f.kind.name.startswith("STRUCT")}
    assert nested and not nested & (_null_columns(plain) | _null_columns(sent))
    assert _null_columns(tmp_path / "missing.parquet") == frozenset()


@pytest.mark.parametrize("one_pass", [0, 10_000])
def test_documents_are_the_same_with_null_columns_as_constants(store: DuckDBBackend, one_pass: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "_ONE_PASS_ROWS", one_pass)
    q = Query(DNS, ["c"], size=25, sort=[SortKey("count", False)], now=NOW)

    def walk() -> list[dict[str, Any]]:
        out, after = [], None
        while True:
            res = store.search(replace(q, after_key=after))
            out += res.items
            if (after := res.after_key) is None:
                return out

    with_constants = walk()
    store._counts.clear()
    monkeypatch.setattr(reader_mod.Reader, "_nulls_of", lambda self, files, rel: frozenset())
    decoded = walk()
    assert with_constants == decoded and len(decoded) == 80
    by_count = {d["count"]: d for d in decoded}
    assert by_count[3]["start_time"] == "2023-11-14T22:03:00.123456Z" and "new_field" not in by_count[3]
    assert by_count[43]["start_time"] == "2023-11-14T22:43:00.123456789Z" and by_count[43]["new_field"] == 43


def test_remembered_hits_that_fit_the_page_are_one_statement(store: DuckDBBackend,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `_ONE_PASS_ROWS` stored rows a search runs its sort keys, then fetches its page's documents; once
    its total is remembered and fits the page, one statement renders them: the same page."""
    monkeypatch.setattr(reader_mod, "_ONE_PASS_ROWS", 0)
    runs: list[str] = []
    plain = store.cursor
    monkeypatch.setattr(store, "cursor", lambda rows=None, files=0: _Counting(plain(rows, files), runs))
    sel = 'rcode = "NXDomain"'
    q = Query(DNS, ["c"], size=20, selector=parse_selector(sel), selector_text=sel,
              sort=[SortKey("end_time", True)], now=NOW)
    first = store.search(q)
    assert len(runs) == 2 and first.total == 12 and first.after_key is None  # sort keys (counted), fetch
    runs.clear()
    again = store.search(q)
    assert len(runs) == 1 and again == first
    runs.clear()
    small = replace(q, size=5)  # more hits than the page: sort keys, then the fetch
    pages = [store.search(small)]
    while pages[-1].after_key is not None:
        pages.append(store.search(replace(small, after_key=pages[-1].after_key)))
    assert len(runs) == 2 * len(pages) and [d for p in pages for d in p.items] == first.items
