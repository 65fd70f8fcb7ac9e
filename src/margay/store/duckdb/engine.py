"""The embedded store: DuckDB as the engine over Parquet files, one folder per Calico index.

Layout: `<data>/store/<log type>/<cluster>/<yyyymmdd>/<seq_lo>-<seq_hi>-<rows>.parquet`, i.e. one folder
per (log type, cluster, day) partition: Calico's `tigera_secure_ee_<type>.<cluster>.<yyyymmdd>` index.
Ingest converts a batch to Parquet with one DuckDB COPY (no per-record Python), fsyncs it, writes one
journal line (the commit point, which also keeps the idempotency key), renames the files into place and
only then answers: an acknowledged batch survives kill -9. Batches that arrive together share one conversion
and one file per day for all their clusters (combiner.py). A background compactor merges small files so reads
stay fast, and merges cold days across clusters into shared files (layout.py). Dropping a partition deletes
its folder and rewrites the shared files holding its rows without them, so retention frees disk.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from ...clock import Clock, SystemClock
from ...durable import fsync_dir, fsync_path
from ...errors import QueryError
from ...ingest.keyscan import count_newlines
from ...ingest.parse import Converted, Converter, sql_path
from ...logtypes import LogType
from ...query.es.request import scope_plans
from ...query.graph import GraphRows, GraphSpec
from ...query.model import Query
from ...query.restriction import agg_fields
from ..backend import Aggregated, EsAnswer, EsPlan, FieldValue, GroupSpec, Partition
from ..catalog import Catalog, DataFile, PartKey, journal_seq, per_cluster
from ..journal import Journal, apply_deletes, apply_moves
from ..sql import SearchCompiler
from . import dismissals, es, graph, groups, reads
from .combiner import GROUP_BELOW, Combiner, Pending
from .dismissals import Dismissals
from .feed import Feed
from .files import _disk_bytes
from .layout import Layout
from .reader import Reader

log = logging.getLogger(__name__)

DUCKDB_CONFIG: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# Batches converted alone at once. Each is single-threaded and holds its JSON reader's buffers (~100 MiB for
# a 10,000-flow batch) until its COPY ends: more at once than cores + 1 add no records/s, only memory
# (6 at once on 2 cores peaked 373-387 MiB for the ingest scenario at 16 clients, 3 at once ~323).
CONVERSIONS = min(32, (os.cpu_count() or 1) + 1)
# The compactor's engine cap: a cold day's cross-cluster merge sorts up to `compact_target_rows` (1 M) rows
# (layout.py) and fills what it may. Under ~384 MiB DuckDB's external sort of a 1 M-flow merge falls off a
# cliff: 37-41 CPU-s at 288 or 320 MiB, 21-25 at 352, 7.7-8.4 at 384 and 448 (both data variants of the
# peers scenario; 500,000 rows cost ~4 CPU-s at 288 too). 448 keeps a margin for wider rows; a merge's peak
# RSS is ~+150 MiB over 288's (bench/results/before-after/README.md, "The peers scenario at full size").
COMPACT_MEMORY_BYTES = 448 << 20


def connect(path: Path | str = ":memory:", *, memory_bytes: int = 0,
            spill_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB engine. `memory_bytes` caps the memory it holds (0: DuckDB's default, 80% of RAM); sorts and
    aggregations past it spill to `spill_dir` (made on first spill, removed on close; without one DuckDB
    would use `.tmp` in the working directory)."""
    con = duckdb.connect(str(path), config=DUCKDB_CONFIG)
    # GLOBAL: every cursor of the engine (the readers', the feed's, the compactor's) inherits it; a plain SET
    # holds for this connection only, and a cursor would read in the process's TZ.
    con.execute("SET GLOBAL TimeZone='UTC'")
    if memory_bytes > 0:
        con.execute(f"SET memory_limit = '{int(memory_bytes)}B'")
    if spill_dir is not None:
        con.execute(f"SET temp_directory = {sql_path(spill_dir)}")
    return con


