"""The store's journal: an fsync'd log of commits that makes multi-file changes atomic.

A commit is durable once its journal line is on disk; its files are then renamed into place. After a
crash, replay rolls every journaled change forward (renames what is still in scratch, deletes what a
compaction or a drop replaced), and the idempotency keys of acknowledged batches come back with it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import orjson

from ..durable import fsync_dir


def apply_moves(moves: list[list[str]]) -> None:
    """Rename scratch files into place; a move already done (or whose source is gone) is skipped."""
    parents = set()
    for src, dst in moves:
        s, d = Path(src), Path(dst)
        if s.exists() and not d.exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            os.replace(s, d)
            parents.add(d.parent)
    for parent in parents:
        fsync_dir(parent)


def apply_deletes(paths: list[str]) -> None:
    for p in paths:
        path = Path(p)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class Journal:
    """Append-only JSON lines: {"op": "commit"|"compact"|"drop", ...}; each append is fsync'd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the store's lifetime
        self._good = self._fh.tell()  # the end of the last line known to be on disk

    def append(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            try:
                self._fh.write(line)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError:
                self._reset()  # a full disk: the line must not reach the file with a later append
                raise
            self._good += len(line)

    def _reset(self) -> None:
        """Drop what a failed append left in the buffer or on disk, so the journal ends at its last good line."""
        try:
            self._fh.close()
        except OSError:
            pass
        if self.path.is_file():
            try:
                os.truncate(self.path, self._good)
            except OSError:
                pass
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the store's lifetime

    def entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.path.exists():
            return out
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a torn last write: never acknowledged
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    break
        return out

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def rewrite(self, keep: list[dict[str, Any]]) -> None:
        """Replace the journal with `keep` (all earlier changes are already applied)."""
        tmp = self.path.with_suffix(".rewrite")
        with open(tmp, "wb") as fh:
            for entry in keep:
                fh.write(orjson.dumps(entry) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        with self._lock:
            self._fh.close()
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            self._fh = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        with self._lock:
            self._fh.close()
