"""The converter's Arrow views: one per cursor, registered once, reading the table set for each statement."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from margay.ingest.output import ArrowCursor, ArrowCursors, copy_arrow


def test_one_view_reads_each_statements_own_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    ac = ArrowCursor(con.cursor())
    tables = [pa.table({"a": [1, 2], "b": ["x", "y"]}), pa.table({"a": [3]}),  # another shape on the same view
              pa.table({"a": pa.array([5, 6, 7], pa.int32()), "b": pa.array(["p", None, "q"]).dictionary_encode()})]
    for i, table in enumerate(tables):
        out = tmp_path / f"{i}.parquet"
        copy_arrow(ac, table, "*, ? AS n", out, "snappy", [i])
        got = pq.read_table(out)
        assert got.column("a").to_pylist() == table.column("a").to_pylist()
        assert got.column("n").to_pylist() == [i] * table.num_rows
        if "b" in table.column_names:
            assert got.column("b").to_pylist() == table.column("b").to_pylist()
    assert ac.table is None  # nothing held between statements
    with pytest.raises(duckdb.Error):  # the view without a table: an error, never the previous statement's rows
        ac.cur.execute("SELECT * FROM " + ArrowCursor.VIEW).fetchall()  # noqa: S608 - a constant
    ac.close()
    con.close()


def test_cursors_are_kept_reused_after_an_error_and_closed(tmp_path: Path) -> None:
    con = duckdb.connect()
    made: list[duckdb.DuckDBPyConnection] = []

    def cursor() -> duckdb.DuckDBPyConnection:
        made.append(con.cursor())
        return made[-1]

    pool = ArrowCursors(cursor)
    first = pool.take()
    with pytest.raises(duckdb.Error):
        copy_arrow(first, pa.table({"a": [1]}), "error('no') AS a", tmp_path / "bad.parquet", "snappy", [])
    pool.give(first)
    again = pool.take()
    assert again is first and len(made) == 1
    second = pool.take()  # another thread's, while the first is taken
    assert second is not first and len(made) == 2
    copy_arrow(again, pa.table({"a": [1, 2]}), "a", tmp_path / "ok.parquet", "snappy", [])
    assert pq.read_table(tmp_path / "ok.parquet").column("a").to_pylist() == [1, 2]
    pool.give(again)
    pool.close()
    with pytest.raises(duckdb.ConnectionException):
        again.cur.execute("SELECT 1")
    pool.give(second)  # given back after close: closed then
    with pytest.raises(duckdb.ConnectionException):
        second.cur.execute("SELECT 1")
    con.close()
