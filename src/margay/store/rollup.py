"""Roll-ups: per data file, its rows summed per hour and a few low-cardinality fields (a Parquet sidecar).

Compaction writes `<data file>.rollup-<tag>.parquet` next to every data file it produces (and builds one for
large files that lack it), in the same journal entry, so recovery, drops and deferred deletes treat the
pair as one. The log type declares what is kept (`LogType.rollup`): the hour of the time field, the
`dims` and, per integer `measure`, its sum (under the field's own name), min (`<m>__min`), max
(`<m>__max`) and non-null count (`<m>__n`), plus `_count`, the number of rows.

An aggregation qualifies (`aggs_qualify`) when its terms, selector and restriction name only dims, its
metrics roll up exactly and its date histograms have whole-hour buckets. It then reads `union_source`:
the roll-up rows of the hours wholly inside the time range, plus the raw rows (projected to the same
columns, `_count` 1) of files without a roll-up and of the partial hours at the range's edges. Counting
becomes `sum(_count)`; the answer is identical to the raw one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import QueryError
from ..logtypes import Kind, LogType, Rollup, quote_ident
from ..query.model import Query

GLOB = "*.rollup-*.parquet"
COUNT = '"_count"'
FORMAT = 1  # bump when the columns a roll-up holds change meaning

# Metric kinds that roll up exactly: on a measure (from its sum/min/max/count columns) and on a dim
# (a group key: its values, and their distinct set, are those of the raw rows).
MEASURE_METRICS = frozenset({"sum", "min", "max", "value_count", "avg"})
DIM_METRICS = frozenset({"min", "max", "value_count", "cardinality"})
_SIDECAR = re.compile(r"^(.+)\.rollup-([0-9a-f]{8})\.parquet$")

def tag(lt: LogType) -> str:
    """A fingerprint of the type's roll-up definition: a sidecar built for another definition is stale."""
    r = lt.rollup
    assert r is not None
    text = repr((FORMAT, lt.time_field, r.dims, r.measures, r.derived, r.bucket_s))
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def sidecar(data: Path, lt: LogType) -> Path:
    """The roll-up file of a data file: `<seq_lo>-<seq_hi>-<rows>.rollup-<tag>.parquet` beside it."""
    return data.with_name(f"{data.name[: -len('.parquet')]}.rollup-{tag(lt)}.parquet")


def is_sidecar(path: Path) -> bool:
    return _SIDECAR.match(path.name) is not None


def current(path: Path, lt: LogType | None) -> Path | None:
    """The data file of a sidecar built for the type's current definition; None if stale or not one."""
    m = _SIDECAR.match(path.name)
    if m is None or lt is None or lt.rollup is None or m.group(2) != tag(lt):
        return None
    return path.with_name(m.group(1) + ".parquet")


# -- the columns ---------------------------------------------------------------------------------------

def _bucket(lt: LogType, r: Rollup) -> str:
    t = quote_ident(lt.time_field)
    if lt.time.kind is Kind.EPOCH_S:
        return f"({t} - (({t} % {r.bucket_s}) + {r.bucket_s}) % {r.bucket_s})"
    return f"time_bucket(INTERVAL '{r.bucket_s} seconds', {t}, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


def _names(lt: LogType, r: Rollup, measures: Collection[str] | None = None) -> list[str]:
    """Every column of a roll-up, in order (raw projections use the same order); only the `measures` named."""
    out = [lt.time_field, *r.dims, *(n for n, _ in r.derived), "_count"]
    for m in r.measures:
        if measures is None or m in measures:
            out += [m, f"{m}__min", f"{m}__max", f"{m}__n"]
    return out


def build_sql(lt: LogType, rel: str) -> str:
    """SELECT that rolls `rel` (one data file) up: one row per hour and combination of dims."""
    r = lt.rollup
    assert r is not None
    groups = [f"{_bucket(lt, r)} AS {quote_ident(lt.time_field)}", *(quote_ident(d) for d in r.dims),
              *(f"{sql} AS {quote_ident(n)}" for n, sql in r.derived)]
    aggs = [f"count(*) AS {COUNT}"]
    for m in r.measures:
        c = quote_ident(m)
        aggs += [f"CAST(sum({c}) AS BIGINT) AS {c}", f"min({c}) AS {quote_ident(m + '__min')}",
                 f"max({c}) AS {quote_ident(m + '__max')}", f"count({c}) AS {quote_ident(m + '__n')}"]
    return (f"SELECT {', '.join(groups + aggs)} FROM {rel} AS t "  # noqa: S608 - registry names only
            f"GROUP BY ALL ORDER BY {quote_ident(lt.time_field)}")


