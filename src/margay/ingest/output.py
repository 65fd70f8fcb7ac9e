"""The converter's output files: what their Parquet footers say, and their split by cluster, day and validity."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

ERR_SEP = "\x1e"  # between errors of one row
FIELD_SEP = "\x1f"  # between a field name and its message


def sql_path(path: Path) -> str:
    """A file path of margay's own (scratch and store folders) as a SQL string literal; COPY takes no parameter."""
    return "'" + str(path).replace("'", "''") + "'"


class ArrowCursor:
    """A cursor of the converter's engine with one view over an Arrow table, registered once for the cursor's life.

    The view reads whatever table `copy_arrow` has set for the statement (DuckDB asks this object for the table's
    stream when it binds the statement and again when it scans), so a statement needs no view of its own:
    registering and dropping one cost a group's statement ~0.9 ms of its ~8. One thread at a time (the
    converter's pool of them, `ArrowCursors`).
    """

    VIEW = "_arrow_feed"  # a name of margay's, never data's

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        self.table: Any = None
        self._registered = False  # on the first table (DuckDB reads the schema as it registers)

    def view(self, table: Any) -> str:
        """The view's name, reading `table` until `done`."""
        self.table = table
        if not self._registered:
            self.cur.register(self.VIEW, _Feed(self))
            self._registered = True
        return self.VIEW

    def done(self) -> None:
        self.table = None

    def close(self) -> None:
        self.table = None
        self.cur.close()


class _Feed:
    """The view's side of an ArrowCursor (the cursor holds this, not itself: no reference cycle)."""

    def __init__(self, owner: ArrowCursor) -> None:
        self._owner = weakref.ref(owner)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        owner = self._owner()
        if owner is None or owner.table is None:
            raise RuntimeError("no Arrow table is set for this statement")
        return owner.table.__arrow_c_stream__(requested_schema)


class ArrowCursors:
    """The converter's ArrowCursors between statements: one taken per statement, given back after it (at most as
    many as threads converting at once). Each statement runs in autocommit, so one that failed leaves its cursor
    fit for the next."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursor = cursor
        self._idle: list[ArrowCursor] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> ArrowCursor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ArrowCursor(self._cursor())

    def give(self, ac: ArrowCursor) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(ac)
                return
        ac.close()

    def close(self) -> None:
        """Close the idle cursors (before their engine); a cursor given back later is closed then."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for ac in idle:
            ac.close()


def copy_arrow(ac: ArrowCursor, table: Any, select: str, out: Path, codec: str, params: list[Any],
               source: str = "{table}") -> None:
    """`SELECT {select} FROM` an Arrow table of the C parser's (ingest/columns.py), written to `out` as Parquet;
    `source` (its reader's) is what is read, `{table}` the table (the cursor's view)."""
    try:
        ac.cur.execute(f"COPY (SELECT {select} FROM {source.replace('{table}', ac.view(table))}) "  # noqa: S608
                       f"TO {sql_path(out)} (FORMAT parquet, COMPRESSION {codec})", params).fetchall()
    finally:
        ac.done()


def split_file(cur: duckdb.DuckDBPyConnection, whole: Path, out: Path, codec: str, *, by_cluster: bool = True
               ) -> tuple[list[tuple[str, str, Path, int]], list[tuple[int, str, str]]]:
    """A converted file spanning several days (or clusters) or holding rejected rows: one file per cluster and
    day, (cluster, day, path, rows), and the rejected rows' (`_seq`, field, message), one per broken rule.
    `codec` is COPY's compression option (`zstd, COMPRESSION_LEVEL 1`, `snappy`)."""
    try:
        return write_split(cur, "SELECT * FROM read_parquet(?)", [str(whole)], out, codec, by_cluster=by_cluster)
    finally:
        whole.unlink()


def write_split(cur: duckdb.DuckDBPyConnection, select: str, params: list[Any], out: Path, codec: str, *,
                by_cluster: bool = True) -> tuple[list[tuple[str, str, Path, int]], list[tuple[int, str, str]]]:
    """The rows of `select` (converted rows: `cluster`, `_day`, `_err`, `_seq`) written as one file per cluster
    and day under `out` (per day only, its cluster "", when not `by_cluster`), and the rejected rows' (`_seq`,
    field, message), one per broken rule."""
    by = "_ok, _c, _day" if by_cluster else "_ok, _day"
    rows = cur.execute(
        f"COPY (SELECT *, _err IS NULL AS _ok, cluster AS _c FROM ({select})) TO {sql_path(out)} "  # noqa: S608
        f"(FORMAT parquet, COMPRESSION {codec}, PARTITION_BY ({by}), "
        "WRITE_PARTITION_COLUMNS false, RETURN_STATS true)", params).fetchall()
    files: list[tuple[str, str, Path, int]] = []
    for filename, count, *_ in rows:
        path = Path(filename)
        parts = dict(p.split("=", 1) for p in path.relative_to(out).parent.parts)
        if parts.get("_ok") == "true":
            files.append((parts.get("_c", ""), parts["_day"], path, int(count)))
    bad: list[tuple[int, str, str]] = []
    broken = sorted((out / "_ok=false").glob("**/*.parquet"))
    if broken:
        for seq, msg in cur.execute("SELECT _seq, _err FROM read_parquet(?) ORDER BY _seq",
                                    [[str(p) for p in broken]]).fetchall():
            for part in msg.split(ERR_SEP):
                fname, _, text = part.partition(FIELD_SEP)
                bad.append((seq, fname, text))
    return files, bad


def file_facts(path: Path, column: str = "_day") -> tuple[int, int, tuple[str | None, str | None]]:
    """A converted file's rows, rows without an error, and the least and greatest value of a text column
    (`_day`, `cluster`), from its Parquet footer.

    Reading the footer of the file just written costs ~0.3 ms; COPY's RETURN_STATS, which gives the same
    figures for every column as nested maps, cost a batch ~3 ms in DuckDB and Python.
    """
    meta = pq.read_metadata(path)
    rows = meta.num_rows
    valid: int = rows
    first: str | None = None
    last: str | None = None
    if not meta.num_row_groups:
        return rows, valid, (first, last)
    group = meta.row_group(0)
    where = {group.column(i).path_in_schema: i for i in range(group.num_columns)}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        err = group.column(where["_err"]).statistics
        valid -= group.num_rows if err is None or not err.has_null_count else group.num_rows - err.null_count
        day = group.column(where[column]).statistics
        if day is None or not day.has_min_max:
            continue
        first = day.min if first is None else min(first, day.min)
        last = day.max if last is None else max(last, day.max)
    return rows, valid, (first, last)


def cluster_counts(path: Path) -> tuple[tuple[str, int], ...]:
    """Rows per cluster of a converted file, sorted by cluster (its `cluster` column: a group's file split by day)."""
    import pyarrow.compute as pc

    counts = pc.value_counts(pq.read_table(path, columns=["cluster"]).column("cluster"))
    return tuple(sorted((str(c["values"]), int(c["counts"])) for c in counts.to_pylist()))
