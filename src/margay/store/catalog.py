"""The embedded store's catalog: Parquet files per (log type, cluster, day), and safe deferred deletes.

A reader takes a snapshot (the file list at one generation); files a compaction or a drop removes from
the catalog are deleted only once no reader of an older generation is still running.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import QueryError
from .journal import apply_deletes

_NAME = re.compile(r"^(\d{16})-(\d{16})-(\d+)(?:\.g?\d+)?\.parquet$")  # never a `.rollup-<tag>.parquet` sidecar
_GROUPED = re.compile(r"\.g\d+\.parquet$")

PartKey = tuple[str, str, str]  # (log type, cluster, yyyymmdd); cluster SHARED: the day's shared files
SHARED = "_shared"  # never a cluster name (a DNS-1123 subdomain starts with a letter or digit)


@dataclass(frozen=True)
class DataFile:
    path: Path
    seq_lo: int
    seq_hi: int
    rows: int
    bytes: int
    rollup: Path | None = field(default=None, compare=False)  # its roll-up sidecar (store/rollup.py), if any
    # A shared file's rows per cluster, sorted by cluster; empty for a file of one partition.
    clusters: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @property
    def grouped(self) -> bool:
        """A group commit's file of several clusters (`<lo>-<hi>-<rows>.g<n>.parquet` in a shared folder): in
        `_seq` order as written, merged with its day's other hot files like an index's own (layout.py)."""
        return _GROUPED.search(self.path.name) is not None

    @cached_property
    def cluster_set(self) -> frozenset[str]:
        """The clusters a shared file holds rows of (empty for a file of one partition)."""
        return frozenset(c for c, _ in self.clusters)

    @cached_property
    def _rows_by_cluster(self) -> dict[str, int]:
        return dict(self.clusters)

    def rows_of(self, cluster: str) -> int:
        """Rows of `cluster` in a shared file."""
        return self._rows_by_cluster.get(cluster, 0)

    @staticmethod
    def name(seq_lo: int, seq_hi: int, rows: int) -> str:
        return f"{seq_lo:016d}-{seq_hi:016d}-{rows}.parquet"

    @classmethod
    def parse(cls, path: Path) -> DataFile | None:
        m = _NAME.match(path.name)
        if m is None:
            return None
        return cls(path, int(m.group(1)), int(m.group(2)), int(m.group(3)), path.stat().st_size)


class HeldIndices:
    """The Calico indices a catalog holds at one generation (`per_cluster`), with the clusters they name: built
    once per change of the file lists (Catalog.indices), not per request; read-only."""

    def __init__(self, parts: dict[PartKey, list[DataFile]]) -> None:
        self.held = per_cluster(parts)
        self._clusters: dict[str | None, list[str]] = {}
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()`, once for these indices (an engine's facts about them, e.g. their sizes)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def clusters(self, log_type: str | None = None) -> list[str]:
        """The clusters holding some index (of `log_type`), sorted; do not change the list returned."""
        if log_type not in self._clusters:
            self._clusters[log_type] = sorted({c for t, c, _ in self.held if log_type is None or t == log_type})
        return self._clusters[log_type]


class Catalog:
    # The indices as of a generation: every change of the file lists bumps `generation` under the lock.
    _indexed: tuple[int, HeldIndices] | None = None

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.parts: dict[PartKey, list[DataFile]] = {}
        self.generation = 0
        self._readers: dict[int, int] = {}
        self._pending: list[tuple[int, list[str]]] = []

    def part_dir(self, key: PartKey) -> Path:
        """The folder of one partition; refused unless it is a plain folder three levels inside the store.

        Names are checked at the edge (names.py); this is the last line of defence, so that no request can
        ever make the store write outside its data directory.
        """
        path = self.root / key[0] / key[1] / key[2]
        if any(not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part for part in key) \
                or path.resolve().parent.parent.parent != self.root.resolve():
            raise QueryError(f"refusing to store partition {key[0][:40]!r}/{key[1][:80]!r}/{key[2][:20]!r}: "
                             "not a valid partition name")
        return path

    def load(self) -> int:
        """Scan the store folder; returns the highest sequence number found."""
        from ..logtypes import REGISTRY
        from .rollup import current, is_sidecar, sidecar

        top = 0
        paths = set(self.root.glob("*/*/*/*.parquet"))
        for path in paths:
            f = DataFile.parse(path)
            lt = REGISTRY.get(path.parent.parent.parent.name)
            if f is None:
                if is_sidecar(path) and current(path, lt) not in paths:
                    path.unlink(missing_ok=True)  # a roll-up whose data file is gone, or of an older definition
                continue
            if lt is not None and lt.rollup is not None and sidecar(path, lt) in paths:
                f = replace(f, rollup=sidecar(path, lt))
            key = (path.parent.parent.parent.name, path.parent.parent.name, path.parent.name)
            if key[1] == SHARED:
                f = replace(f, clusters=cluster_rows(path))
            self.parts.setdefault(key, []).append(f)
            top = max(top, f.seq_hi)
        for files in self.parts.values():
            files.sort(key=lambda f: f.seq_lo)
        self.generation += 1  # an index list taken before (Catalog.indices) is stale
        return top

    def indices(self) -> HeldIndices:
        """The indices held and their clusters, rebuilt only after the file lists changed (a commit, a merge,
        a roll-up attached, a drop): an all-cluster read at 1,000 clusters no longer walks every partition."""
        with self.lock:
            indexed = self._indexed
            if indexed is None or indexed[0] != self.generation:
                indexed = self._indexed = (self.generation, HeldIndices(self.parts))
            return indexed[1]

    def add(self, key: PartKey, files: list[DataFile]) -> None:
        with self.lock:
            self.parts.setdefault(key, []).extend(files)
            self.parts[key].sort(key=lambda f: f.seq_lo)
            self.generation += 1

    def swap(self, old: dict[PartKey, list[DataFile]], new: dict[PartKey, list[DataFile]]) -> bool:
        """Replace files of several partitions at once (a merge across clusters, a shared file rewritten
        without one cluster); False, changing nothing, if any old file is no longer in the catalog."""
        with self.lock:
            if any(o not in self.parts.get(k, []) for k, fs in old.items() for o in fs):
                return False
            gone: list[DataFile] = []
            for k, fs in old.items():
                gone += [f for f in self.parts[k] if f in fs]  # the catalog's entries know their roll-ups
                self.parts[k] = [f for f in self.parts[k] if f not in fs]
            for k, fs in new.items():
                self.parts[k] = sorted(self.parts.get(k, []) + fs, key=lambda f: f.seq_lo)
            for k in [k for k, fs in self.parts.items() if not fs]:
                del self.parts[k]
            self._retire([str(p) for o in gone for p in (o.path, o.rollup) if p is not None])
            return True

    def replace(self, key: PartKey, old: list[DataFile], new: DataFile) -> bool:
        """Swap compacted files for their merge; False if the partition changed under the compaction."""
        with self.lock:
            files = self.parts.get(key)
            if files is None or any(o not in files for o in old):
                return False
            gone = [f for f in files if f in old]  # the catalog's entries know their roll-ups
            self.parts[key] = sorted([f for f in files if f not in old] + [new], key=lambda f: f.seq_lo)
            self._retire([str(p) for o in gone for p in (o.path, o.rollup) if p is not None])
            return True

    def attach(self, key: PartKey, file: DataFile, rollup: Path) -> bool:
        """Record a roll-up built for a file already in the catalog; False if the file is gone."""
        with self.lock:
            files = self.parts.get(key)
            if files is None or file not in files:
                return False
            files[files.index(file)] = replace(file, rollup=rollup)
            self.generation += 1
            return True

    def remove(self, key: PartKey) -> list[DataFile]:
        """Take a partition's files (and roll-ups) out; they are deleted by name, never with their folder,
        which a later commit may be filling again."""
        with self.lock:
            files = self.parts.pop(key, [])
            self._retire([str(p) for f in files for p in (f.path, f.rollup) if p is not None])
            return files

    def pending(self) -> int:
        """Retired files still on disk (a reader that started before their retirement is running); purges first."""
        with self.lock:
            self._purge()
            return sum(len(paths) for _, paths in self._pending)

    def retired(self) -> list[str]:
        """The retired paths still waiting for older reads to finish."""
        with self.lock:
            return [p for _, paths in self._pending for p in paths]

    def _retire(self, paths: list[str]) -> None:
        self._pending.append((self.generation, paths))
        self.generation += 1
        self._purge()

    def _purge(self) -> None:
        oldest = min(self._readers) if self._readers else None
        keep = []
        for gen, paths in self._pending:
            if oldest is None or oldest > gen:
                apply_deletes(paths)
            else:
                keep.append((gen, paths))
        self._pending = keep

    @contextmanager
    def snapshot(self) -> Iterator[dict[PartKey, list[DataFile]]]:
        """The file lists as of now; files in it stay on disk until the block ends."""
        with self.lock:
            gen = self.generation
            self._readers[gen] = self._readers.get(gen, 0) + 1
            view = {k: list(v) for k, v in self.parts.items()}
        try:
            yield view
        finally:
            with self.lock:
                self._readers[gen] -= 1
                if not self._readers[gen]:
                    del self._readers[gen]
                self._purge()


def journal_seq(entry: dict[str, Any]) -> int:
    """The highest `_seq` a journal line names: its `seq`, or the files it moves into place or deletes."""
    names = [Path(dst).name for _, dst in entry.get("moves", [])] + [Path(p).name for p in entry.get("delete", [])]
    found = [int(m.group(2)) for m in map(_NAME.match, names) if m is not None]
    return max([int(entry.get("seq", 0)), *found])


def cluster_rows(path: Path) -> tuple[tuple[str, int], ...]:
    """Rows per cluster of a shared file, from its `cluster` column (read once, when the store opens)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts = pc.value_counts(pq.read_table(path, columns=["cluster"]).column("cluster"))
    return tuple(sorted((str(c["values"]), int(c["counts"])) for c in counts.to_pylist()))


def per_cluster(parts: dict[PartKey, list[DataFile]]) -> dict[PartKey, tuple[int, list[DataFile]]]:
    """The Calico indices held: (type, cluster, day) -> (rows, the files holding some of them), shared files
    counted under each cluster they hold rows of."""
    out: dict[PartKey, tuple[int, list[DataFile]]] = {}
    for (t, c, d), files in parts.items():
        for f in files:
            for cluster, rows in f.clusters if c == SHARED else ((c, f.rows),):
                n, fs = out.get((t, cluster, d), (0, []))
                out[(t, cluster, d)] = (n + rows, [*fs, f])
    return out
