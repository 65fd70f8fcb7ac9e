"""Reads of the embedded engine: the files a query touches, searches, and SQL over them (run_over)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ...errors import QueryError
from ...logtypes import LogType, quote_ident
from ...logtypes.base import sent_columns
from ...query.model import Query
from .. import rollup
from ..backend import Partition, SearchResult
from ..catalog import SHARED, DataFile, PartKey
from ..sql import latest_relation
from . import dismissals, memory, pruning
from .files import _disk_bytes, _file_fact, _keeps_sent, _null_columns, _parquet_rows, _schema_id, _time_span
from .layout import layout_sort
from .state import EngineState

log = logging.getLogger(__name__)

# A search over at most this many stored rows counts its hits while it finds its first page: the count needs
# every match's sort values in memory (16 bytes or so each), a separate count statement costs 5-10 ms.
_INLINE_TOTAL_ROWS = 262_144
# A search over at most this many stored rows renders its page's documents in its first statement (rendering
# every match costs less than the second statement: the audit search over 116 rows, ~6.8 -> ~4.8 CPU-ms).
_ONE_PASS_ROWS = 512
# A read of at most this many stored rows runs on the one-thread engine (engine.py: small_con). On the query
# scenario's data (122k flows) each question cost less CPU and less wall time on one thread: the top DNS domains
# ~2.9 -> ~2.45 CPU-ms, the flow graph ~11 -> ~8.5, a 100-flow search over a day ~25 -> ~22. Larger reads keep
# every core (not measured here: the bound is this data's size, rounded up).
SMALL_READ_ROWS = 262_144
# What a page's document fetch counts per hit to pick its engine: pages up to 128 hits take the one-thread one.
FETCH_ROWS_PER_HIT = SMALL_READ_ROWS // 128
# The Parquet footers the read engines may keep, by DuckDB's own count (duckdb_memory(), OBJECT_CACHE), before
# the compactor renews them (bound_footers, each round). DuckDB bounds that cache only by the engine's memory
# cap, and holds between about as much as it counts (one-row-group files) and ~4.6x (2,000 files of 10 row
# groups read once each held 1.1 GB at a 256 MiB cap): so 16-75 MiB here. A settled 2 M-flow day's six files
# count ~1 MiB; files merged away stay counted until a renewal.
FOOTER_CACHE_BYTES = 16 << 20
# Files whose row-group bounds the reader keeps (pruning.py; ~0.4-1 KiB a row group): a fleet's hot files and
# a large store's day files, each read with pyarrow once.
GROUPS_CACHED = 8192
# A read over more files than this keeps none of their footers: a fleet's all-cluster question over 2,000 hot
# one-row-group files filled the one-thread engine's cache to its cap (~250 MiB, 126 KiB a file) in one read.
FOOTERS_KEPT_FILES = 64


class Reader(EngineState):
    """The Backend's read side: snapshots of the file lists, the two-phase search, `run_over`/`run_rolled`."""

    def cursor(self, rows: int | None = None, files: int = 0) -> duckdb.DuckDBPyConnection:
        """A cursor of the read engines, for a read of `rows` stored rows (None: unknown) in `files` files: the
        one-thread engine's up to SMALL_READ_ROWS. In UTC as the engines are (engine.py `connect`: SET GLOBAL; a
        statement per read cost the top DNS domains' request ~0.1 of ~2.6 ms). Over more than
        FOOTERS_KEPT_FILES files it keeps none of their footers (this cursor only)."""
        cur = (self.small_con if rows is not None and rows <= SMALL_READ_ROWS else self.con).cursor()
        self._reads += 1
        if files > FOOTERS_KEPT_FILES:
            cur.execute("SET parquet_metadata_cache = false")
        return cur

    def bound_footers(self) -> bool:
        """Renew the read engines once the footers they keep count more than FOOTER_CACHE_BYTES (the compactor
        asks each round); True if it did. Reads under way keep their engine until their cursors close: the
        old engine is dropped, not closed, and its memory goes back when the last of them ends."""
        if self._reads == self._reads_seen:  # no read since the last look: nothing new kept (and no statement)
            return False
        self._reads_seen = self._reads
        held = sum(_object_cache_bytes(con) for con in (self.con, self.small_con))
        if held <= FOOTER_CACHE_BYTES or self._stop.is_set():  # closing: close() closes the engines it finds
            return False
        self.con, self.small_con = self.read_engines()
        memory.release()  # the old engines' memory, if no read holds them
        log.info("read engines renewed: the Parquet footers they kept counted %d KiB", held >> 10)
        return True

    def clusters(self, lt: LogType | None = None) -> list[str]:
        return list(self.catalog.indices().clusters(lt.name if lt is not None else None))

    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None,
                   *, with_sizes: bool = True) -> list[Partition]:
        indices = self.catalog.indices()
        # Listed once per change of the catalog: a fleet's 4,000 indices cost ~90 CPU-ms to size.
        every: list[Partition] = indices.memo("partitions", lambda: self._partitions(indices.held))
        wanted = set(clusters) if clusters is not None else None
        return [p for p in every if (lt is None or p.log_type == lt.name) and (wanted is None or p.cluster in wanted)]

    @staticmethod
    def _partitions(held: dict[PartKey, tuple[int, list[DataFile]]]) -> list[Partition]:
        # A shared file's bytes are counted to each cluster in proportion to its rows there.
        return [Partition(k[0], k[1], k[2], rows, sum(_disk_bytes(f) if not f.clusters
                                                      else round(_disk_bytes(f) * f.rows_of(k[1]) / max(f.rows, 1))
                                                      for f in files))
                for k, (rows, files) in sorted(held.items())]

    def _data_files(self, query: Query, view: dict[PartKey, list[DataFile]]) -> list[DataFile]:
        """Files a query can touch: its types and clusters, pruned by day on the time field."""
        return [f for _, f in self._day_files(query, view)]

    def _day_files(self, query: Query, view: dict[PartKey, list[DataFile]]) -> list[tuple[str, DataFile]]:
        """(partition day, file) of the files a query can touch: by day, then by each file's time span."""
        lt: LogType = query.logtype
        # A type read as its latest records needs every file of its clusters: a record in range may be
        # superseded by one outside it (store/sql.py: latest_relation), so nothing is pruned by time.
        by_day = query.time_key == lt.time_field and not lt.latest_of
        lo = query.start.astimezone(UTC).strftime("%Y%m%d") if query.start is not None and by_day else None
        hi = query.end.astimezone(UTC).strftime("%Y%m%d") if query.end is not None and by_day else None
        names = {t.name for t in query.logtypes}
        wanted = set(query.clusters)
        # A shared file is read when it holds a row of a queried cluster; every read's WHERE names the clusters
        # (SearchCompiler.where) unless all the files' rows are of queried clusters (_covers), so the other
        # clusters' rows in it never reach an answer, nor a count.
        out = [(d, f) for (t, c, d), files in sorted(view.items()) for f in files
               if t in names and (c in wanted if c != SHARED else not f.cluster_set.isdisjoint(wanted))
               and (lo is None or d >= lo) and (hi is None or d <= hi)]
        if not by_day or (query.start is None and query.end is None):
            return out
        start = query.start.timestamp() if query.start is not None else float("-inf")
        end = query.end.timestamp() if query.end is not None else float("inf")
        return [(d, f) for d, f in out if self._overlaps(f, lt.time_field, start, end)]

    @staticmethod
    def _covers(query: Query, files: list[DataFile]) -> bool:
        """Whether every row of `files` (chosen by _day_files: a partition's files are of a queried cluster)
        belongs to a queried cluster: then the statements need no cluster condition (an all-cluster read of a
        reader allowed every cluster names none of them: 1,000 names cost every statement ~7 ms)."""
        shared = [f for f in files if f.clusters]
        if not shared:
            return True
        wanted = set(query.clusters)
        return all(f.cluster_set <= wanted for f in shared)

    def _overlaps(self, f: DataFile, field: str, start: float, end: float) -> bool:
        """Whether `f` may hold a row whose `field` lies in [start, end] (epoch seconds), by the file's
        Parquet statistics (read once per file: files never change). Unknown spans overlap everything."""
        span = _file_fact(self._spans, (f.path, field), partial(_time_span, f.path, field))
        return bool(span[1] >= start and span[0] <= end)

    def _window_files(self, files: list[DataFile], query: Query, window: Any) -> list[DataFile]:
        """The files a narrow window (SearchCompiler.windows: `time >= bound` newest first, else
        `time <= bound`) can touch."""
        if window is None:
            return files
        bound = window[1][0]
        edge = bound.timestamp() if isinstance(bound, datetime) else float(bound)
        desc = self.compiler.sort_of(query)[0].descending
        lo, hi = (edge, float("inf")) if desc else (float("-inf"), edge)
        return [f for f in files if self._overlaps(f, query.time_key, lo, hi)] or files[:1]

    def read(self, query: Query, fn: Any) -> Any:
        """Run `fn(cursor, relation_sql, relation_params, covered)` over a snapshot of the query's files
        (`covered`: see _covers)."""
        with self.catalog.snapshot() as view:
            files = self._data_files(query, view)
            cur = self.cursor(sum(f.rows for f in files), len(files))
            try:
                if not files:
                    return fn(cur, None, [], True)
                return fn(cur, self._relation(files, query.logtype), [[str(f.path) for f in files]],
                          self._covers(query, files))
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()

    def search(self, query: Query) -> SearchResult:
        query = query.naming()  # the reader's restriction narrowed by what the query names, in the engine
        with self.catalog.snapshot() as view:
            files = self._data_files(query, view)
            if not files:
                return SearchResult([], 0 if query.total_hits else None)
            rel = self._relation(files, query.logtype)
            rel_params = [[str(f.path) for f in files]]
            rows_in = sum(f.rows for f in files)
            covered = self._covers(query, files)  # and so is every subset of them
            whole = self.compiler.search(query, rel, rel_params, covered=covered)
            count_sql, count_params = self._count_sql(query, view, whole) if query.total_hits else ("", [])
            total = self._remembered(count_sql, count_params) if query.total_hits else None
            # Hits known (remembered) to fit one page: the page is every match after its key.
            few = total is not None and total <= query.size
            # A narrower window's files could miss the record that supersedes one inside it (latest_of); and a
            # window cannot fill a page (more than `size` rows) out of `size` hits or fewer: it would only miss.
            windows = [None] if query.logtype.latest_of or few else self.compiler.windows(query, rows_in)
            # A small input's first page counts its hits in the same pass (see SearchCompiler.search).
            inline = query.total_hits and total is None and not query.after_key and rows_in <= _INLINE_TOTAL_ROWS
            # A tiny input renders its documents in the same pass too: no second statement (`fetch`); so does a
            # search whose hits all fit its page, which renders no document the fetch would not (the peers'
            # denied page, 40 hits in 102k rows: ~15-25 % less CPU in-process).
            one_pass = rows_in <= _ONE_PASS_ROWS or few
            docs: dict[int, bytes] = {}
            # Its engine by the rows the row-group statistics leave it, not the rows stored (pruning.py).
            cur = self.cursor(self._touched(query, files), len(files))
            try:
                for window in windows:  # narrow first: a full page there is the answer
                    counted = inline and window is None
                    if window is None:
                        plan = (self.compiler.search(query, rel, rel_params, total=counted, docs=one_pass,
                                                     covered=covered,
                                                     nulls=self._nulls_of(files, rel) if one_pass else frozenset())
                                if counted or one_pass else whole)
                    else:  # only the files whose time span reaches into the window
                        near = self._window_files(files, query, window)
                        if len(near) == len(files):
                            # No file left out: DuckDB's own top-N filter skips the row groups outside the
                            # page as the window would, and a window that misses would cost a statement.
                            continue
                        plan = self.compiler.search(query, self._relation(near, query.logtype),
                                                    [[str(f.path) for f in near]], window, covered=covered)
                    rows = cur.execute(plan.sql, plan.params).fetchall()
                    if counted:
                        total = self._remember(count_sql, count_params, int(rows[0][-1]) if rows else 0)
                        rows = [r[:-1] for r in rows]
                    if len(rows) > query.size:
                        break
                if one_pass and window is None:
                    docs = {r[-2]: r[-1] for r in rows[: query.size]}
                    rows = [r[:-1] for r in rows]
                if query.total_hits and total is None:
                    total = self._remember(count_sql, count_params,
                                           int(cur.execute(count_sql, count_params).fetchall()[0][0]))
                more = len(rows) > query.size
                rows = rows[: query.size]
                seqs = [r[-1] for r in rows]
                if seqs and not docs:
                    lo, hi = min(seqs), max(seqs)
                    # Only the files whose sequence range can hold the page's records are opened again.
                    wanted = [f for f in files if f.seq_hi >= lo and f.seq_lo <= hi]
                    where, where_params = self.compiler.where(query, covered=covered)
                    rel_sql = self._relation(wanted, query.logtype)
                    fetch = self.compiler.fetch(query.logtype, rel_sql, where, self._nulls_of(wanted, rel_sql))
                    # The page's documents on the one-thread engine: a page of 100 is a few row groups, which
                    # two threads decode for ~15 % more CPU (a 2 M-flow day: ~16 against ~19 CPU-ms).
                    fcur = self.cursor(len(seqs) * FETCH_ROWS_PER_HIT, len(wanted))
                    try:
                        for seq, doc in fcur.execute(fetch, [[str(f.path) for f in wanted], lo, hi, seqs,
                                                             *where_params]).fetchall():
                            docs[seq] = doc
                    finally:
                        fcur.close()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        after = {"searchFrom": list(rows[-1])} if more and rows else None
        items = [orjson.loads(docs[s]) for s in seqs if s in docs]
        if query.logtype.dismissable:
            items = dismissals.mark(self.dismissals, query.logtype, items)
        return SearchResult(query.restriction.withhold(query.logtype, items), total, after)

    def _touched(self, query: Query, files: list[DataFile]) -> int:
        """The rows of `files` in row groups whose statistics do not rule the query out (pruning.py); only
        worked out where it can change the engine (more rows stored than SMALL_READ_ROWS)."""
        stored = sum(f.rows for f in files)
        if stored <= SMALL_READ_ROWS:
            return stored
        columns = pruning.pruning_columns(query.logtype, layout_sort(query.logtype))
        pins = pruning.pinned(query, columns)
        return pruning.touched(files, pins, lambda f: _file_fact(
            self._groups, (f.path, columns), partial(pruning.row_groups, f.path, columns), GROUPS_CACHED))

    def _nulls_of(self, files: list[DataFile], rel: str) -> frozenset[str]:
        """The columns NULL in every row of `files` (their Parquet null counts, read once per file), which a
        fetch renders as constants: each column DuckDB decodes costs it ~0.07 ms per row group even when all
        NULL, and a flow file's ~20 unused counters and `_extra` are ~1.4 of a page's ~12 ms fetch. Only
        over a plain `read_parquet` (one schema, every column present; no `latest_of` window)."""
        if rel != "read_parquet(?)":
            return frozenset()
        sets = [_file_fact(self._nulls, f.path, partial(_null_columns, f.path)) for f in files]
        return frozenset.intersection(*sets) if sets else frozenset()

    def _relation(self, files: list[DataFile], lt: LogType | None = None) -> str:
        """`read_parquet` over `files` (one parameter): matching columns by name only when the files'
        schemas differ (files written before a registry change), which costs every statement ~1 ms.
        Files written before values were kept as sent (no `_extra` column) get its columns as NULL. A
        `latest_of` type's relation holds only each identity's answering record (store/sql.py)."""
        rel = self._files_relation(files, lt)
        return latest_relation(lt, rel) if lt is not None and lt.latest_of else rel

    def _files_relation(self, files: list[DataFile], lt: LogType | None) -> str:
        schemas = {_file_fact(self._schemas, f.path, partial(_schema_id, f.path)) for f in files}
        if lt is not None and not all(_file_fact(self._kept, f.path, partial(_keeps_sent, f.path)) for f in files):
            nulls = ", ".join(f"CAST(NULL AS JSON) AS {quote_ident(c)}" for c in sent_columns(lt))
            return f"(SELECT * FROM read_parquet(?, union_by_name = true) UNION ALL BY NAME SELECT {nulls} WHERE false)"  # noqa: S608
        if len(schemas) != 1 or None in schemas:  # a file pyarrow cannot read: DuckDB will say what is wrong
            return "read_parquet(?, union_by_name = true)"
        return "read_parquet(?)"

    def _by_name(self, paths: list[Path]) -> bool:
        """Whether files must be read matching columns by name: their schemas differ (or one is unreadable)."""
        schemas = {_file_fact(self._schemas, p, partial(_schema_id, p)) for p in paths}
        return len(schemas) != 1 or None in schemas

    def _count_sql(self, query: Query, view: dict[PartKey, list[DataFile]], plan: Any) -> tuple[str, list[Any]]:
        """How to count a search's hits: over roll-ups when its selector and filters name only their
        dimensions (pre-summed hours, raw rows at the edges), else over the raw rows."""
        if rollup.usable(query):
            days = self._day_files(query, view)
            rel = rollup.union_source(query.logtype, query, days, self._by_name)
            if rel is not None:
                src, params = self.compiler.source(query, rel[0], rel[1], covered=self._covers(query, [f for _, f in days]))
                return f'SELECT coalesce(sum("_count"), 0) {src}', params
        return plan.count_sql, plan.count_params

    # A search's total hits, remembered by its SQL and parameters. The parameters name the files (immutable:
    # new data or a compaction makes new names), so paging through a result does not count it again while
    # its files stay the same.

    def _remembered(self, sql: str, params: list[Any]) -> int | None:
        with self._counts_lock:
            return self._counts.get((sql, orjson.dumps(params, default=str)))

    def _remember(self, sql: str, params: list[Any], total: int) -> int:
        with self._counts_lock:
            if len(self._counts) >= 256:
                self._counts.pop(next(iter(self._counts)))
            self._counts[(sql, orjson.dumps(params, default=str))] = total
        return total

    def run_over(self, query: Query, build: Any) -> Any:
        """`build(source_sql, params)` -> list of (sql, params) is run in order; returns the last rows."""
        def run(cur: duckdb.DuckDBPyConnection, rel: str | None, rel_params: list[Any], covered: bool) -> Any:
            src, params = self.compiler.source(query, rel, rel_params, covered=covered)
            return build(lambda sql, ps: cur.execute(sql, ps).fetchall(), src, params)

        return self.read(query, run)

    def _rolled_rows(self, files: list[DataFile]) -> int:
        """The rows a read over these files' roll-ups reads: a rolled-up file's roll-up rows (read once per
        file from its footer), another's own. It picks the engine (`cursor`): a day of 2 M flows is ~21,000
        roll-up rows, which the one-thread engine sums for less CPU (the flow graph ~10 %). A day's edge
        hours outside the query's whole hours are read raw and not counted: a few of its row groups."""
        return sum(f.rows if f.rollup is None else _file_fact(self._rollup_rows, f.rollup, partial(_parquet_rows, f.rollup))
                   for f in files)

    def run_rolled(self, query: Query, build: Any, measures: Collection[str] | None = None) -> tuple[bool, Any]:
        """Like `run_over`, over the query's roll-up source (store/rollup.py: roll-up rows of whole hours,
        raw rows elsewhere, `_count` rows each, only the `measures` named if any); (False, None) when no file
        in range has a roll-up. The caller decides that the question qualifies (`rollup.aggs_qualify` /
        `rollup.usable`)."""
        with self.catalog.snapshot() as view:
            days = self._day_files(query, view)
            rel = rollup.union_source(query.logtype, query, days, self._by_name, measures)
            if rel is None:
                return False, None
            cur = self.cursor(self._rolled_rows([f for _, f in days]), 2 * len(days))  # raw + roll-up
            try:
                src, params = self.compiler.source(query, rel[0], rel[1], covered=self._covers(query, [f for _, f in days]))
                return True, build(lambda sql, ps: cur.execute(sql, ps).fetchall(), src, params)
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()


def _object_cache_bytes(con: duckdb.DuckDBPyConnection) -> int:
    cur = con.cursor()
    try:
        row = cur.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'OBJECT_CACHE'").fetchone()
    finally:
        cur.close()
    return int(row[0]) if row else 0


def _query_error(exc: Exception) -> QueryError:
    return QueryError(f"query failed: {str(exc).split(chr(10), 1)[0]}")