def _raw_sql(lt: LogType, measures: Collection[str] | None = None) -> str:
    """The raw rows projected to a roll-up's columns (each row a group of one); only the `measures` named."""
    r = lt.rollup
    assert r is not None
    cols = [quote_ident(lt.time_field), *(quote_ident(d) for d in r.dims),
            *(f"{sql} AS {quote_ident(n)}" for n, sql in r.derived), f"CAST(1 AS BIGINT) AS {COUNT}"]
    for m in r.measures:
        if measures is not None and m not in measures:
            continue
        c = quote_ident(m)
        cols += [c, f"{c} AS {quote_ident(m + '__min')}", f"{c} AS {quote_ident(m + '__max')}",
                 f"CAST({c} IS NOT NULL AS BIGINT) AS {quote_ident(m + '__n')}"]
    return ", ".join(cols)


# -- which questions qualify -----------------------------------------------------------------------------

def _dim_sql(lt: LogType) -> set[str]:
    r = lt.rollup
    return {quote_ident(d) for d in r.dims} if r is not None else set()


def key_is_dim(lt: LogType, key: str) -> bool:
    qk = lt.query_keys().get(key)
    return qk is not None and qk.map_column is None and not qk.kind.is_list and qk.sql in _dim_sql(lt)


def _measure(lt: LogType, key: str) -> str | None:
    qk = lt.query_keys().get(key)
    r = lt.rollup
    if qk is None or r is None:
        return None
    for m in r.measures:
        if qk.sql == quote_ident(m):
            return m
    return None


def _selector_keys(node: Any) -> set[str] | None:
    from ..query.selector import And, Compare, InSet, Not, Or

    if node is None:
        return set()
    if isinstance(node, Compare | InSet):
        return {node.key}
    if isinstance(node, And | Or):
        out: set[str] = set()
        for item in node.items:
            keys = _selector_keys(item)
            if keys is None:
                return None
            out |= keys
        return out
    if isinstance(node, Not):
        return _selector_keys(node.item)
    return None


def usable(query: Query, keys: Iterable[str] = ()) -> bool:
    """Whether a query's rows can come from roll-ups when it reads only the dims `keys` besides its
    selector and the reader's restriction (its time range must be on the type's time field)."""
    lt: LogType = query.logtype
    if lt.rollup is None or query.also or query.time_key != lt.time_field:
        return False
    sel = _selector_keys(query.selector)
    scope = _selector_keys(query.restriction.selector(lt, query.clusters))
    if sel is None or scope is None or not all(key_is_dim(lt, k) for k in scope):
        return False
    if sel is None or not all(key_is_dim(lt, k) for k in sel | set(keys)):
        return False
    return True


def _hour_histogram(params: Any) -> bool:
    from ..query.aggs import IntervalError, interval

    if not isinstance(params, dict):
        return False
    try:
        return interval(params).whole_hours
    except IntervalError:
        return False


def _agg_keys(lt: LogType, aggs: Any, keys: set[str], measures: set[str] | None = None) -> bool:
    """Walk an aggregation tree: False if a part does not roll up; collects the dims it groups by (and into
    `measures` the measures its metrics read)."""
    from ..query.aggs import BUCKETS, LINSEED, METRICS, split

    if not isinstance(aggs, dict):
        return False
    for name, spec in aggs.items():
        try:
            kind, params, subs = split(spec, name, LINSEED)
        except QueryError:
            return False
        field = params.get("field") if isinstance(params, dict) else None
        if not isinstance(field, str):
            return False
        if kind in METRICS:
            m = _measure(lt, field)
            if not ((kind in MEASURE_METRICS and m is not None)
                    or (kind in DIM_METRICS and key_is_dim(lt, field))):
                return False
            if measures is not None and m is not None:
                measures.add(m)
        elif kind == "terms":
            if not key_is_dim(lt, field):
                return False
            keys.add(field)
        elif kind == "date_histogram":
            qk = lt.query_keys().get(field)
            if qk is None or qk.sql != quote_ident(lt.time_field) or not _hour_histogram(params):
                return False
        elif kind not in BUCKETS:
            return False
        if subs and not _agg_keys(lt, subs, keys, measures):
            return False
    return True


def agg_measures(lt: LogType, aggs: Any) -> set[str]:
    """The measures a qualifying aggregation request reads (the roll-up source projects only those)."""
    keys: set[str] = set()
    measures: set[str] = set()
    _agg_keys(lt, aggs, keys, measures)
    return measures


def aggs_qualify(query: Query, aggs: Any) -> bool:
    """The one decision: can this aggregation request read roll-ups and give the raw answer exactly?"""
    keys: set[str] = set()
    return query.logtype.rollup is not None and _agg_keys(query.logtype, aggs, keys) and usable(query, keys)