class DuckDBBackend(Reader, Feed, Layout):
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
        self._read_bytes = memory_bytes
        self._read_generation = itertools.count()
        self.con, self.small_con = self.read_engines()
        # Ingest converts on its own single-threaded engine: concurrent batches run side by side, each on
        # one core, which costs less CPU per record than sharing threads with the readers.
        # No memory cap here: each conversion reserves ~200 MiB of JSON reader buffers that it barely touches,
        # and a cap makes concurrent batches queue for it (4 at once were 6x slower under 512 MiB).
        self.ingest_con = connect(spill_dir=self.scratch / "spill-ingest")
        self.ingest_con.execute("SET threads = 1")
        # Batches converted on their own at once (each reserves its reader's buffers): the API calls ingest from
        # many threads so that small batches can wait for a group commit (api/ingest.py), so the bound is here,
        # cores + 1 (CONVERSIONS above).
        self._converting = threading.BoundedSemaphore(CONVERSIONS)
        # Runs in the compactor thread only, at low CPU priority; its cap is what a cold merge's sort takes.
        self._compact_bytes = min(memory_bytes // 2, COMPACT_MEMORY_BYTES)
        self.compact_con = self.compact_engine()
        self.catalog = Catalog(self.root)
        self.journal = Journal(self.data_dir / "journal.ndjson")
        self._keys: dict[str, tuple[dict[str, Any], float]] = {}
        self._commit_lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # reserved-but-uncommitted ranges: base -> count (see safe_seq)
        # Commits whose renames failed after their journal line (_place): (journal entry, catalog entries, base).
        self._stranded: list[tuple[dict[str, Any], list[tuple[PartKey, DataFile]], int]] = []
        self._held: set[int] = set()  # their `_seq` ranges, kept in flight until placed
        # The highest `_seq` ever given, also of records since dropped (the journal keeps it): reused, a
        # forwarder's cursor would skip new records, and a record's `_seq` id would name a deleted event's.
        self._high = 0
        self._recover()
        self._seq = max(self.catalog.load(), self._high)
        self.converter = Converter(self.ingest_con.cursor, self.scratch, compression)
        self.combiner = Combiner(self)
        self.dismissals = Dismissals(self.data_dir)
        self.deleted = Dismissals(self.data_dir, "deleted.ndjson")  # events deleted by id (Backend.delete)
        self.compiler = SearchCompiler(partial(dismissals.overlay, self.dismissals, deleted=self.deleted))
        self._counts: dict[tuple[str, bytes], int] = {}  # search totals by their SQL and files (_count)
        self._counts_lock = threading.Lock()
        self._kept: dict[Path, bool] = {}  # whether a data file has the kept-as-sent columns (_relation)
        self._schemas: dict[Path, int | None] = {}  # a data file's column names and types, hashed (_relation)
        self._spans: dict[tuple[Path, str], tuple[float, float]] = {}  # a file's time span by field (_overlaps)
        self._nulls: dict[Path, frozenset[str]] = {}  # a file's all-NULL columns (Reader._nulls_of)
        self._groups: dict[tuple[Path, tuple[str, ...]], Any] = {}  # a file's row groups, bounds (pruning.py)
        self._rollup_rows: dict[Path, int] = {}  # a roll-up file's rows (Reader._rolled_rows)
        self.committed_batches = 0
        # Compaction activity, for stats() and the metrics: merges and roll-ups made, and one being written.
        self.merges = 0
        self.rollups_built = 0
        self._busy = 0
        self._drop_lock = threading.Lock()  # one drop at a time rewrites shared files (layout.py)
        # Index folders a merge across clusters or a drop emptied (sweep_folders); at start-up, those a crash left.
        self._emptied: set[Path] = {p for p in self.root.glob("*/*/*") if (p.parent.parent.name, p.parent.name,
                                                                            p.name) not in self.catalog.parts}
        self._serial = itertools.count(time.time_ns() // 1000)  # shared files' name suffixes (layout.py)
        self._stop = threading.Event()
        self._reads_seen = self._reads = 0  # cursors made, and as of the last footer check (bound_footers)
        self.start_compactor(compact_interval)

    def read_engines(self) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
        """New read engines: every core (`memory_bytes`), and one thread for small reads (reader.py
        SMALL_READ_ROWS; on two, a ~2 ms statement pays ~0.4 ms of CPU handing work to the second thread and
        waiting for it, and is no faster; a quarter of the cap). Both keep the Parquet footers they read
        (`parquet_metadata_cache`), GLOBAL so that every cursor of the engine uses them: a plain SET held for
        the parent connection only, never for the cursors the reads run on, which re-read and decoded a 1 M-row
        file's footer (31 row groups x 72 columns) in every statement: ~3 ms of the denied page's fetch.
        The reader renews them past a bound (reader.py `bound_footers`); each pair spills to its own folder."""
        n = next(self._read_generation)
        con = connect(memory_bytes=self._read_bytes, spill_dir=self.scratch / f"spill-read-{n}")
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        small = connect(memory_bytes=self._read_bytes // 4, spill_dir=self.scratch / f"spill-small-{n}")
        small.execute("SET threads = 1")
        small.execute("SET GLOBAL parquet_metadata_cache = true")
        return con, small

    def compact_engine(self) -> duckdb.DuckDBPyConnection:
        """A new engine for the compactor: single-threaded, capped (COMPACT_MEMORY_BYTES); the compactor makes a
        fresh one after each round that merged (compactor.py: a closed engine gives back what it kept)."""
        con = connect(memory_bytes=self._compact_bytes, spill_dir=self.scratch / "spill-compact")
        con.execute("SET threads = 1")
        return con

    # -- recovery ----------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Roll every journaled change forward, forget uncommitted scratch, keep recent batch keys."""
        cutoff = self.clock.now().timestamp() - self.key_ttl.total_seconds()
        kept: list[dict[str, Any]] = []
        for entry in self.journal.entries():
            moves = entry.get("moves", [])
            apply_moves(moves)
            # A change's replaced files go only once its new file is in place: a merge whose renames failed after
            # its line was voided (compactor._settle), and its inputs stayed in use.
            if not moves or Path(moves[0][1]).exists():
                apply_deletes(entry.get("delete", []))
            self._high = max(self._high, journal_seq(entry))
            if entry.get("op") != "commit" or entry.get("ts", 0) < cutoff:
                continue
            # A batch's own commit carries its key; a group commit (combiner.py) the keys of all its batches.
            keyed = [(entry["key"], entry["response"])] if entry.get("key") else []
            for key, response in keyed + [tuple(k) for k in entry.get("keys", [])]:
                self._keys[key] = (response, entry["ts"])
                kept.append({"op": "commit", "key": key, "response": response, "ts": entry["ts"]})
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.journal.rewrite(kept + [{"op": "seq", "seq": self._high}])

    # -- writes ------------------------------------------------------------------------------------------

    def _reserve(self, n: int) -> int:
        with self._seq_lock:
            base = self._seq
            self._seq += n
            self._inflight[base] = n
            return base

    def _release(self, base: int) -> None:
        with self._seq_lock:
            if base not in self._held:  # a stranded commit's range stays until its files are placed
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
        lines = count_newlines(body) + 1
        if lines < GROUP_BELOW:  # shares one conversion and commit with the batches beside it
            grouped = self.combiner.submit(Pending(lt, cluster, body, lines, bkey, now, respond))
            if grouped is not None:
                return grouped
        with self._converting:
            return self.ingest_one(lt, cluster, body, lines, bkey=bkey, now=now, respond=respond)

    def ingest_one(self, lt: LogType, cluster: str, body: bytes, lines: int, *, bkey: str | None, now: datetime,
                   respond: Any) -> tuple[dict[str, Any], bool]:
        """Convert and commit one batch on its own."""
        base = self._reserve(lines)
        try:
            conv = self.converter.convert(lt, body, cluster=cluster, now=now, seq_base=base, newlines=lines - 1)
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
            # Committed: the key first, so that a retry is answered should a rename fail (the files then stay in
            # scratch and the journal rolls them forward on the next start), never stored a second time.
            if bkey is not None:
                self._keys[bkey] = (response, ts)
            try:
                self._place(entry, added, base)
            except BaseException:
                conv.scratch = None
                raise
            self.committed_batches += 1
        return response, False

    def _place(self, entry: dict[str, Any], added: list[tuple[PartKey, DataFile]], base: int) -> None:
        """Rename a journaled commit's files into place and list them (the commit lock held).

        Should a rename fail (a full disk making a folder), the commit is stranded: its files wait in scratch,
        its `_seq` range stays in flight (forwarders wait below it instead of moving their cursors past records
        a restart would bring back), its journal line survives rewrites (_trim_keys), and each compaction round
        tries again (place_stranded)."""
        try:
            apply_moves(entry["moves"])
        except BaseException:
            with self._seq_lock:
                self._held.add(base)
            self._stranded.append((entry, added, base))
            for folder in {Path(src).parent for src, _ in entry["moves"]}:
                with contextlib.suppress(OSError):  # its retry is answered as stored: its names must last too
                    fsync_dir(folder)
            raise
        for key, f in added:
            self.catalog.add(key, [f])

    def place_stranded(self) -> int:
        """Place the files of commits whose renames failed, once they can be; returns how many commits."""
        with self._commit_lock:
            left = []
            for entry, added, base in self._stranded:
                try:
                    apply_moves(entry["moves"])
                except OSError:
                    left.append((entry, added, base))
                    continue
                for key, f in added:
                    self.catalog.add(key, [f])
                for src, _ in entry["moves"]:  # the batch's scratch folder (its body too), kept for this
                    rel = Path(src).relative_to(self.scratch).parts
                    if len(rel) > 1:
                        shutil.rmtree(self.scratch / rel[0], ignore_errors=True)
                with self._seq_lock:
                    self._held.discard(base)
                    self._inflight.pop(base, None)
            placed = len(self._stranded) - len(left)
            self._stranded = left
        if placed:
            log.warning("placed the files of %d commit(s) whose renames had failed", placed)
        return placed

    def head_seq(self) -> int:
        """The highest `_seq` reserved so far (a forwarder that starts at `latest` begins here)."""
        with self._seq_lock:
            return self._seq

    # -- reads -------------------------------------------------------------------------------------------

    # Every read narrows the reader's restriction by the fields it names (Query.naming), here in the engine.
    def count(self, query: Query) -> int:
        return reads.count(self.run_over, query.naming())

    def aggregate(self, query: Query, aggs: dict[str, Any]) -> Aggregated:
        return reads.aggregate(self.run_over, self.run_rolled, query.naming(agg_fields(aggs)), aggs)

    def l3_flows(self, query: Query, offset: int) -> list[dict[str, Any]]:
        return reads.l3_flows(self.run_over, query.naming(), offset)

    def flow_graph(self, query: Query, spec: GraphSpec) -> GraphRows:
        return graph.flow_graph(self.run_over, self.run_rolled, query.naming(), spec)

    def distinct(self, query: Query, fields: list[str]) -> list[tuple[Any, ...]]:
        return reads.distinct(self.run_over, query.naming(fields), fields)

    def field_values(self, query: Query, field: str, prefix: str, size: int) -> list[FieldValue]:
        return reads.field_values(self.run_over, query.naming([field]), field, prefix, size)

    def groups(self, query: Query, spec: GroupSpec, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        return groups.groups(self.run_over, query.naming(spec.fields), spec, after)

    def doc(self, lt: LogType) -> str:
        return self.compiler.doc(lt)

    def _shards(self, plans: list[EsPlan]) -> int:
        parts = self.partitions()
        return sum(1 for pl in plans for c, days in pl.days.items() for p in parts
                   if p.log_type == pl.lt.name and p.cluster == c and (days is None or p.day in days))

    def es_search(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime,
                  total_as_int: bool = False) -> EsAnswer:
        plans = scope_plans(plans, body)
        return EsAnswer(200, es.search(self, plans, body, now=now, shards=self._shards(plans),
                                       total_as_int=total_as_int))

    def es_count(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime) -> EsAnswer:
        plans = scope_plans(plans, body)
        shards = self._shards(plans)
        return EsAnswer(200, {"count": es.count(self, plans, body, now=now),
                              "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}})

    def mark_dismissed(self, lt: LogType, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Documents read past the Reader (the `/es/` hits) with the overlay's dismissals marked."""
        return dismissals.mark(self.dismissals, lt, docs)

    def dismiss(self, query: Query, ids: list[str]) -> list[str]:
        from dataclasses import replace

        from ...query.selector import And, InSet

        if not query.logtype.dismissable or len(query.clusters) != 1:
            raise QueryError(f"{query.logtype.name} records cannot be dismissed (one cluster of events at a time)")
        sel = InSet("id", tuple(ids))
        found = reads.present_ids(self.run_over, replace(
            query, selector=sel if query.selector is None else And((query.selector, sel)), size=len(ids)).naming())
        ok = [i for i in ids if i in found]
        self.dismissals.add(query.clusters[0], ok, query.restriction.scoped.get(query.clusters[0]))
        return ok

    def delete(self, query: Query, ids: list[str]) -> list[str]:
        from dataclasses import replace

        from ...query.selector import And, InSet

        if not query.logtype.dismissable or len(query.clusters) != 1:
            raise QueryError(f"{query.logtype.name} records cannot be deleted (one cluster of events at a time)")
        sel = InSet("id", tuple(ids))
        found = reads.present_ids(self.run_over, replace(
            query, selector=sel if query.selector is None else And((query.selector, sel)), size=len(ids)).naming())
        ok = [i for i in ids if i in found]
        # Data files never change: the ids are logged durably and every compiled read leaves them out.
        self.deleted.add(query.clusters[0], ok, query.restriction.scoped.get(query.clusters[0]))
        return ok

    def stats(self) -> dict[str, Any]:
        with self.catalog.lock:
            files = [f for fs in self.catalog.parts.values() for f in fs]
            indices = len(per_cluster(self.catalog.parts))
        return {"backend": self.name, "path": str(self.root), "bytes": sum(_disk_bytes(f) for f in files),
                "files": len(files), "partitions": indices, "records": sum(f.rows for f in files),
                "folders": len({f.path.parent for f in files}), "retired_files": self.catalog.pending(),
                "committed_batches": self.committed_batches, "journal_bytes": self.journal.size(),
                "stranded_commits": len(self._stranded),  # journaled, their renames failed: placed later
                "merges": self.merges, "rollups_built": self.rollups_built, "compacting": self.compacting,
                "group_commits": self.combiner.groups, "grouped_batches": self.combiner.grouped}

    # -- maintenance -------------------------------------------------------------------------------------

    def drop(self, partition: Partition) -> int:
        """Drop one Calico index; returns its record count (drop_many)."""
        return self.drop_many([partition])[partition.index]

    def drop_many(self, partitions: Sequence[Partition]) -> dict[str, int]:
        """Drop Calico indices: their own folders (gone once running reads finish) and their rows in their days'
        shared files, each file rewritten once without all of them (layout.py); returns records per index."""
        keys = {(p.log_type, p.cluster, p.day): p.index for p in partitions}
        removed = dict.fromkeys(keys.values(), 0)
        with self._commit_lock:
            # Their files by name, never their folders: a batch of the same index committed after the drop lands
            # in that folder, and replaying this line on start-up (before that commit's) must not delete it.
            mine = [k for k in keys if k in self.catalog.parts]
            paths = [str(p) for k in mine for f in self.catalog.parts[k] for p in (f.path, f.rollup) if p is not None]
            if mine:
                self.journal.append({"op": "drop", "delete": paths, "ts": self.clock.now().timestamp()})
            for k in mine:
                removed[keys[k]] += sum(f.rows for f in self.catalog.remove(k))
                self._emptied.add(self.catalog.part_dir(k))
        days: dict[tuple[str, str], list[str]] = {}
        for t, cluster, day in keys:
            days.setdefault((t, day), []).append(cluster)
        for (t, day), clusters in sorted(days.items()):
            for cluster, n in self.drop_shared(t, day, clusters).items():
                removed[keys[(t, cluster, day)]] += n
        self.sweep_folders()  # the folders go once empty (now, or after the reads still holding their files)
        return removed

    def checkpoint(self) -> None:
        fsync_dir(self.root)

    def close(self) -> None:
        self.stop_compactor(60)
        self.journal.close()
        self.converter.close()
        self.ingest_con.close()
        self.compact_con.close()
        self.small_con.close()
        self.con.close()


def _batch_key(lt: LogType, cluster: str, key: str) -> str:
    return f"{cluster}/{lt.name}/{key}"


__all__ = ["DuckDBBackend", "connect", "DUCKDB_CONFIG"]
