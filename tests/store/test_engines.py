"""The embedded store's engines: every cursor in UTC whatever the process's TZ; small reads on one thread; the read
engines keep Parquet footers for every cursor, renewed past a bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.logtypes import REGISTRY, SAMPLES
from margay.query.graph import GraphSpec
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import reader as reader_mod

# Run in a child process: DuckDB takes its default TimeZone from the process's TZ when it starts.
_CHILD = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
import orjson
from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend

store = DuckDBBackend(Path(sys.argv[1]), compact_interval=3600)
try:
    zone = "SELECT current_setting('TimeZone'), strftime(TIMESTAMPTZ '2026-01-01 00:30:00+00', '%d %H')"
    cursors = {"reader": store.cursor(), "small reader": store.cursor(10), "ingest": store.ingest_con.cursor(),
               "compactor": store.compact_con.cursor()}
    out = {name: list(cur.execute(zone).fetchone()) for name, cur in cursors.items()}
    for cur in cursors.values():
        cur.close()
    flows = REGISTRY["flows"]
    # 00:30 UTC on 1 January: still 31 December in any zone west of UTC (the partition's day, the bucket's).
    doc = dict(orjson.loads(SAMPLES["flows"][0]), start_time=1767227400, end_time=1767227400)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    store.ingest(flows, "c", orjson.dumps(doc), key=None, now=now, respond=lambda c: {})
    q = Query(flows, ["c"], start=datetime(2026, 1, 1, tzinfo=UTC), end=now, now=now)
    out["partitions"] = [p.day for p in store.partitions(flows)]
    days = store.aggregate(q, {"d": {"date_histogram": {"field": "end_time", "calendar_interval": "day"}}})
    out["days"] = [b["key_as_string"] for b in days.result["d"]["buckets"] if b["doc_count"]]
    fed = store.records_after(flows, 0, 10, upto=1 << 62)
    out["fed_time"] = [r["_time"] for r in fed]
finally:
    store.close()
print(json.dumps(out))
"""


def test_every_cursor_is_in_utc_when_the_process_tz_is_not(tmp_path: Path) -> None:
    env = dict(os.environ, TZ="America/New_York")
    run = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for name in ("reader", "small reader", "ingest", "compactor"):
        assert out[name] == ["UTC", "01 00"], name
    assert out["partitions"] == ["20260101"]
    assert out["days"] == ["2026-01-01T00:00:00.000Z"]  # read: the day's partition was not pruned
    assert out["fed_time"] == [1767227400]


def _threads(cur: Any) -> int:
    return int(cur.execute("SELECT current_setting('threads')").fetchall()[0][0])


def test_small_reads_run_on_one_thread_and_answer_as_the_parallel_engine(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600, compact_min_files=1, compact_cold_after=0)
    try:
        small, big = store.cursor(reader_mod.SMALL_READ_ROWS), store.cursor(reader_mod.SMALL_READ_ROWS + 1)
        assert _threads(small) == 1
        assert _threads(big) == _threads(store.con) and store.cursor().execute("SELECT 1").fetchall() == [(1,)]
        small.close()
        big.close()
        flows, dns = REGISTRY["flows"], REGISTRY["dns"]
        now = datetime(2026, 11, 27, tzinfo=UTC)
        base = orjson.loads(SAMPLES["flows"][0])
        t0 = int((now - timedelta(hours=5)).timestamp())
        body = b"\n".join(orjson.dumps(dict(base, start_time=t0 + 60 * i, end_time=t0 + 60 * i + 30,
                                             bytes_in=i, dest_name_aggr=f"d{i % 7}", source_namespace=f"ns{i % 3}"))
                          for i in range(300))
        store.ingest(flows, "c", body, key=None, now=now, respond=lambda c: {})
        store.ingest(dns, "c", "\n".join(SAMPLES["dns"]).encode(), key=None, now=now, respond=lambda c: {})
        store.compact()
        q = Query(flows, ["c"], start=now - timedelta(days=1), end=now, now=now, size=50)
        aggs = {"d": {"terms": {"field": "dest_name_aggr", "size": 5, "order": {"b": "desc"}},
                      "aggs": {"b": {"sum": {"field": "bytes_in"}}}}}

        def answers() -> list[Any]:
            page = store.search(q)
            return [store.aggregate(q, aggs).result, page.items, page.total,
                    store.aggregate(Query(dns, ["c"], now=now), {"n": {"terms": {"field": "qname"}}}).result,
                    store.flow_graph(q, GraphSpec())]

        assert store.aggregate(q, aggs).path == "rollup"  # run_rolled on both engines too
        on_one = answers()
        assert on_one[0]["d"]["buckets"] and len(on_one[1]) == 50 and on_one[2] == 300
        monkeypatch.setattr(reader_mod, "SMALL_READ_ROWS", -1)  # every read on the parallel engine
        assert answers() == on_one
    finally:
        store.close()


