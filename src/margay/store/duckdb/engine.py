"""The embedded store: DuckDB as the engine over Parquet files, one folder per Calico index.

Layout: `<data>/store/<log type>/<cluster>/<yyyymmdd>/<seq_lo>-<seq_hi>-<rows>.parquet`, i.e. one folder
per (log type, cluster, day) partition: Calico's `tigera_secure_ee_<type>.<cluster>.<yyyymmdd>` index.
Ingest converts a batch to Parquet with one DuckDB COPY (no per-record Python), fsyncs it, writes one
journal line (the commit point, which also keeps the idempotency key), renames the files into place and
only then answers: an acknowledged batch survives kill -9. Dropping a partition deletes its folder, so
retention frees disk at once; a background compactor merges small files so reads stay fast.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ...clock import Clock, SystemClock
from ...durable import fsync_dir, fsync_path
from ...errors import QueryError
from ...ingest.parse import Converted, Converter, sql_path
from ...logtypes import REGISTRY, Kind, LogType, quote_ident
from ...query.graph import GraphRows, GraphSpec
from ...query.model import Query
from ...query.selector import Node
from .. import rollup
from ..backend import Aggregated, FieldValue, Partition, SearchResult
from ..catalog import Catalog, DataFile, PartKey
from ..journal import Journal, apply_deletes, apply_moves
from ..sql import SearchCompiler
from . import dismissals, graph, reads
from .dismissals import Dismissals

log = logging.getLogger(__name__)

# A search over at most this many stored rows counts its hits while it finds its first page: the count needs
# every match's sort values in memory (16 bytes or so each), a separate count statement costs 5-10 ms.
_INLINE_TOTAL_ROWS = 262_144

DUCKDB_CONFIG: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def connect(path: Path | str = ":memory:", *, memory_bytes: int = 0,
            spill_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB engine. `memory_bytes` caps the memory it holds (0: DuckDB's default, 80% of RAM); sorts and
    aggregations past it spill to `spill_dir` (made on first spill, removed on close; without one DuckDB
    would use `.tmp` in the working directory)."""
    con = duckdb.connect(str(path), config=DUCKDB_CONFIG)
    con.execute("SET TimeZone='UTC'")
    if memory_bytes > 0:
        con.execute(f"SET memory_limit = '{int(memory_bytes)}B'")
    if spill_dir is not None:
        con.execute(f"SET temp_directory = {sql_path(spill_dir)}")
    return con


