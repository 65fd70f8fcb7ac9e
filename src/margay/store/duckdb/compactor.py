"""Compaction: merging small files of a partition and writing their roll-ups, in a low-priority thread."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb

from ...durable import fsync_path
from ...ingest.parse import sql_path
from ...logtypes import REGISTRY, LogType
from .. import rollup
from ..catalog import SHARED, DataFile, PartKey
from ..journal import apply_moves
from . import memory
from .state import EngineState

log = logging.getLogger(__name__)


class Compactor(EngineState):
    """Merges files of like size per partition (tiers of x16) and builds roll-up sidecars; journaled like a commit."""

    def compact(self) -> int:
        """Merge cold indices across clusters (layout.py), files of like size in each hot partition (tiers of
        x`compact_min_files`), and build missing roll-ups; returns merges made.

        Tiered merging bounds write amplification: a record is rewritten about log_F(target / batch)
        times (F = compact_min_files) while its index is hot, and once more when it goes cold.
        """
        self.place_stranded()  # commits whose renames failed go into place first, once the disk allows
        # Cold indices (no write for a while, e.g. yesterday's) are merged across clusters into shared files
        # (layout.py); the tiers below keep the hot ones' file counts down meanwhile.
        merges, cold = self.share_cold(time.time())
        with self.catalog.lock:
            candidates = [(k, list(v)) for k, v in self.catalog.parts.items()]
        fanout = self.compact_min_files
        for key, files in candidates:
            if self._stop.is_set():
                break
            if key in cold:
                continue
            if key[1] == SHARED:  # a hot day's group commits (layout.py)
                merges += self.tier_shared(key, files, fanout)
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
            with self._working(), self.catalog.snapshot() as view:  # a drop meanwhile: its file stays to be read
                if f not in view.get(key, []):
                    continue
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
                        "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 122880, PARQUET_VERSION V2, "
                        "DICTIONARY_SIZE_LIMIT 256)",  # peers data: 1.73 -> 1.67 B/flow, no read dearer
                        [str(data)])
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
        # A snapshot keeps the inputs on disk while they are read: a drop meanwhile (retention) deleted them
        # under the COPY, which failed the whole round; now the merge gives up at its commit (inputs unlisted).
        with self._working(), self.catalog.snapshot() as view:
            if not all(f in view.get(key, []) for f in group):
                return False
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
            if not self._settle(moves):
                return False
            final_r = final_r if final_r is not None and final_r.exists() else None
            self.catalog.replace(key, group, DataFile(final, lo, hi, rows, final.stat().st_size, final_r))
        return True

    def _settle(self, moves: list[list[str]]) -> bool:
        """Rename a journaled merge's files into place (the commit lock held); True if its data file is there.

        Should a rename fail after the journal line, a data file in place keeps the change (a roll-up left out
        is built later); otherwise the change is voided: its scratch files go, so that replay moves nothing, and
        replay deletes a change's inputs only once its data file is in place (engine._recover). Left as it was,
        the catalog stayed on the inputs while replay would make the change: a data file already renamed came
        back beside the next merge of the same rows (every record twice)."""
        try:
            apply_moves(moves)
            return True
        except OSError:
            log.exception("renaming a merge into place failed")
            for src, _ in moves:
                Path(src).unlink(missing_ok=True)
            return Path(moves[0][1]).exists()

    def start_compactor(self, interval: float) -> None:
        """Run the compactor every `interval` seconds on a daemon thread, stopped by close() or at exit."""
        self._compactor = threading.Thread(target=self._compact_loop, args=(interval,), name="margay-compactor",
                                           daemon=True)
        _RUNNING.add(self)
        self._compactor.start()

    def stop_compactor(self, timeout: float) -> None:
        self._stop.set()
        self._compactor.join(timeout=timeout)
        _RUNNING.discard(self)

    def _compact_loop(self, interval: float) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
        except (AttributeError, OSError):
            pass
        while not self._stop.wait(interval):
            try:
                if self.compact():
                    self._fresh_engine()
                self.sweep_folders()
                self._trim_keys()
            except Exception:  # noqa: BLE001 - compaction is an optimisation; it retries next round
                log.exception("compaction failed")
            try:  # every round, whatever the compaction did
                self.bound_footers()
                memory.release_if_held()
            except Exception:  # noqa: BLE001 - a renewal is an optimisation too; the next round tries again
                log.exception("renewing the read engines failed")

    def _fresh_engine(self) -> None:
        """Give back what a round's merges and roll-ups left held: the compactor's DuckDB engine kept ~100 MiB
        after a cold merge that `duckdb_memory()` does not count (the query scenario's 120,000 flows, in
        process: 413 MiB RSS after compaction, 286 once the engine was closed and the allocator trimmed), and
        glibc kept what DuckDB freed. A fresh engine costs ~1 ms a round with work. A retention drop
        (layout.drop_shared) uses the engine under `_drop_lock`: the swap waits for it."""
        fresh = self.compact_engine()
        with self._drop_lock:
            old, self.compact_con = self.compact_con, fresh
        old.close()
        memory.release()

    def _trim_keys(self) -> None:
        if self.journal.size() < 64 * 1024 * 1024:
            return
        cutoff = self.clock.now().timestamp() - self.key_ttl.total_seconds()
        with self._commit_lock:
            self._keys = {k: v for k, v in self._keys.items() if v[1] >= cutoff}
            keep: list[dict[str, Any]] = [{"op": "commit", "key": k, "response": r, "ts": ts}
                                          for k, (r, ts) in self._keys.items()]
            # Files retired while a read still holds them (merged, dropped) are deleted later: their journal
            # lines go with this rewrite, so the deletes are carried over, or a crash brings them back.
            # So are the commits whose renames failed: their files wait in scratch for this line (engine._place).
            keep += [entry for entry, _, _ in self._stranded]
            retired = self.catalog.retired()
            if retired:
                keep.append({"op": "retire", "delete": retired, "ts": self.clock.now().timestamp()})
            keep.append({"op": "seq", "seq": self.head_seq()})  # never reused, even once its records are gone
            self.journal.rewrite(keep)


# Stores whose compactor runs. At interpreter exit a daemon thread still inside DuckDB when Python finalizes is
# unwound through DuckDB's C++ frames and aborts the process ("FATAL: exception not rethrown", seen once at the
# end of a test session that left stores open): so exit stops every compactor first, as close() does.
_RUNNING: weakref.WeakSet[Compactor] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for store in list(_RUNNING):
        store.stop_compactor(30)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _tier(rows: int, fanout: int) -> int:
    tier = 0
    size = 1000 * fanout
    while rows >= size:
        tier += 1
        size *= fanout
    return tier
