"""Facts about immutable data files, read once and cached: schema, time span, size on disk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import DataFile

log = logging.getLogger(__name__)


def _disk_bytes(f: DataFile) -> int:
    """A data file's bytes on disk with its roll-up's (storage per record counts both)."""
    if f.rollup is None:
        return f.bytes
    try:
        return f.bytes + f.rollup.stat().st_size
    except OSError:  # retired by a compaction since the snapshot
        return f.bytes


def _file_fact(cache: dict[Any, Any], key: Any, make: Callable[[], Any], cap: int = 65_536) -> Any:
    """`cache[key]`, made once: a fact about an immutable data file. Bounded, oldest out first: files come and
    go with compaction. Reads on several threads share a cache: one may evict while another inserts (iterating
    the dict then raises), and the oldest entry then stays until the next insert."""
    value = cache.get(key, _MISSING)
    if value is _MISSING:
        value = cache[key] = make()
        while len(cache) > cap:
            try:
                cache.pop(next(iter(cache)), None)
            except (RuntimeError, StopIteration):  # changed by another thread meanwhile
                break
    return value


_MISSING = object()


def _schema_id(path: Path) -> int | None:
    """A Parquet file's column names and types, hashed; None if pyarrow cannot read its footer."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    return hash(tuple(zip(schema.names, map(str, schema.types), strict=True)))


def _parquet_rows(path: Path) -> int:
    """A Parquet file's rows, from its footer; unknown (unreadable, or gone since the snapshot): 2**62."""
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException):
        return 1 << 62


def _keeps_sent(path: Path) -> bool:
    """Whether a data file has the kept-as-sent columns (written since values are kept as sent)."""
    try:
        return "_extra" in pq.read_schema(path).names
    except (OSError, pa.ArrowException):
        return True  # DuckDB will say what is wrong with it


def _null_columns(path: Path) -> frozenset[str]:
    """The top-level, non-nested columns of a Parquet file that are NULL in every row, by its row groups'
    null counts (a document fetch renders them as constants instead of decoding them). Nested columns are
    never listed: a list's leaf counts an empty list as null, and `[]` is not `null`. Empty if unknown."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return frozenset()
    out = set()
    for i in range(meta.num_columns):
        col = meta.schema.column(i)
        if col.max_repetition_level != 0 or col.max_definition_level != 1 or col.path != col.name:
            continue  # a list, a struct's member, or a required column
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            stats = group.column(i).statistics
            if group.num_rows and (stats is None or not stats.has_null_count or stats.null_count != group.num_rows):
                break
        else:
            out.add(col.name)
    return frozenset(out)


def _time_span(path: Path, field: str) -> tuple[float, float]:
    """(lowest, highest) of a time column in a Parquet file, epoch seconds, from its row-group statistics;
    (-inf, inf) when the file has no such statistics (or no such column)."""
    unknown = (float("-inf"), float("inf"))
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return unknown
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if field not in names:
        return unknown
    col = names.index(field)
    lo, hi = float("inf"), float("-inf")
    for rg in range(meta.num_row_groups):
        stats = meta.row_group(rg).column(col).statistics
        if meta.row_group(rg).num_rows == 0:
            continue
        if stats is None or not stats.has_min_max:
            return unknown
        try:
            lo, hi = min(lo, _epoch(stats.min)), max(hi, _epoch(stats.max))
        except (TypeError, ValueError, OverflowError):  # not a time the statistics can tell
            return unknown
    return (lo, hi) if lo <= hi else unknown


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)