class DuckDBBackend:
    """The Backend protocol on Parquet partitions read and written by an embedded DuckDB."""

    name = "duckdb"

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, key_ttl: timedelta = timedelta(days=1),
                 compact_min_files: int = 16, compact_target_rows: int = 1_000_000,
                 compact_interval: float = 5.0, compact_cold_after: float = 60.0, compression: str = "zstd",
                 memory_bytes: int = 1 << 30) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "store"
        self.scratch = self.data_dir / "scratch"
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SystemClock()
        self.key_ttl = key_ttl
        self.compact_min_files = compact_min_files
        self.compact_target_rows = compact_target_rows
        self.compact_cold_after = compact_cold_after
        # Memory: reads may hold `memory_bytes`, the compactor half of it; past that they spill to scratch (wiped
        # on start-up). Uncapped, each engine may take 80% of RAM: one cold-partition merge (a million rows,
        # sorted at ~1 KiB a row) held 1.3 GB and kept the server's RSS at 1.6 GB for its duration.
        self.con = connect(memory_bytes=memory_bytes, spill_dir=self.scratch / "spill-read")  # reads: every core
        self.con.execute("SET parquet_metadata_cache = true")
        # Ingest converts on its own single-threaded engine: concurrent batches run side by side, each on
        # one core, which costs less CPU per record than sharing threads with the readers.
        # No memory cap here: each conversion reserves ~200 MiB of JSON reader buffers that it barely touches,
        # and a cap makes concurrent batches queue for it (4 at once were 6x slower under 512 MiB).
        self.ingest_con = connect(spill_dir=self.scratch / "spill-ingest")
        self.ingest_con.execute("SET threads = 1")
        # Runs in the compactor thread only, at low CPU priority.
        self.compact_con = connect(memory_bytes=memory_bytes // 2, spill_dir=self.scratch / "spill-compact")
        self.compact_con.execute("SET threads = 1")
        self.catalog = Catalog(self.root)
        self.journal = Journal(self.data_dir / "journal.ndjson")
        self._keys: dict[str, tuple[dict[str, Any], float]] = {}
        self._commit_lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # reserved-but-uncommitted ranges: base -> count (see safe_seq)
        self._recover()
        self._seq = self.catalog.load()
        self.converter = Converter(self.ingest_con.cursor, self.scratch, compression)
        self.dismissals = Dismissals(self.data_dir)
        self.compiler = SearchCompiler(partial(dismissals.overlay, self.dismissals))
        self._counts: dict[tuple[str, bytes], int] = {}  # search totals by their SQL and files (_count)
        self._counts_lock = threading.Lock()
        self._schemas: dict[Path, int | None] = {}  # a data file's column names and types, hashed (_relation)
        self._spans: dict[tuple[Path, str], tuple[float, float]] = {}  # a file's time span by field (_overlaps)
        self.committed_batches = 0
        # Compaction activity, for stats() and the metrics: merges and roll-ups made, and one being written.
        self.merges = 0
        self.rollups_built = 0
        self._busy = 0
        self._stop = threading.Event()
        self._compactor = threading.Thread(target=self._compact_loop, args=(compact_interval,),
                                           name="margay-compactor", daemon=True)
        self._compactor.start()

    # -- recovery ----------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Roll every journaled change forward, forget uncommitted scratch, keep recent batch keys."""
        cutoff = self.clock.now().timestamp() - self.key_ttl.total_seconds()
        kept = []
        for entry in self.journal.entries():
            apply_moves(entry.get("moves", []))
            apply_deletes(entry.get("delete", []))
            if entry.get("op") == "commit" and entry.get("key") and entry.get("ts", 0) >= cutoff:
                self._keys[entry["key"]] = (entry["response"], entry["ts"])
                kept.append({"op": "commit", "key": entry["key"], "response": entry["response"], "ts": entry["ts"]})
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.journal.rewrite(kept)

    # -- writes ------------------------------------------------------------------------------------------

    def _reserve(self, n: int) -> int:
        with self._seq_lock:
            base = self._seq
            self._seq += n
            self._inflight[base] = n
            return base

    def _release(self, base: int) -> None:
        with self._seq_lock:
            self._inflight.pop(base, None)

    def safe_seq(self) -> int:
        """The safe watermark: every record with `_seq` <= this is committed (or will never exist).

        Batches reserve `_seq` ranges before conversion and may commit out of order; a reader following
        `_seq` (the forwarders) reads only up to the lowest reservation still in flight, so it never skips one.
        """
        with self._seq_lock:
            return min(self._inflight) if self._inflight else self._seq

    def seen(self, lt: LogType, cluster: str, key: str) -> dict[str, Any] | None:
        hit = self._keys.get(_batch_key(lt, cluster, key))
        return hit[0] if hit else None

    def ingest(self, lt: LogType, cluster: str, body: bytes, *, key: str | None, now: datetime,
               respond: Any) -> tuple[dict[str, Any], bool]:
        """Convert and commit one NDJSON batch. Returns (response, replayed).

        `respond(converted)` builds the response from the conversion (so it is stored with the key).
        """
        bkey = _batch_key(lt, cluster, key) if key else None
        if bkey is not None and bkey in self._keys:
            return self._keys[bkey][0], True
        base = self._reserve(body.count(b"\n") + 1)
        try:
            conv = self.converter.convert(lt, body, cluster=cluster, now=now, seq_base=base)
            try:
                response = respond(conv)
                if not conv.files and bkey is None:
                    return response, False
                for _, path, _ in conv.files:
                    fsync_path(path)
                return self._commit(lt, cluster, conv, base, bkey, response)
            finally:
                conv.discard()
        finally:
            self._release(base)  # after the catalog has the files: safe_seq never passes an unseen record

    def _commit(self, lt: LogType, cluster: str, conv: Converted, base: int, bkey: str | None,
                response: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        moves: list[list[str]] = []
        added: list[tuple[PartKey, DataFile]] = []
        for i, (day, path, rows) in enumerate(conv.files):
            key = (lt.name, cluster, day)
            # Each day's file gets its own slice of the reserved range so names never collide.
            name = DataFile.name(base + 1, base + conv.total + 1, rows)
            if i:
                name = name.replace(".parquet", f".{i}.parquet")
            final = self.catalog.part_dir(key) / name
            moves.append([str(path), str(final)])
            added.append((key, DataFile(final, base + 1, base + conv.total + 1, rows, path.stat().st_size)))
        with self._commit_lock:
            if bkey is not None and bkey in self._keys:
                return self._keys[bkey][0], True
            ts = self.clock.now().timestamp()
            entry: dict[str, Any] = {"op": "commit", "moves": moves, "ts": ts}
            if bkey is not None:
                entry["key"] = bkey
                entry["response"] = response
            self.journal.append(entry)
            apply_moves(moves)
            for key, f in added:
                self.catalog.add(key, [f])
            if bkey is not None:
                self._keys[bkey] = (response, ts)
            self.committed_batches += 1
        return response, False

    # -- reads -------------------------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self.con.cursor()
        cur.execute("SET TimeZone='UTC'")
        return cur

    def clusters(self, lt: LogType | None = None) -> list[str]:
        with self.catalog.lock:
            return sorted({k[1] for k in self.catalog.parts if lt is None or k[0] == lt.name})

    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None,
                   *, with_sizes: bool = True) -> list[Partition]:
        with self.catalog.lock:
            items = [(k, list(v)) for k, v in self.catalog.parts.items()
                     if (lt is None or k[0] == lt.name) and (clusters is None or k[1] in clusters)]
        return [Partition(k[0], k[1], k[2], sum(f.rows for f in files), sum(_disk_bytes(f) for f in files))
                for k, files in sorted(items)]

    def _data_files(self, query: Any, view: dict[PartKey, list[DataFile]]) -> list[DataFile]:
        """Files a query can touch: its types and clusters, pruned by day on the time field."""
        return [f for _, f in self._day_files(query, view)]

    def _day_files(self, query: Any, view: dict[PartKey, list[DataFile]]) -> list[tuple[str, DataFile]]:
        """(partition day, file) of the files a query can touch: by day, then by each file's time span."""
        lt: LogType = query.logtype
        by_day = query.time_key == lt.time_field
        lo = query.start.astimezone(UTC).strftime("%Y%m%d") if query.start is not None and by_day else None
        hi = query.end.astimezone(UTC).strftime("%Y%m%d") if query.end is not None and by_day else None
        names = {t.name for t in query.logtypes}
        out = [(d, f) for (t, c, d), files in sorted(view.items()) for f in files
               if t in names and c in query.clusters and (lo is None or d >= lo) and (hi is None or d <= hi)]
        if not by_day or (query.start is None and query.end is None):
            return out
        start = query.start.timestamp() if query.start is not None else float("-inf")
        end = query.end.timestamp() if query.end is not None else float("inf")
        return [(d, f) for d, f in out if self._overlaps(f, lt.time_field, start, end)]

    def _overlaps(self, f: DataFile, field: str, start: float, end: float) -> bool:
        """Whether `f` may hold a row whose `field` lies in [start, end] (epoch seconds), by the file's
        Parquet statistics (read once per file: files never change). Unknown spans overlap everything."""
        span = _file_fact(self._spans, (f.path, field), partial(_time_span, f.path, field))
        return span[1] >= start and span[0] <= end

    def _window_files(self, files: list[DataFile], query: Any, window: Any) -> list[DataFile]:
        """The files a narrow window (SearchCompiler.windows: `time >= bound` newest first, else
        `time <= bound`) can touch."""
        if window is None:
            return files
        bound = window[1][0]
        edge = bound.timestamp() if isinstance(bound, datetime) else float(bound)
        desc = self.compiler.sort_of(query)[0].descending
        lo, hi = (edge, float("inf")) if desc else (float("-inf"), edge)
        return [f for f in files if self._overlaps(f, query.time_key, lo, hi)] or files[:1]

    def read(self, query: Any, fn: Any) -> Any:
        """Run `fn(cursor, relation_sql, relation_params)` over a snapshot of the query's files."""
        with self.catalog.snapshot() as view:
            files = self._data_files(query, view)
            cur = self.cursor()
            try:
                if not files:
                    return fn(cur, None, [])
                return fn(cur, self._relation(files), [[str(f.path) for f in files]])
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()

    def search(self, query: Any) -> SearchResult:
        with self.catalog.snapshot() as view:
            files = self._data_files(query, view)
            if not files:
                return SearchResult([], 0 if query.total_hits else None)
            rel = self._relation(files)
            rel_params = [[str(f.path) for f in files]]
            rows_in = sum(f.rows for f in files)
            windows = self.compiler.windows(query, rows_in)
            whole = self.compiler.search(query, rel, rel_params)
            count_sql, count_params = self._count_sql(query, view, whole) if query.total_hits else ("", [])
            total = self._remembered(count_sql, count_params) if query.total_hits else None
            # A small input's first page counts its hits in the same pass (see SearchCompiler.search).
            inline = query.total_hits and total is None and not query.after_key and rows_in <= _INLINE_TOTAL_ROWS
            cur = self.cursor()
            try:
                for window in windows:  # narrow first: a full page there is the answer
                    counted = inline and window is None
                    if counted:
                        plan = self.compiler.search(query, rel, rel_params, window, total=True)
                    elif window is None:
                        plan = whole
                    else:  # only the files whose time span reaches into the window
                        near = self._window_files(files, query, window)
                        plan = self.compiler.search(query, self._relation(near), [[str(f.path) for f in near]], window)
                    rows = cur.execute(plan.sql, plan.params).fetchall()
                    if counted:
                        total = self._remember(count_sql, count_params, int(rows[0][-1]) if rows else 0)
                        rows = [r[:-1] for r in rows]
                    if len(rows) > query.size:
                        break
                if query.total_hits and total is None:
                    total = self._remember(count_sql, count_params,
                                           int(cur.execute(count_sql, count_params).fetchall()[0][0]))
                more = len(rows) > query.size
                rows = rows[: query.size]
                docs: dict[int, bytes] = {}
                seqs = [r[-1] for r in rows]
                if seqs:
                    lo, hi = min(seqs), max(seqs)
                    # Only the files whose sequence range can hold the page's records are opened again.
                    wanted = [f for f in files if f.seq_hi >= lo and f.seq_lo <= hi]
                    for seq, doc in cur.execute(self.compiler.fetch(query.logtype, self._relation(wanted)),
                                                [[str(f.path) for f in wanted], lo, hi, seqs]).fetchall():
                        docs[seq] = doc
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        after = {"searchFrom": list(rows[-1])} if more and rows else None
        items = [orjson.loads(docs[s]) for s in seqs if s in docs]
        if query.logtype.dismissable:
            items = dismissals.mark(self.dismissals, items)
        return SearchResult(query.restriction.withhold(query.logtype, items), total, after)

    def count(self, query: Query) -> int:
        return reads.count(self.run_over, query)

    def aggregate(self, query: Query, aggs: dict[str, Any]) -> Aggregated:
        return reads.aggregate(self.run_over, self.run_rolled, query, aggs)

    def l3_flows(self, query: Query, offset: int) -> list[dict[str, Any]]:
        return reads.l3_flows(self.run_over, query, offset)

    def flow_graph(self, query: Query, spec: GraphSpec) -> GraphRows:
        return graph.flow_graph(self.run_over, self.run_rolled, query, spec)

    def field_values(self, query: Query, field: str, prefix: str, size: int) -> list[FieldValue]:
        return reads.field_values(self.run_over, query, field, prefix, size)

    def dismiss(self, query: Query, ids: list[str]) -> list[str]:
        from dataclasses import replace

        from ...query.selector import And, InSet

        if not query.logtype.dismissable or len(query.clusters) != 1:
            raise QueryError(f"{query.logtype.name} records cannot be dismissed (one cluster of events at a time)")
        sel = InSet("id", tuple(ids))
        found = reads.present_ids(self.run_over, replace(
            query, selector=sel if query.selector is None else And((query.selector, sel)), size=len(ids)))
        ok = [i for i in ids if i in found]
        self.dismissals.add(query.clusters[0], ok)
        return ok

    def _relation(self, files: list[DataFile]) -> str:
        """`read_parquet` over `files` (one parameter): matching columns by name only when the files'
        schemas differ (files written before a registry change), which costs every statement ~1 ms."""
        schemas = {_file_fact(self._schemas, f.path, partial(_schema_id, f.path)) for f in files}
        if len(schemas) != 1 or None in schemas:  # a file pyarrow cannot read: DuckDB will say what is wrong
            return "read_parquet(?, union_by_name = true)"
        return "read_parquet(?)"

    def _count_sql(self, query: Any, view: dict[PartKey, list[DataFile]], plan: Any) -> tuple[str, list[Any]]:
        """How to count a search's hits: over roll-ups when its selector and filters name only their
        dimensions (pre-summed hours, raw rows at the edges), else over the raw rows."""
        if rollup.usable(query):
            rel = rollup.union_source(query.logtype, query, self._day_files(query, view))
            if rel is not None:
                src, params = self.compiler.source(query, rel[0], rel[1])
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

    def run_over(self, query: Any, build: Any) -> Any:
        """`build(source_sql, params)` -> list of (sql, params) is run in order; returns the last rows."""
        def run(cur: duckdb.DuckDBPyConnection, rel: str | None, rel_params: list[Any]) -> Any:
            src, params = self.compiler.source(query, rel, rel_params)
            return build(lambda sql, ps: cur.execute(sql, ps).fetchall(), src, params)

        return self.read(query, run)

    def run_rolled(self, query: Any, build: Any) -> tuple[bool, Any]:
        """Like `run_over`, over the query's roll-up source (store/rollup.py: roll-up rows of whole hours,
        raw rows elsewhere, `_count` rows each); (False, None) when no file in range has a roll-up. The
        caller decides that the question qualifies (`rollup.aggs_qualify` / `rollup.usable`)."""
        with self.catalog.snapshot() as view:
            rel = rollup.union_source(query.logtype, query, self._day_files(query, view))
            if rel is None:
                return False, None
            cur = self.cursor()
            try:
                src, params = self.compiler.source(query, rel[0], rel[1])
                return True, build(lambda sql, ps: cur.execute(sql, ps).fetchall(), src, params)
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()

    def _files_after(self, view: dict[PartKey, list[DataFile]], lt: LogType, after_seq: int, upto: int) -> list[str]:
        return [str(f.path) for (t, _, _), files in sorted(view.items()) if t == lt.name for f in files
                if f.seq_hi > after_seq and f.seq_lo <= upto]

    def records_after(self, lt: LogType, after_seq: int, limit: int, *, upto: int | None = None,
                      where: Node | None = None) -> list[dict[str, Any]]:
        """Up to `limit` documents with after_seq < `_seq` <= upto (default: the safe watermark), in `_seq` order.

        Each is the document as the API renders it plus `_seq` and `_time` (its time field in epoch
        seconds); `where` is an extra (sql, params) condition, e.g. a compiled selector.
        """
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0:
            return []
        tcol = quote_ident(lt.time_field)
        texpr = f"CAST({tcol} AS DOUBLE)" if lt.time.kind is Kind.EPOCH_S else f"epoch({tcol})"
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, upto)
            if not files:
                return []
            cur = self.cursor()
            try:
                rows = cur.execute(
                    # Rendered after the LIMIT: to_json only for the rows returned, not for every row sorted.
                    f"SELECT _seq, {texpr}, {self.compiler.doc(lt)} FROM (SELECT * FROM read_parquet(?, "  # noqa: S608
                    f"union_by_name = true) AS t WHERE _seq > ? AND _seq <= ? AND ({cond}) ORDER BY _seq LIMIT ?) AS t "
                    "ORDER BY _seq",
                    [files, after_seq, upto, *cparams, limit]).fetchall()
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        out = []
        for seq, t, doc in rows:
            d = orjson.loads(doc)
            d["_seq"], d["_time"] = seq, t
            out.append(d)
        return out

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        """(records with `_seq` > after_seq, epoch seconds the oldest of them was stored) - a forwarder's lag."""
        cond, cparams = _where_sql(lt, where)
        with self.catalog.snapshot() as view:
            files = self._files_after(view, lt, after_seq, 1 << 62)
            if not files:
                return 0, None
            cur = self.cursor()
            try:
                n, oldest = cur.execute(
                    "SELECT count(*), epoch(min(generated_time)) FROM read_parquet(?, union_by_name = true) AS t "  # noqa: S608
                    f"WHERE _seq > ? AND ({cond})", [files, after_seq, *cparams]).fetchall()[0]
            except duckdb.Error as exc:
                raise _query_error(exc) from exc
            finally:
                cur.close()
        return int(n), (float(oldest) if oldest is not None else None)

    def head_seq(self) -> int:
        """The highest `_seq` reserved so far (a forwarder that starts at `latest` begins here)."""
        with self._seq_lock:
            return self._seq

    def stats(self) -> dict[str, Any]:
        with self.catalog.lock:
            files = [f for fs in self.catalog.parts.values() for f in fs]
        return {"backend": self.name, "path": str(self.root), "bytes": sum(_disk_bytes(f) for f in files),
                "files": len(files), "partitions": len(self.catalog.parts), "records": sum(f.rows for f in files),
                "committed_batches": self.committed_batches, "journal_bytes": self.journal.size(),
                "merges": self.merges, "rollups_built": self.rollups_built, "compacting": self.compacting}

    # -- maintenance -------------------------------------------------------------------------------------

    def drop(self, partition: Partition) -> int:
        """Drop one partition (its folder goes once running reads finish); returns its record count."""
        key = (partition.log_type, partition.cluster, partition.day)
        with self._commit_lock:
            if key not in self.catalog.parts:
                return 0
            self.journal.append({"op": "drop", "delete": [str(self.catalog.part_dir(key))],
                                 "ts": self.clock.now().timestamp()})
            files = self.catalog.remove(key)
        return sum(f.rows for f in files)

    def compact(self) -> int:
        """Merge files of like size in each partition (tiers of x`compact_min_files`); returns merges made.

        Tiered merging bounds write amplification: a record is rewritten about log_F(target / batch)
        times (F = compact_min_files), while a partition keeps at most ~F files per tier.
        """
        merges = 0
        with self.catalog.lock:
            candidates = [(k, list(v)) for k, v in self.catalog.parts.items()]
        fanout = self.compact_min_files
        now = time.time()
        for key, files in candidates:
            small = [f for f in files if f.rows < self.compact_target_rows]
            if self._stop.is_set():
                break
            if len(small) >= 2 and now - max(_mtime(f.path) for f in files) > self.compact_cold_after:
                # A cold partition (no write for a while, e.g. yesterday's): merge its small files once, so
                # reads of past days open one or a few files instead of one per batch.
                group: list[DataFile] = []
                for f in small:
                    if sum(g.rows for g in group) + f.rows > self.compact_target_rows and len(group) >= 2:
                        break
                    group.append(f)
                if len(group) >= 2 and self._merge(key, group):
                    merges += 1
                continue
            tiers: dict[int, list[DataFile]] = {}
            for f in files:
                if f.rows < self.compact_target_rows // fanout:
                    tiers.setdefault(_tier(f.rows, fanout), []).append(f)
            for group in tiers.values():
                while len(group) >= fanout:
                    chunk, group = group[:fanout], group[fanout:]
                    if self._merge(key, chunk):
                        merges += 1
        merges += self.build_rollups(1000 * fanout)  # past tier 0: files that stay a while
        return merges

    def build_rollups(self, min_rows: int) -> int:
        """Write the missing roll-ups of files of `min_rows` rows or more (written before roll-ups existed,
        or when building one failed); returns how many. Smaller files get theirs when they are merged."""
        with self.catalog.lock:
            todo = [(k, f) for k, fs in self.catalog.parts.items() if REGISTRY.get(k[0]) is not None
                    and REGISTRY[k[0]].rollup is not None for f in fs if f.rollup is None and f.rows >= min_rows]
        built = 0
        for key, f in todo:
            if self._stop.is_set():
                break
            tmp = self.scratch / f"rollup-{f.seq_lo}-{f.seq_hi}-{f.rows}.parquet"
            with self._working():
                written = self._write_rollup(REGISTRY[key[0]], f.path, tmp)
            if not written:
                continue
            final = rollup.sidecar(f.path, REGISTRY[key[0]])
            with self._commit_lock:
                if f not in self.catalog.parts.get(key, []):
                    tmp.unlink(missing_ok=True)
                    continue
                self.journal.append({"op": "rollup", "moves": [[str(tmp), str(final)]],
                                     "ts": self.clock.now().timestamp()})
                apply_moves([[str(tmp), str(final)]])
                self.catalog.attach(key, f, final)
            built += 1
            self.rollups_built += 1
        return built

    def _write_rollup(self, lt: LogType, data: Path, out: Path) -> bool:
        """Roll one data file up into `out` (fsync'd); False (logged) if that fails: reads stay raw."""
        cur = self.compact_con.cursor()
        try:
            cur.execute("SET TimeZone='UTC'")
            cur.execute(f"COPY ({rollup.build_sql(lt, 'read_parquet(?)')}) TO {sql_path(out)} "
                        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)", [str(data)])
        except duckdb.Error:
            log.exception("roll-up of %s failed; its aggregations read the raw rows", data)
            out.unlink(missing_ok=True)
            return False
        finally:
            cur.close()
        fsync_path(out)
        return True

    @property
    def compacting(self) -> bool:
        return self._busy > 0

    @contextmanager
    def _working(self) -> Iterator[None]:
        """Marks a merge or roll-up being written (stats()["compacting"]); the compactor thread only."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    def _merge(self, key: PartKey, group: list[DataFile]) -> bool:
        with self._working():
            merged = self._merge_files(key, group)
        self.merges += int(merged)
        return merged

    def _merge_files(self, key: PartKey, group: list[DataFile]) -> bool:
        lo, hi, rows = min(f.seq_lo for f in group), max(f.seq_hi for f in group), sum(f.rows for f in group)
        tmp = self.scratch / f"compact-{lo}-{hi}.parquet"
        # Every file is in `_seq` order, so files whose ranges do not overlap, read in order, already are: the
        # COPY streams (a million rows: ~0.35 GB at peak, against ~1.3 GB to sort them). Overlaps need the sort.
        ordered = sorted(group, key=lambda f: f.seq_lo)
        # `seq_hi` is one past a file's last `_seq`: back-to-back batches have a.seq_hi == b.seq_lo.
        sort = "" if all(a.seq_hi <= b.seq_lo for a, b in pairwise(ordered)) else " ORDER BY _seq"
        cur = self.compact_con.cursor()
        try:
            cur.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name = true){sort}) TO {sql_path(tmp)} "  # noqa: S608
                        "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 122880)", [[str(f.path) for f in ordered]])
        finally:
            cur.close()
        fsync_path(tmp)
        final = self.catalog.part_dir(key) / DataFile.name(lo, hi, rows)
        # The merged file's roll-up is moved into place by the same journal entry (recovery keeps the pair).
        lt = REGISTRY.get(key[0])
        tmp_r = self.scratch / f"compact-{lo}-{hi}.rollup.parquet"
        has_r = lt is not None and lt.rollup is not None and self._write_rollup(lt, tmp, tmp_r)
        final_r = rollup.sidecar(final, lt) if has_r and lt is not None else None
        moves = [[str(tmp), str(final)]] + ([[str(tmp_r), str(final_r)]] if final_r is not None else [])
        with self._commit_lock:
            if final.exists() or not all(f in self.catalog.parts.get(key, []) for f in group):
                tmp.unlink(missing_ok=True)
                tmp_r.unlink(missing_ok=True)
                return False
            self.journal.append({"op": "compact", "moves": moves,
                                 "delete": [str(f.path) for f in group]
                                 + ([str(rollup.sidecar(f.path, lt)) for f in group] if lt and lt.rollup else []),
                                 "ts": self.clock.now().timestamp()})
            apply_moves(moves)
            self.catalog.replace(key, group, DataFile(final, lo, hi, rows, final.stat().st_size, final_r))
        return True

    def _compact_loop(self, interval: float) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
        except (AttributeError, OSError):
            pass
        while not self._stop.wait(interval):
            try:
                self.compact()
                self._trim_keys()
            except Exception:  # noqa: BLE001 - compaction is an optimisation; it retries next round
                log.exception("compaction failed")

    def _trim_keys(self) -> None:
        if self.journal.size() < 64 * 1024 * 1024:
            return
        cutoff = self.clock.now().timestamp() - self.key_ttl.total_seconds()
        with self._commit_lock:
            self._keys = {k: v for k, v in self._keys.items() if v[1] >= cutoff}
            self.journal.rewrite([{"op": "commit", "key": k, "response": r, "ts": ts}
                                  for k, (r, ts) in self._keys.items()])

    def checkpoint(self) -> None:
        fsync_dir(self.root)

    def close(self) -> None:
        self._stop.set()
        self._compactor.join(timeout=60)
        self.journal.close()
        self.ingest_con.close()
        self.compact_con.close()
        self.con.close()


def _where_sql(lt: LogType, where: Node | None) -> tuple[str, list[Any]]:
    if where is None:
        return "TRUE", []
    from ...query.sql import compile_selector

    return compile_selector(where, lt)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _disk_bytes(f: DataFile) -> int:
    """A data file's bytes on disk with its roll-up's (storage per record counts both)."""
    if f.rollup is None:
        return f.bytes
    try:
        return f.bytes + f.rollup.stat().st_size
    except OSError:  # retired by a compaction since the snapshot
        return f.bytes


def _tier(rows: int, fanout: int) -> int:
    tier = 0
    size = 1000 * fanout
    while rows >= size:
        tier += 1
        size *= fanout
    return tier


def _batch_key(lt: LogType, cluster: str, key: str) -> str:
    return f"{cluster}/{lt.name}/{key}"


def _file_fact(cache: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    """`cache[key]`, made once: a fact about an immutable data file. Bounded, oldest out first: files come and
    go with compaction."""
    if key not in cache:
        cache[key] = make()
        if len(cache) > 65_536:
            cache.pop(next(iter(cache)), None)
    return cache[key]


def _schema_id(path: Path) -> int | None:
    """A Parquet file's column names and types, hashed; None if pyarrow cannot read its footer."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    return hash(tuple(zip(schema.names, map(str, schema.types), strict=True)))


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


def _query_error(exc: Exception) -> QueryError:
    return QueryError(f"query failed: {str(exc).split(chr(10), 1)[0]}")


__all__ = ["DuckDBBackend", "connect", "DUCKDB_CONFIG", "time"]
