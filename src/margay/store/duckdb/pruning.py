"""How many stored rows a read can touch once the Parquet row-group statistics have ruled out what they can.

A shared file is sorted by cluster, the type's first namespace and action first (layout.py: `layout_sort`), so a
search that names a cluster and a namespace (the denied flows of one namespace) reads a few of a day's row
groups: DuckDB skips the others by their min/max. The reader picks its engine by the rows a read touches
(reader.py: SMALL_READ_ROWS): counted from the stored rows, such a search ran its sort-key statement on both
threads, where handing a ~3 ms statement to a second thread cost ~1.3 ms of CPU and no wall time.

Only what the statistics can prove is ruled out: the query's clusters and the equalities (`=`, `IN`) on those
sort columns in the selector's top-level AND. Anything else may match, so the estimate is never below what
DuckDB reads (it prunes the same groups, from the same statistics, and perhaps more).
"""

from __future__ import annotations

from bisect import bisect_left
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...logtypes import Kind, LogType, quote_ident
from ...query.model import Query
from ...query.selector import And, Compare, InSet
from ..catalog import DataFile

# A file's row groups: each its rows and, per pruning column in order, (min, max) when both are strings.
Groups = tuple[tuple[int, tuple[tuple[str, str] | None, ...]], ...]

_STRINGS = (Kind.KEYWORD, Kind.TEXT)


def row_groups(path: Path, columns: tuple[str, ...]) -> Groups | None:
    """The row groups of a Parquet file with the min/max of `columns` (plain string columns); None when its
    footer cannot be read."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return None
    index = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    out = []
    for r in range(meta.num_row_groups):
        group = meta.row_group(r)
        bounds: list[tuple[str, str] | None] = []
        for name in columns:
            i = index.get(name)
            stats = group.column(i).statistics if i is not None else None
            ok = stats is not None and stats.has_min_max and isinstance(stats.min, str) and isinstance(stats.max, str)
            bounds.append((stats.min, stats.max) if ok else None)  # type: ignore[union-attr]
        out.append((group.num_rows, tuple(bounds)))
    return tuple(out)


def pinned(query: Query, columns: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    """The values (sorted) the query allows the column at each index of `columns` to take, where it says: its
    clusters, and the selector's top-level `key = "v"` / `key IN {...}` on a string key that reads exactly
    that column."""
    pins: dict[int, frozenset[str]] = {}
    if "cluster" in columns and query.clusters:
        pins[columns.index("cluster")] = frozenset(query.clusters)
    node = query.selector
    items = node.items if isinstance(node, And) else (node,) if node is not None else ()
    keys = query.logtype.query_keys()
    sql = {quote_ident(c): i for i, c in enumerate(columns)}
    for item in items:
        values: tuple[str, ...]
        if isinstance(item, Compare) and item.op == "=" and isinstance(item.value, str):
            key, values = item.key, (item.value,)
        elif isinstance(item, InSet) and not item.negated and all(
                isinstance(v, str) and "*" not in v and "?" not in v for v in item.values):
            key, values = item.key, tuple(str(v) for v in item.values)
        else:
            continue
        qk = keys.get(key)
        if qk is None or qk.kind not in _STRINGS or qk.map_column is not None or qk.es_field in query.logtype.derived:
            continue
        at = sql.get(qk.sql)
        if at is not None:
            pins[at] = pins.get(at, frozenset(values)) & frozenset(values)
    return {at: tuple(sorted(v)) for at, v in pins.items()}


def touched(files: list[DataFile], pins: dict[int, tuple[str, ...]], groups_of: Any) -> int:
    """The rows of `files` in row groups whose statistics do not rule out `pins`; `groups_of(file)` gives a
    file's row groups (cached by the caller), None for a file whose footer cannot be read (all its rows).
    Each pin's values are sorted: a row group costs a binary search per pinned column, however many values
    (a fleet's 1,000 clusters, a selector's long IN set)."""
    if not pins:
        return sum(f.rows for f in files)
    total = 0
    for f in files:
        groups = groups_of(f)
        if groups is None:
            total += f.rows
            continue
        total += sum(rows for rows, bounds in groups if _may_match(bounds, pins))
    return total


def _may_match(bounds: tuple[tuple[str, str] | None, ...], pins: dict[int, tuple[str, ...]]) -> bool:
    for at, values in pins.items():
        lo_hi = bounds[at]
        if lo_hi is None:
            continue
        i = bisect_left(values, lo_hi[0])
        if i == len(values) or values[i] > lo_hi[1]:  # no value within [min, max]
            return False
    return True


def pruning_columns(lt: LogType, sort: list[str]) -> tuple[str, ...]:
    """The string columns of a type's layout sort (cluster, namespaces, action, aggregated names)."""
    fields = lt.field_map
    return tuple(c for c in sort if c == "cluster" or (c in fields and fields[c].kind in _STRINGS))


__all__ = ["Groups", "pinned", "pruning_columns", "row_groups", "touched"]
