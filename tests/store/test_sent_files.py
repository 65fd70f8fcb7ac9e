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


def test_threat_feed_matching_reads_files_without_kept_values(tmp_path: Path) -> None:
    """The IP matcher renders its hits with the same document expression: an older file binds too."""
    flows = REGISTRY["flows"]
    rec = {"start_time": 1699999000, "end_time": 1699999300, "source_ip": "10.0.0.1", "dest_ip": "192.0.2.7",
           "source_namespace": "shop", "action": "allow", "reporter": "src", "proto": "tcp"}
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    store.ingest(flows, "c", orjson.dumps(rec), key=None, now=NOW, respond=lambda _: {})
    store.close()
    files = [p for p in tmp_path.rglob("*.parquet") if "rollup" not in p.name]
    con = duckdb.connect()
    for p in files:  # as an older margay wrote it: no `_extra`
        tmp = p.with_suffix(".old")
        con.execute(f"COPY (SELECT * EXCLUDE (\"_extra\") FROM read_parquet('{p}')) TO '{tmp}' (FORMAT parquet)")  # noqa: S608
        tmp.replace(p)
    con.close()
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    try:
        store.ingest(flows, "c", orjson.dumps(dict(rec, source_ip="10.0.0.2", dest_ip="198.51.100.9")), key=None,
                     now=NOW, respond=lambda _: {})
        # the only hit is in the old file: the documents are read from that file alone
        hits = store.records_with_ips(flows, 0, ["dest_ip"], ["192.0.2.0/24"], 10, upto=store.head_seq())
        assert [(h["source_ip"], h["dest_ip"]) for h in hits] == [("10.0.0.1", "192.0.2.7")]
        both = store.records_with_ips(flows, 0, ["dest_ip"], ["192.0.2.7", "198.51.100.0/24"], 10,
                                      upto=store.head_seq())
        assert sorted(h["source_ip"] for h in both) == ["10.0.0.1", "10.0.0.2"]
    finally:
        store.close()