def metric_sql(lt: LogType, kind: str, key: str) -> str:
    """A metric over roll-up rows, equal to the raw `kind(field)` (qualified by `aggs_qualify`)."""
    m = _measure(lt, key)
    if m is None:  # a dim: its values are the raw values; value_count weighs each group by its rows
        col = lt.query_keys()[key].sql
        if kind == "value_count":
            return f"sum(CASE WHEN {col} IS NOT NULL THEN {COUNT} END)"
        if kind == "cardinality":
            return f"count(DISTINCT {col})"
        return f"{kind}({col})::DOUBLE"
    c = quote_ident(m)
    if kind == "sum":
        return f"sum({c})::DOUBLE"
    if kind in ("min", "max"):
        return f"{kind}({quote_ident(f'{m}__{kind}')})::DOUBLE"
    if kind == "value_count":
        return f"sum({quote_ident(m + '__n')})"
    if kind == "avg":
        return f"(sum({c})::DOUBLE / sum({quote_ident(m + '__n')}))"
    raise QueryError(f"{kind} does not roll up")


# -- the source ------------------------------------------------------------------------------------------

def _full_hours(lt: LogType, query: Query) -> tuple[Any, Any] | None:
    """[lo, hi) of the hour buckets wholly inside the query's range (None = unbounded); None if none."""
    r = lt.rollup
    assert r is not None
    step = r.bucket_s
    epoch = lt.time.kind is Kind.EPOCH_S
    lo: Any = None
    hi: Any = None
    if query.start is not None:
        if epoch:  # rows have whole seconds >= int(start) (sql.py binds the bound so)
            lo = -(-int(query.start.timestamp()) // step) * step
        else:
            start = query.start.astimezone(UTC)
            floor = _floor(start, step)
            lo = floor if floor == start else floor + timedelta(seconds=step)
    if query.end is not None:
        if epoch:
            hi = (int(query.end.timestamp()) + 1) // step * step  # rows have whole seconds <= end
        else:
            hi = _floor(query.end.astimezone(UTC) + timedelta(microseconds=1), step)
    if lo is not None and hi is not None and lo >= hi:
        return None
    return lo, hi


def _floor(t: datetime, step: int) -> datetime:
    us = int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us - us % (step * 1_000_000))


def _day_bounds(lt: LogType, day: str) -> tuple[Any, Any]:
    d0 = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    d1 = d0 + timedelta(days=1)
    if lt.time.kind is Kind.EPOCH_S:
        return int(d0.timestamp()), int(d1.timestamp())
    return d0, d1


def union_source(lt: LogType, query: Query, files: list[tuple[str, Any]],
                 by_name: Callable[[list[Path]], bool] = lambda paths: True,
                 measures: Collection[str] | None = None) -> tuple[str, list[Any]] | None:
    """The relation (SQL, params) an aggregation reads instead of the raw files, or None when no file of
    `files` ((partition day, DataFile)) has a roll-up or no whole hour is in range (read raw then).
    `by_name(paths)`: whether those files' columns must be matched by name (their schemas differ), which
    costs DuckDB a statement's binding ~0.1-1 ms; by default they always are. `measures`: the only measures
    the reader needs (None: all); every dim is kept (selectors and restrictions may name any). Each column
    projected costs binding time: the flow graph's 52 columns against 24 cost ~0.5 of its ~8 ms statement."""

    def read(paths: list[Path]) -> str:
        return "read_parquet(?, union_by_name = true)" if by_name(paths) else "read_parquet(?)"

    hours = _full_hours(lt, query)
    rolled = [(d, f) for d, f in files if f.rollup is not None]
    if hours is None or not rolled:
        return None
    lo, hi = hours
    t = quote_ident(lt.time_field)
    names = ", ".join(quote_ident(n) for n in _names(lt, lt.rollup, measures))  # type: ignore[arg-type]
    raw = _raw_sql(lt, measures)
    inside = [f"{t} >= ?" for _ in [lo] if lo is not None] + [f"{t} < ?" for _ in [hi] if hi is not None]
    bounds = [b for b in (lo, hi) if b is not None]
    parts = [f"SELECT {names} FROM {read([f.rollup for _, f in rolled])}"  # noqa: S608
             + (f" WHERE {' AND '.join(inside)}" if inside else "")]
    params: list[Any] = [[str(f.rollup) for _, f in rolled], *bounds]
    plain = [f.path for _, f in files if f.rollup is None]
    if plain:
        parts.append(f"SELECT {raw} FROM {read(plain)}")  # noqa: S608
        params.append([str(p) for p in plain])
    # Rolled-up files whose day reaches past the whole hours: their rows in the partial hours, raw.
    edges = []
    for day, f in rolled:
        d0, d1 = _day_bounds(lt, day)
        if (lo is not None and d0 < lo) or (hi is not None and d1 > hi):
            edges.append(f.path)
    if edges:
        outside = " OR ".join([f"{t} < ?" for _ in [lo] if lo is not None] + [f"{t} >= ?" for _ in [hi] if hi is not None])
        parts.append(f"SELECT {raw} FROM {read(edges)} WHERE {outside}")  # noqa: S608
        params += [[str(p) for p in edges], *bounds]
    return "(" + " UNION ALL ".join(parts) + ")", params
