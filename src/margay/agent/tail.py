"""Tailing one log file: whole lines only, through rotation by rename or copy-truncate, across restarts.

The position is (generation, device, inode, offset, fingerprint). The generation goes up each time the
tailer starts on new content (a new file at the path, or the same inode truncated); with the agent's
instance id it makes idempotency keys unique, and (generation, start, end) makes them repeatable.
The fingerprint (the first bytes of the file) tells a truncated-and-rewritten file from the one we read,
and finds the copy that copy-truncate left behind so the lines we had not read yet are read from it.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("margay.agent")

FP_BYTES = 64
MAX_BATCHES_PER_POLL = 8


@dataclass
class Position:
    gen: int
    dev: int
    ino: int
    offset: int
    fp: str  # hex of the first min(offset, FP_BYTES) bytes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Position | None:
        if not d or "ino" not in d:
            return None
        return cls(int(d["gen"]), int(d["dev"]), int(d["ino"]), int(d["offset"]), str(d.get("fp", "")))


@dataclass
class Chunk:
    """Whole lines read from a file: bytes [start, end) of generation `gen`."""

    data: bytes
    gen: int
    dev: int
    ino: int
    start: int
    end: int
    position: dict[str, Any]  # the position after this chunk


Drop = Callable[[str, int], None]  # (reason, count)


class FileTailer:
    def __init__(self, path: Path, resume: Position | None, *, batch_bytes: int, batch_age: float,
                 rotate_wait: float, on_drop: Drop, max_line_bytes: int = 16 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.batch_bytes = batch_bytes
        self.batch_age = batch_age
        self.rotate_wait = rotate_wait
        self.on_drop = on_drop
        self.max_line_bytes = max(max_line_bytes, batch_bytes)
        self.clock = clock
        self.fd: int | None = None
        self.pos: Position | None = None
        self._resume = resume
        self._next_gen = resume.gen + 1 if resume else 0
        self._pending_since: float | None = None
        self._rotated_at: float | None = None
        self.size = 0  # last seen size of the file being read
        self._copy_chunks: list[Chunk] = []

    # -- opening -----------------------------------------------------------------------------------------

    def _open_new(self) -> bool:
        """Start on the file now at the path (a new generation, from its first byte)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        st = os.fstat(fd)
        self._close()
        self.fd = fd
        self.pos = Position(self._next_gen, st.st_dev, st.st_ino, 0, "")
        self._next_gen += 1
        self._rotated_at = None
        return True

    def _open_resume(self, resume: Position) -> bool:
        """After a restart: the file we were reading, at the path or among its rotated siblings."""
        candidates = [str(self.path)] + sorted(glob.glob(glob.escape(str(self.path)) + "?*"))
        for name in candidates:
            try:
                st = os.stat(name)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) != (resume.dev, resume.ino):
                continue
            fd = os.open(name, os.O_RDONLY)
            if st.st_size >= resume.offset and _fingerprint(fd, len(resume.fp) // 2) == resume.fp:
                self.fd, self.pos = fd, resume
                if name != str(self.path):  # rotated while we were away: finish it, then move on
                    self._rotated_at = self.clock() - self.rotate_wait
                return True
            os.close(fd)
        if self._read_copy(resume, exclude=None):
            return False
        log.warning("%s: the file read before the restart is gone (rotated away?); starting on the current file",
                    self.path)
        self.on_drop("rotated_away", 1)
        return False

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> None:
        self._close()

    # -- reading -----------------------------------------------------------------------------------------

    def poll(self) -> list[Chunk]:
        """Whole lines ready to ship: full batches at once, a partial batch once it is `batch_age` old."""
        out: list[Chunk] = []
        if self._resume is not None:
            resume, self._resume = self._resume, None
            self._copy_chunks = []
            if not self._open_resume(resume):
                out.extend(self._copy_chunks)
                self._open_new()
            else:
                out.extend(self._copy_chunks)
        if self.fd is None and not self._open_new():
            return out
        assert self.fd is not None and self.pos is not None
        self._check_truncated(out)
        while len(out) < MAX_BATCHES_PER_POLL:
            chunk = self._read(final=self._rotated_at is not None)
            if chunk is None:
                break
            out.append(chunk)
        if not out:
            self._check_rotated()
        return out

    def _read(self, final: bool) -> Chunk | None:
        assert self.fd is not None and self.pos is not None
        self.size = os.fstat(self.fd).st_size
        avail = self.size - self.pos.offset
        if avail <= 0:
            self._pending_since = None
            return None
        now = self.clock()
        if avail < self.batch_bytes and not final:
            if self._pending_since is None:
                self._pending_since = now
            if now - self._pending_since < self.batch_age:
                return None
        data = os.pread(self.fd, min(avail, self.batch_bytes), self.pos.offset)
        cut = data.rfind(b"\n")
        if cut < 0:
            return self._long_line(avail)
        self._pending_since = None if cut + 1 == avail else now
        return self._advance(data[: cut + 1])

    def _long_line(self, avail: int) -> Chunk | None:
        """No newline within a batch: wait for the rest of the line, or skip a line past max_line_bytes."""
        assert self.fd is not None and self.pos is not None
        data = os.pread(self.fd, min(avail, self.max_line_bytes), self.pos.offset)
        cut = data.find(b"\n")
        if cut >= 0:
            return self._advance(data[: cut + 1])
        if len(data) >= self.max_line_bytes:
            log.warning("%s: a line longer than %d bytes was skipped", self.path, self.max_line_bytes)
            self.on_drop("line_too_long", 1)
            skip = len(data)
            while True:  # skip to the end of that line
                more = os.pread(self.fd, 1024 * 1024, self.pos.offset + skip)
                nl = more.find(b"\n")
                if nl >= 0:
                    skip += nl + 1
                    break
                if not more:
                    return None  # the rest of the line is not written yet; try again later
                skip += len(more)
            self.pos.offset += skip
        return None

    def _advance(self, data: bytes) -> Chunk:
        assert self.fd is not None and self.pos is not None
        start = self.pos.offset
        self.pos.offset += len(data)
        if len(self.pos.fp) < FP_BYTES * 2:
            self.pos.fp = _fingerprint(self.fd, min(self.pos.offset, FP_BYTES))
        return Chunk(data, self.pos.gen, self.pos.dev, self.pos.ino, start, self.pos.offset, self.pos.as_dict())

    # -- rotation ----------------------------------------------------------------------------------------

    def _check_truncated(self, out: list[Chunk]) -> None:
        """Copy-truncate: the size went below our offset, or the first bytes changed."""
        assert self.fd is not None and self.pos is not None
        size = os.fstat(self.fd).st_size
        if size >= self.pos.offset and _fingerprint(self.fd, len(self.pos.fp) // 2) == self.pos.fp:
            return
        old = Position(**self.pos.as_dict())
        self._copy_chunks = []
        self._read_copy(old, exclude=(old.dev, old.ino))
        out.extend(self._copy_chunks)
        log.info("%s: truncated (copy-truncate); reading it again from the start", self.path)
        self.pos = Position(self._next_gen, old.dev, old.ino, 0, "")
        self._next_gen += 1
        self._pending_since = None

    def _read_copy(self, old: Position, exclude: tuple[int, int] | None) -> bool:
        """Lines past `old.offset` in the copy of the file (same first bytes) that copy-truncate made."""
        if not old.fp or old.offset == 0:
            return False
        for name in sorted(glob.glob(glob.escape(str(self.path)) + "?*")):
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == exclude or st.st_size < old.offset:
                    continue
                if _fingerprint(fd, len(old.fp) // 2) != old.fp:
                    continue
                pos = Position(**old.as_dict())
                while pos.offset < st.st_size:
                    data = os.pread(fd, min(self.batch_bytes, st.st_size - pos.offset), pos.offset)
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        self.on_drop("unterminated_line", 1)
                        break
                    start = pos.offset
                    pos.offset += cut + 1
                    self._copy_chunks.append(Chunk(data[: cut + 1], pos.gen, pos.dev, pos.ino, start, pos.offset,
                                                   pos.as_dict()))
                return True
            finally:
                os.close(fd)
        return False

    def _check_rotated(self) -> None:
        """Rename rotation: the path now names another file (or none). Finish the old one, then switch."""
        assert self.pos is not None
        try:
            st = os.stat(self.path)
            moved = (st.st_dev, st.st_ino) != (self.pos.dev, self.pos.ino)
        except FileNotFoundError:
            moved = True
            st = None
        if not moved:
            return
        now = self.clock()
        if self._rotated_at is None:
            self._rotated_at = now  # the writer may still append to the renamed file for a moment
            return
        if now - self._rotated_at < self.rotate_wait or st is None:
            return
        if self.size > self.pos.offset:
            log.warning("%s: the rotated file ended without a newline; its last line was dropped", self.path)
            self.on_drop("unterminated_line", 1)
        self._open_new()

    def lag_bytes(self) -> int:
        return max(0, self.size - self.pos.offset) if self.pos else 0


def _fingerprint(fd: int, n: int) -> str:
    return os.pread(fd, n, 0).hex() if n > 0 else ""
