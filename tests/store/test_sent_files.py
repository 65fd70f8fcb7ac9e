"""Data files written before values were kept as sent (no `_sent_*`/`_extra` columns) stay readable on the
embedded engine, alone and next to new files: their records render from the typed columns, as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from margay.logtypes import REGISTRY
from margay.logtypes.base import sent_columns
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend

NOW = datetime(2023, 11, 16, tzinfo=UTC)
DNS = REGISTRY["dns"]


def _dns(i: int) -> bytes:
    return orjson.dumps({"start_time": f"2023-11-14T22:1{i}:00.123456789Z", "end_time": f"2023-11-14T22:1{i}:30Z",
                         "type": "log", "count": i, "qname": f"q{i}.example", "client_namespace": "shop",
                         "new_field": i})


def _strip(data: Path) -> int:
    """Rewrite every data file as an older margay wrote it; returns how many."""
    files = [p for p in data.rglob("*.parquet") if p.parent.name != "rollups" and "rollup" not in p.name]
    con = duckdb.connect()
    drop = ", ".join(f'"{c}"' for c in sent_columns(DNS))
    for p in files:
        tmp = p.with_suffix(".old")
        con.execute(f"COPY (SELECT * EXCLUDE ({drop}) FROM read_parquet('{p}')) TO '{tmp}' (FORMAT parquet)")  # noqa: S608
        tmp.replace(p)
    con.close()
    return len(files)


def test_files_without_kept_values_are_read_as_before(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    store.ingest(DNS, "c", _dns(1), key=None, now=NOW, respond=lambda _: {})
    store.close()
    assert _strip(tmp_path) >= 1
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    try:
        [old] = store.search(Query(DNS, ["c"], now=NOW)).items
        assert old["start_time"] == "2023-11-14T22:11:00.123456Z" and "new_field" not in old  # typed, as before
        store.ingest(DNS, "c", _dns(2), key=None, now=NOW, respond=lambda _: {})
        items = sorted(store.search(Query(DNS, ["c"], now=NOW)).items, key=lambda d: d["count"])
        assert [d["start_time"] for d in items] == ["2023-11-14T22:11:00.123456Z", "2023-11-14T22:12:00.123456789Z"]
        assert items[1]["new_field"] == 2
        fed = store.records_after(DNS, 0, 10, upto=store.head_seq())
        assert sorted(d["count"] for d in fed) == [1, 2]
    finally:
        store.close()
