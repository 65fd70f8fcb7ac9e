"""The cold layout: a day of a log type merged across clusters into shared files, and one cluster dropped from them.

Recent data live in one folder per Calico index (type, cluster, day), written batch by batch, and in the day's
shared folder as group commits' files of many clusters (`.g<n>`, combiner.py; merged in tiers while hot). Once a
day's hot files have had no write for `compact_cold_after` seconds, they are merged with the other cold indices
of the same type and day into shared files (`<type>/_shared/<day>/`), sorted by cluster, the type's first
namespace, action, its other namespaces, aggregated names and time (`layout_sort`; a file of one row group is
not sorted), in row groups of `shared_row_group` rows: a one-cluster or one-namespace read skips the other row
groups by their min/max statistics, and costs follow rows, not the number of clusters. A shared file carries its
roll-up like any merged file (the roll-up keeps `cluster` as a dimension). Every read names its clusters
(store/sql.py: `"cluster" IN (...)` in every WHERE), so a reader of one cluster never sees another's rows.

Dropping clusters' day (retention: often every cluster of a type at once) rewrites each shared file holding any of
them once, without all of their rows, or deletes it when no other cluster remains; like a merge, the new file and
roll-up are fsync'd in scratch, one journal line per file commits the swap, and recovery rolls it forward.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import replace
from pathlib import Path

from ...durable import fsync_path
from ...ingest.parse import sql_path
from ...logtypes import REGISTRY, LogType, quote_ident
from .. import rollup
from ..catalog import SHARED, DataFile, PartKey
from .compactor import Compactor, _mtime, _tier

log = logging.getLogger(__name__)

_NAMESPACES = ("source_namespace", "dest_namespace", "client_namespace", "namespace", "objectRef.namespace")
# Aggregated endpoint names (a deployment's pods as one `name-*`): the rows of one workload pair sit together, so
# their names, IPs, labels and policies repeat in runs (peers data: -0.14 / -0.30 B/flow, sim / highcard, and the
# denied page and search no dearer).
_AGGR_NAMES = ("source_name_aggr", "src_name_aggr", "client_name_aggr", "dest_name_aggr")


def layout_sort(lt: LogType) -> list[str]:
    """Columns a shared file is sorted by: cluster, the type's first namespace, action, its other namespaces, its
    aggregated endpoint names, its time field, `_seq`."""
    cols = {f.name for f in lt.fields}
    spaces = [n for n in _NAMESPACES if n in cols]
    # Action right after the first namespace: the denied flows of a namespace sit in one run, not in one run per
    # peer namespace, so the denied page's documents are a vector or two of one row group (peers data at 2 M
    # flows: ~1-3 CPU-ms less a page, bytes the same; bench/results/before-after/README.md, "Action second").
    keys = ["cluster", *spaces[:1], *(["action"] if "action" in cols else []), *spaces[1:]]
    keys += [n for n in _AGGR_NAMES if n in cols]
    return [*keys, lt.time_field, "_seq"]


class Layout(Compactor):
    """Merges cold indices of a type and day across clusters; rewrites shared files without a dropped cluster."""

    # Chosen by measurement (bench `peers` data, docs/architecture.md): Parquet 2 pages delta-encode `_seq`, times
    # and counters that the cross-cluster sort leaves unordered (18.7 -> 15.2 B/row with level 9). Row groups of
    # 64 Ki rows: measured on stored copies rewritten both ways, a selective page paid more per row group it
    # touched than per row decoded: at 2 M flows the denied page cost ~2 CPU-ms less than with 32 Ki and the
    # store ~4 % fewer bytes; 128 Ki made it ~5 ms dearer, 16 Ki ~2 ms, and one-cluster pages of a 1,000-cluster
    # store cost the same (bench/results/before-after/README.md, "Row groups of 64 Ki rows").
    shared_row_group: int = 65_536
    shared_compression_level: int = 9
    shared_bloom: float = 0.01  # DuckDB's default false-positive ratio for its dictionary columns' bloom filters
    # A column chunk with more distinct values than this is not dictionary-encoded (nor gets a bloom filter, which
    # DuckDB writes for dictionary columns only). DuckDB's own limit (a few thousand values in a row group) let
    # names, IPs and process ids into dictionaries whose pages and bloom filters outweighed the indices they
    # saved. 256 saved more bytes but made the 3-page search ~35 % dearer (plain strings to decode); 2,048 costs no
    # read measured (bench/results/before-after/README.md, "Bytes per flow at rest").
    shared_dictionary_limit: int = 2048

    def _format(self) -> str:
        """The COPY options of a shared file (Parquet 2 pages: delta-encoded integers, times and `_seq`)."""
        return (f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {int(self.shared_compression_level)}, "
                f"ROW_GROUP_SIZE {int(self.shared_row_group)}, PARQUET_VERSION V2, "
                f"BLOOM_FILTER_FALSE_POSITIVE_RATIO {float(self.shared_bloom)}, "
                f"DICTIONARY_SIZE_LIMIT {int(self.shared_dictionary_limit)}")
    _drop_lock: threading.Lock
    _emptied: set[Path]
    _serial: Iterator[int]  # suffixes of shared files' names (_shared_name)

    def _shared_name(self, folder: Path, lo: int, hi: int, rows: int, *, grouped: bool = False) -> Path:
        """A new shared file's path. `lo-hi-rows` alone is not unique there: a group commit's files of several
        clusters share one `_seq` range, so two shared files (or one rewritten without a cluster) can get the
        same name, and a move onto a taken name is skipped while the journal deletes the old file. A suffix
        never used by this process (seeded from the clock at start) and no file's on disk makes it unique, also
        against names an earlier journal line of this run deleted (replay deletes before it moves). `grouped`
        keeps a group commit's mark (`.g`) on its file rewritten without a dropped cluster: still to be merged."""
        mark = ".g" if grouped else "."
        while True:
            path = folder / DataFile.name(lo, hi, rows).replace(".parquet", f"{mark}{next(self._serial)}.parquet")
            if not path.exists():
                return path

    def share_cold(self, now: float) -> tuple[int, set[PartKey]]:
        """Merge the files of cold indices into shared files, per (type, day); returns (merges made, the cold
        indices, left to this step rather than to the tiers).

        A day's hot files are its indices' own and its group commits' (combiner.py: one file for the clusters
        of a group's batches, in `_seq` order, `DataFile.grouped`); merged shared files join them only once 16
        small ones gathered (late data, day after day), so one late batch does not rewrite a shared file."""
        with self.catalog.lock:
            parts = {k: list(v) for k, v in self.catalog.parts.items()}
        hot: dict[tuple[str, str], list[tuple[PartKey, DataFile]]] = {}
        for key, files in parts.items():
            hot.setdefault((key[0], key[2]), []).extend(
                (key, f) for f in files if key[1] != SHARED or f.grouped)
        # A day of a type is merged once none of its hot files has had a write for a while: merged one index at
        # a time as each went cold, the clusters of a fleet would each get their own "shared" file.
        todo: dict[tuple[str, str], list[tuple[PartKey, DataFile]]] = {}
        cold: set[PartKey] = set()
        for td, items in hot.items():
            if not items or now - max(_mtime(f.path) for _, f in items) <= self.compact_cold_after:
                continue
            todo[td] = items
            cold.update(k for k, _ in items)
        merges = 0
        for (t, day), items in sorted(todo.items()):
            shared = parts.get((t, SHARED, day), [])
            small = [f for f in shared if not f.grouped and f.rows < self.compact_target_rows // self.compact_min_files]
            if len(small) >= self.compact_min_files:  # many small shared files (late data, day after day): once more
                items += [((t, SHARED, day), f) for f in small]
            for group in _groups(items, self.compact_target_rows):
                if self._stop.is_set():
                    return merges, cold
                if self._share(t, day, group):
                    merges += 1
        return merges, cold

    def tier_shared(self, key: PartKey, files: list[DataFile], fanout: int) -> int:
        """Merge a hot day's group commits' files (many clusters each) in tiers of `fanout` like sizes into shared
        files sorted as a cold one (one cluster's rows together, in a few row groups); returns merges made."""
        tiers: dict[int, list[DataFile]] = {}
        for f in files:
            if f.grouped and f.rows < self.compact_target_rows // fanout:
                tiers.setdefault(_tier(f.rows, fanout), []).append(f)
        merges = 0
        for group in tiers.values():
            while len(group) >= fanout and not self._stop.is_set():
                chunk, group = group[:fanout], group[fanout:]
                merges += int(self._share(key[0], key[2], [(key, f) for f in chunk]))
        return merges

    def _share(self, t: str, day: str, group: list[tuple[PartKey, DataFile]]) -> bool:
        lt = REGISTRY.get(t)
        if lt is None:
            return False
        old: dict[PartKey, list[DataFile]] = {}
        for key, f in group:
            old.setdefault(key, []).append(f)
        # A snapshot keeps the inputs on disk while they are read (a drop meanwhile deleted them under the COPY).
        with self._working(), self.catalog.snapshot() as view:
            if not all(f in view.get(k, []) for k, fs in old.items() for f in fs):
                return False
            written = self._write_shared(lt, day, group)
        if written is None:
            return False
        new, moves, deletes = written
        with self._commit_lock:
            if new.path.exists() or not self._present(old):
                for src, _ in moves:
                    Path(src).unlink(missing_ok=True)
                return False
            self.journal.append({"op": "share", "moves": moves, "delete": deletes, "ts": self.clock.now().timestamp()})
            if not self._settle(moves):
                return False
            if new.rollup is not None and not new.rollup.exists():
                new = replace(new, rollup=None)
            self.catalog.swap(old, {(t, SHARED, day): [new]})
            self._emptied.update(self.catalog.part_dir(k) for k in old if k[1] != SHARED)
        self.merges += 1
        return True

    def _present(self, old: dict[PartKey, list[DataFile]]) -> bool:
        with self.catalog.lock:
            return all(f in self.catalog.parts.get(k, []) for k, fs in old.items() for f in fs)

    def _write_shared(self, lt: LogType, day: str, group: list[tuple[PartKey, DataFile]]
                      ) -> tuple[DataFile, list[list[str]], list[str]] | None:
        """Write one shared file (and its roll-up) in scratch, fsync'd; (catalog entry, moves, deletes)."""
        files = [f for _, f in group]
        lo, hi, rows = min(f.seq_lo for f in files), max(f.seq_hi for f in files), sum(f.rows for f in files)
        counts: Counter[str] = Counter()
        for key, f in group:
            counts.update(dict(f.clusters) if key[1] == SHARED else {key[1]: f.rows})
        tmp = self.scratch / f"share-{lt.name}-{day}-{lo}-{hi}.parquet"
        # Sorted only when the file will hold more than one row group: statistics prune by row group, so the order
        # of one row group's rows buys no read, only ~5 % of its bytes, for ~1/3 of the merge's CPU (a fleet's hot
        # tier merges of ~64 k rows; the compactor's engine is single-threaded: row groups fill in turn).
        order = "ORDER BY " + ", ".join(quote_ident(c) for c in layout_sort(lt)) if rows > self.shared_row_group else ""
        cur = self.compact_con.cursor()
        try:
            cur.execute(f"COPY (SELECT * FROM read_parquet(?, union_by_name = true) {order}) "  # noqa: S608
                        f"TO {sql_path(tmp)} ({self._format()})",
                        [[str(f.path) for f in files]])
        except Exception:
            log.exception("merging %s of %s across clusters failed; it stays as it is", day, lt.name)
            tmp.unlink(missing_ok=True)
            return None
        finally:
            cur.close()
        fsync_path(tmp)
        final = self._shared_name(self.catalog.part_dir((lt.name, SHARED, day)), lo, hi, rows)
        moves = [[str(tmp), str(final)]]
        final_r = None
        if lt.rollup is not None:
            tmp_r = tmp.with_suffix(".rollup.parquet")
            if self._write_rollup(lt, tmp, tmp_r):
                final_r = rollup.sidecar(final, lt)
                moves.append([str(tmp_r), str(final_r)])
        deletes = [str(p) for f in files for p in (f.path, f.rollup) if p is not None]
        if lt.rollup is not None:
            deletes += [str(rollup.sidecar(f.path, lt)) for f in files]
        new = DataFile(final, lo, hi, rows, tmp.stat().st_size, final_r, tuple(sorted(counts.items())))
        return new, moves, sorted(set(deletes))

    def drop_shared(self, t: str, day: str, clusters: Collection[str]) -> Counter[str]:
        """Rewrite each shared file of (t, day) holding any of `clusters` once, without all of their rows (or
        delete it when no other cluster's rows remain); returns the rows removed per cluster. Retention expires
        a type's day for every cluster at once: one rewrite per file, not one per cluster (docs/retention.md)."""
        removed: Counter[str] = Counter()
        gone = frozenset(clusters)
        key = (t, SHARED, day)
        lt = REGISTRY.get(t)
        with self._drop_lock:
            changed = 0  # a merge may swap a file under us: read the catalog again (a few times)
            while changed < 8:
                # A snapshot keeps the file on disk while it is rewritten, should a merge retire it meanwhile.
                with self.catalog.snapshot() as view:
                    holding = [f for f in view.get(key, []) if any(c in gone for c, _ in f.clusters)]
                    if not holding:
                        return removed
                    f = holding[0]
                    written = self._without(lt, f, gone)
                with self._commit_lock:
                    if not self._present({key: [f]}):
                        for src, _ in (written[1] if written else []):
                            Path(src).unlink(missing_ok=True)
                        changed += 1
                        continue
                    new, moves = written if written else (None, [])
                    deletes = [str(p) for p in (f.path, f.rollup) if p is not None]
                    self.journal.append({"op": "unshare", "moves": moves, "delete": deletes,
                                         "ts": self.clock.now().timestamp()})
                    if moves and not self._settle(moves):
                        raise OSError(f"could not drop {len(gone)} clusters' {day} of {t}: its rewritten shared "
                                      "file could not be renamed into place")
                    if new is not None and new.rollup is not None and not new.rollup.exists():
                        new = replace(new, rollup=None)
                    self.catalog.swap({key: [f]}, {key: [new]} if new is not None else {})
                    if key not in self.catalog.parts:  # its last cluster gone: the folder goes too
                        self._emptied.add(self.catalog.part_dir(key))
                removed.update({c: n for c, n in f.clusters if c in gone})
        raise RuntimeError(f"could not drop {len(gone)} clusters' {day} of {t}: its shared files kept changing")

    def _without(self, lt: LogType | None, f: DataFile, gone: frozenset[str]
                 ) -> tuple[DataFile, list[list[str]]] | None:
        """`f` rewritten in scratch without the rows of the clusters `gone` (None when no other cluster's rows
        remain). The clusters go as one list parameter, never as SQL text."""
        rest = tuple((c, n) for c, n in f.clusters if c not in gone)
        if not rest:
            return None
        rows = sum(n for _, n in rest)
        tmp = self.scratch / f"unshare-{f.path.name}"
        cur = self.compact_con.cursor()
        try:
            cur.execute(f"COPY (SELECT * FROM read_parquet(?) WHERE NOT list_contains(?::VARCHAR[], \"cluster\")) "  # noqa: S608
                        f"TO {sql_path(tmp)} ({self._format()})", [str(f.path), sorted(gone)])
        finally:
            cur.close()
        fsync_path(tmp)
        final = self._shared_name(f.path.parent, f.seq_lo, f.seq_hi, rows, grouped=f.grouped)
        moves = [[str(tmp), str(final)]]
        final_r = None
        if lt is not None and lt.rollup is not None:
            tmp_r = tmp.with_suffix(".rollup.parquet")
            if self._write_rollup(lt, tmp, tmp_r):
                final_r = rollup.sidecar(final, lt)
                moves.append([str(tmp_r), str(final_r)])
        return DataFile(final, f.seq_lo, f.seq_hi, rows, tmp.stat().st_size, final_r, rest), moves

    def sweep_folders(self) -> None:
        """Remove the index folders a merge emptied (under the commit lock: a commit may be making one again)."""
        if not self._emptied:
            return
        with self._commit_lock:
            todo, self._emptied = self._emptied, set()
            for folder in todo:
                key = (folder.parent.parent.name, folder.parent.name, folder.name)
                if key in self.catalog.parts:
                    continue
                try:
                    folder.rmdir()  # only if empty: retired files a reader still holds keep it until next time
                except FileNotFoundError:
                    continue
                except OSError:
                    self._emptied.add(folder)
                    continue
                try:
                    folder.parent.rmdir()
                except OSError:
                    pass


def _groups(items: list[tuple[PartKey, DataFile]], cap: int) -> list[list[tuple[PartKey, DataFile]]]:
    """Inputs of one (type, day) in groups of at most `cap` rows (a bigger file alone), by cluster: one shared
    file holds whole clusters where it can."""
    out: list[list[tuple[PartKey, DataFile]]] = []
    group: list[tuple[PartKey, DataFile]] = []
    rows = 0
    for key, f in sorted(items, key=lambda kf: (kf[0][1] if kf[0][1] != SHARED else kf[1].clusters[0][0]
                                                 if kf[1].clusters else "", kf[1].seq_lo)):
        if group and rows + f.rows > cap:
            out.append(group)
            group, rows = [], 0
        group.append((key, f))
        rows += f.rows
    if group:
        out.append(group)
    return out