def _flow_store(tmp_path: Path, files: int) -> tuple[DuckDBBackend, Query]:
    """A store of `files` flow files (one batch each, never compacted) and a search over all of them."""
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    flows = REGISTRY["flows"]
    now = datetime(2026, 11, 27, tzinfo=UTC)
    base = orjson.loads(SAMPLES["flows"][0])
    t0 = int((now - timedelta(hours=5)).timestamp())
    for k in range(files):
        body = b"\n".join(orjson.dumps(dict(base, start_time=t0 + 60 * i, end_time=t0 + 60 * i + 30, bytes_in=k))
                          for i in range(20))
        store.ingest(flows, "c", body, key=None, now=now, respond=lambda c: {})
    return store, Query(flows, ["c"], start=now - timedelta(days=1), end=now, now=now, size=5)


def _footers(con: Any) -> int:
    return reader_mod._object_cache_bytes(con)


def test_every_read_cursor_keeps_parquet_footers(tmp_path: Path) -> None:
    """parquet_metadata_cache holds for the cursors the reads run on, not only for their parent connection
    (a plain SET did): a search leaves the footers it read in its engine's cache."""
    store, q = _flow_store(tmp_path, 3)
    try:
        for rows in (10, reader_mod.SMALL_READ_ROWS + 1):
            cur = store.cursor(rows)
            assert cur.execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (True,), rows
            cur.close()
        assert _footers(store.small_con) == 0
        assert len(store.search(q).items) == 5  # 60 rows: the one-thread engine
        assert _footers(store.small_con) > 0
    finally:
        store.close()


def test_read_engines_are_renewed_past_the_footer_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, q = _flow_store(tmp_path, 4)
    try:
        first = store.search(q)
        assert not store.bound_footers()  # a few small footers: under the bound
        held = _footers(store.small_con)
        monkeypatch.setattr(reader_mod, "FOOTER_CACHE_BYTES", held - 1)
        old_con, old_small = store.con, store.small_con
        under_way = store.cursor(10)  # a read that started before the renewal
        assert store.bound_footers()
        assert store.con is not old_con and store.small_con is not old_small
        del old_con, old_small  # dropped as the renewal drops them
        assert _footers(store.small_con) == 0 and not store.bound_footers()
        assert under_way.execute("SELECT count(*) FROM range(3)").fetchone() == (3,)  # its engine lives on
        under_way.close()
        again = store.search(q)
        assert again.items == first.items and again.total == first.total
        assert _footers(store.small_con) == held
        assert store.cursor(10).execute("SELECT current_setting('threads')").fetchone() == (1,)
    finally:
        store.close()


def test_a_read_over_many_files_keeps_none_of_their_footers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet's all-cluster question over thousands of hot files would fill the cache in one read."""
    store, q = _flow_store(tmp_path, 4)
    try:
        files = sum(len(fs) for fs in store.catalog.parts.values())
        assert files >= 3
        monkeypatch.setattr(reader_mod, "FOOTERS_KEPT_FILES", files - 1)
        cur = store.cursor(10, files)
        assert cur.execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (False,)
        cur.close()
        first = store.search(q)
        uncached = _footers(store.small_con)  # DuckDB keeps a few small objects of its own (~2-3 KiB)
        assert store.cursor(10).execute("SELECT current_setting('parquet_metadata_cache')").fetchone() == (True,)
        monkeypatch.setattr(reader_mod, "FOOTERS_KEPT_FILES", files)
        assert store.search(q).items == first.items and _footers(store.small_con) > 4 * uncached + 65536
    finally:
        store.close()


def test_a_store_left_open_stops_its_compactor_at_exit(tmp_path: Path) -> None:
    """A daemon compactor still inside DuckDB when Python finalizes aborts the process; exit stops it first."""
    code = f"""
import time
from pathlib import Path
from margay.store.duckdb import DuckDBBackend, compactor
store = DuckDBBackend(Path({str(tmp_path)!r}), compact_interval=0.001)
store.cursor(10).execute("SELECT 1").fetchall()
time.sleep(0.2)
assert store._compactor.is_alive() and store in compactor._RUNNING
compactor._stop_all()
assert not store._compactor.is_alive() and store not in compactor._RUNNING
print("stopped")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "stopped", run.stderr
