"""Tailing one log file: whole lines only, through rotation by rename or copy-truncate, across restarts.

Files are followed by identity (device + inode), not by path. When the path names a new file, every file
of the rotation set (the path and its rotated siblings, see `rotated_names`) newer than the one being read
is opened at once and queued, so each is read to its end however many rotations happen before the agent
gets to it; the file being read is finished `rotate_wait` seconds after its successor appeared.

The position is (generation, device, inode, offset, fingerprint, mtime). The generation goes up each time
the tailer starts on new content (the next file, or the same inode truncated); with the agent's instance
id it makes idempotency keys unique, and (generation, start, end) makes them repeatable. The fingerprint
(a hash of the first `FP_BYTES` bytes read, i.e. whole lines, not just the timestamps that start them)
tells a truncated-and-rewritten file from the one we read, and finds the copy that copy-truncate left
behind. After a restart, the file the position points into is looked up in the rotation set; it and every
newer file are read, oldest first.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("margay.agent")

FP_BYTES = 4096
MAX_BATCHES_PER_POLL = 8
DEFAULT_ROTATED_NAMES = "{name}.*,{name}-*,{stem}-*{ext},@*.s,@*.u"
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".tmp")


@dataclass
class Position:
    gen: int
    dev: int
    ino: int
    offset: int
    fp: str  # hash of the first `fpn` bytes ("raw:<hex>" for positions written by older agents)
    fpn: int = 0
    mt: int = 0  # the file's mtime (ns) when last read: finds newer files when this one is gone

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Position | None:
        if not d or "ino" not in d:
            return None
        fp, fpn = str(d.get("fp", "")), d.get("fpn")
        if fpn is None:  # an older agent's position: the hex of the first bytes themselves
            fpn, fp = len(fp) // 2, ("raw:" + fp if fp else "")
        return cls(int(d["gen"]), int(d["dev"]), int(d["ino"]), int(d["offset"]), fp, int(fpn), int(d.get("mt", 0)))

    @property
    def ident(self) -> tuple[int, int]:
        return (self.dev, self.ino)


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


@dataclass
class Queued:
    """A newer file of the rotation set, held open until it is its turn."""

    fd: int
    dev: int
    ino: int
    found_at: float  # when it was found: the file before it was rotated then

    @property
    def ident(self) -> tuple[int, int]:
        return (self.dev, self.ino)


Drop = Callable[[str, int], None]  # (reason, count)


def fingerprint(fd: int, n: int) -> str:
    if n <= 0:
        return ""
    return hashlib.blake2b(os.pread(fd, n, 0), digest_size=16).hexdigest()


def matches(fd: int, pos: Position) -> bool:
    """Does the file open on `fd` start with the bytes `pos` was fingerprinted from?"""
    if pos.fp.startswith("raw:"):
        return os.pread(fd, pos.fpn, 0).hex() == pos.fp[4:]
    return fingerprint(fd, pos.fpn) == pos.fp


_NUM = re.compile(r"(\d+)")


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in _NUM.split(name))


class RotationSet:
    """The path and its rotated siblings (glob patterns in the same folder), oldest first, path last.

    Patterns may use {name} (flows.log), {stem} (flows) and {ext} (.log). Numbered names (flows.log.1 ...)
    are ordered by number, highest (oldest) first; other names (timestamped: flows-2026-12-05T10-00-00.000.log,
    flows.log-20261205, svlogd's @4000....s) by name; a mix, by modification time. Compressed files are skipped.
    """

    def __init__(self, path: Path, patterns: str = DEFAULT_ROTATED_NAMES) -> None:
        self.path = path
        name = path.name
        stem, ext = os.path.splitext(name)
        self.patterns = [p.strip().format(name=name, stem=stem, ext=ext) for p in patterns.split(",") if p.strip()]
        self._numbered = re.compile(re.escape(name) + r"\.(\d+)$")

    def rotated(self) -> list[str]:
        try:
            names = os.listdir(self.path.parent)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            if n == self.path.name or n.endswith(COMPRESSED):
                continue
            if any(fnmatch.fnmatchcase(n, p) for p in self.patterns):
                out.append(n)
        return out

    def entries(self) -> list[tuple[str, os.stat_result]]:
        """(path, stat) of every regular file of the set, oldest first; the path itself (if any) last."""
        found: list[tuple[str, os.stat_result]] = []
        for n in self.rotated():
            p = os.path.join(self.path.parent, n)
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            if (st.st_mode & 0o170000) == 0o100000:
                found.append((n, st))
        numbered = [self._numbered.match(n) for n, _ in found]
        if found and all(numbered):
            found.sort(key=lambda e: -int(self._numbered.match(e[0]).group(1)))  # type: ignore[union-attr]
        elif not any(numbered):
            found.sort(key=lambda e: _natural(e[0]))
        else:
            found.sort(key=lambda e: (e[1].st_mtime_ns, _natural(e[0])))
        out = [(os.path.join(self.path.parent, n), st) for n, st in found]
        try:
            st = os.stat(self.path)
            out.append((str(self.path), st))
        except FileNotFoundError:
            pass
        return out


class FileTailer:
    def __init__(self, path: Path, resume: Position | None, *, batch_bytes: int, batch_age: float,
                 rotate_wait: float, on_drop: Drop, max_line_bytes: int = 16 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic, rotated_names: str = DEFAULT_ROTATED_NAMES) -> None:
        self.path = path
        self.batch_bytes = batch_bytes
        self.batch_age = batch_age
        self.rotate_wait = rotate_wait
        self.on_drop = on_drop
        self.max_line_bytes = max(max_line_bytes, batch_bytes)
        self.clock = clock
        self.rotation = RotationSet(path, rotated_names)
        self.fd: int | None = None
        self.pos: Position | None = None
        self.queue: list[Queued] = []  # newer files, oldest first
        self._resume = resume
        self._next_gen = resume.gen + 1 if resume else 0
        self._pending_since: float | None = None
        self.size = 0  # last seen size of the file being read
        self._queued_bytes = 0
        self._copy_chunks: list[Chunk] = []
        self._rescan = False

    # -- opening -----------------------------------------------------------------------------------------

    def _start(self, fd: int) -> None:
        """Make `fd` the file being read, as a new generation from its first byte."""
        st = os.fstat(fd)
        self._close()
        self.fd = fd
        self.pos = Position(self._next_gen, st.st_dev, st.st_ino, 0, "", 0, st.st_mtime_ns)
        self._next_gen += 1
        self._pending_since = None

    def _open_path(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        self._start(fd)
        return True

    def _open_entries(self, entries: list[tuple[str, os.stat_result]], found_at: float) -> bool:
        """Queue the files of `entries` (in order); False if one was renamed under us (scan again)."""
        known = {q.ident for q in self.queue}
        if self.pos is not None:
            known.add(self.pos.ident)
        ok = True
        for name, st in entries:
            ident = (st.st_dev, st.st_ino)
            if ident in known:
                continue
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError as exc:  # renamed under us (or not readable): scan again next time
                if not isinstance(exc, FileNotFoundError):
                    log.warning("%s: %s", name, exc)
                ok = False
                continue
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != ident:
                os.close(fd)
                ok = False
                continue
            self.queue.append(Queued(fd, now.st_dev, now.st_ino, found_at))
            known.add(ident)
        return ok

    def _open_resume(self, resume: Position) -> list[Chunk]:
        """After a restart: the file we were reading, at the path or among its rotated siblings, then every
        newer file of the rotation set, in order."""
        now = self.clock()
        entries = self.rotation.entries()
        for i, (name, st) in enumerate(entries):
            if (st.st_dev, st.st_ino) != resume.ident:
                continue
            fd = os.open(name, os.O_RDONLY)  # gone meanwhile, or not readable: tried again next time
            if os.fstat(fd).st_size >= resume.offset and matches(fd, resume):
                self.fd, self.pos = fd, resume
                self._open_entries(entries[i + 1:], now - self.rotate_wait)
                return []
            os.close(fd)
            break
        copy = self._read_copy(resume, exclude=None)
        if copy is not None:
            chunks, at = copy
            self._open_entries(entries[at + 1:] if at >= 0 else [e for e in entries if e[0] == str(self.path)],
                               now - self.rotate_wait)
            return chunks
        log.warning("%s: the file read before the restart is gone (rotated away and deleted); reading the newer "
                    "files", self.path)
        self.on_drop("rotated_away", 1)
        newer = [e for e in entries if resume.mt and e[1].st_mtime_ns >= resume.mt] or \
            [e for e in entries if e[0] == str(self.path)]
        self._open_entries(newer, now - self.rotate_wait)
        return []

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> None:
        self._close()
        for q in self.queue:
            os.close(q.fd)
        self.queue = []

    # -- reading -----------------------------------------------------------------------------------------

    def poll(self) -> list[Chunk]:
        """Whole lines ready to ship: full batches at once, a partial batch once it is `batch_age` old."""
        out: list[Chunk] = []
        if self._resume is not None:
            out.extend(self._open_resume(self._resume))  # an OSError here: tried again next time
            self._resume = None
        if self.fd is None:
            if self.queue:
                self._next_file()
            elif not self._open_path():
                return out
        assert self.fd is not None and self.pos is not None
        try:
            self._check_truncated(out)
            self._discover()
            while len(out) < MAX_BATCHES_PER_POLL:
                chunk = self._read(final=bool(self.queue))
                if chunk is not None:
                    out.append(chunk)
                    continue
                if not self._finish_rotated():
                    break
        except OSError as exc:
            if not out:
                raise
            log.warning("%s: %s (after reading %d batch(es); going on next time)", self.path, exc, len(out))
        self._queued_bytes = sum(os.fstat(q.fd).st_size for q in self.queue)
        return out

    def _read(self, final: bool) -> Chunk | None:
        assert self.fd is not None and self.pos is not None
        st = os.fstat(self.fd)
        self.size = st.st_size
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
        self.pos.mt = st.st_mtime_ns
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
        if self.pos.fpn < FP_BYTES:
            self.pos.fpn = min(self.pos.offset, FP_BYTES)
            self.pos.fp = fingerprint(self.fd, self.pos.fpn)
        return Chunk(data, self.pos.gen, self.pos.dev, self.pos.ino, start, self.pos.offset, self.pos.as_dict())

    # -- rotation ----------------------------------------------------------------------------------------

    def _check_truncated(self, out: list[Chunk]) -> None:
        """Copy-truncate: the size went below our offset, or the first bytes changed."""
        assert self.fd is not None and self.pos is not None
        size = os.fstat(self.fd).st_size
        if size >= self.pos.offset and matches(self.fd, self.pos):
            return
        old = Position(**self.pos.as_dict())
        copy = self._read_copy(old, exclude=old.ident)
        if copy is not None:
            out.extend(copy[0])
        elif size < old.offset:
            log.warning("%s: truncated, and no copy holding the unread rest was found", self.path)
        log.info("%s: truncated (copy-truncate); reading it again from the start", self.path)
        self.pos = Position(self._next_gen, old.dev, old.ino, 0, "", 0, 0)
        self._next_gen += 1
        self._pending_since = None

    def _read_copy(self, old: Position, exclude: tuple[int, int] | None) -> tuple[list[Chunk], int] | None:
        """Lines past `old.offset` in the copy of the file (same first bytes) that copy-truncate made, and the
        copy's index in the rotation set; None when there is no such copy."""
        if not old.fp or old.offset == 0:
            return None
        entries = self.rotation.entries()
        for at, (name, st) in enumerate(entries):
            if name == str(self.path) or (st.st_dev, st.st_ino) == exclude or st.st_size < old.offset:
                continue
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError:
                continue
            try:
                if not matches(fd, old):
                    continue
                chunks: list[Chunk] = []
                pos = Position(**old.as_dict())
                size = os.fstat(fd).st_size
                while pos.offset < size:
                    data = os.pread(fd, min(self.batch_bytes, size - pos.offset), pos.offset)
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        data = os.pread(fd, size - pos.offset, pos.offset)
                        cut = data.rfind(b"\n")
                        if cut < 0:
                            self.on_drop("unterminated_line", 1)
                            break
                    start = pos.offset
                    pos.offset += cut + 1
                    chunks.append(Chunk(data[: cut + 1], pos.gen, pos.dev, pos.ino, start, pos.offset,
                                        pos.as_dict()))
                return chunks, at
            finally:
                os.close(fd)
        return None

    def _discover(self) -> None:
        """Rename rotation: when the path names a file we do not hold yet, queue every newer file of the
        rotation set (in order), so none is skipped however many rotations happened since the last look."""
        assert self.pos is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # renamed, and no new file yet: keep reading the old one
        ident = (st.st_dev, st.st_ino)
        if not self._rescan and (ident == self.pos.ident or any(q.ident == ident for q in self.queue)):
            return
        now = self.clock()
        for _ in range(3):
            entries = self.rotation.entries()
            idents = [(e[1].st_dev, e[1].st_ino) for e in entries]
            anchor = self.queue[-1].ident if self.queue else self.pos.ident
            if anchor in idents:
                newer = entries[idents.index(anchor) + 1:]
            else:  # the file we hold is gone from the set (deleted): what was written since we read it
                mt = os.fstat(self.queue[-1].fd if self.queue else self.fd).st_mtime_ns  # type: ignore[arg-type]
                newer = [e for e in entries if e[1].st_mtime_ns >= mt]
            if self._open_entries(newer, now):
                self._rescan = False
                return
        self._rescan = True  # names kept moving under us: look again next time

    def _finish_rotated(self) -> bool:
        """The file being read has a successor: once it is read to its end and `rotate_wait` has passed since
        the successor appeared (the writer may still append to it meanwhile), move to the next file."""
        assert self.pos is not None
        if not self.queue or self.clock() - self.queue[0].found_at < self.rotate_wait:
            return False
        if self.size > self.pos.offset:  # _read found no newline in what is left
            log.warning("%s: the rotated file ended without a newline; its last line was dropped", self.path)
            self.on_drop("unterminated_line", 1)
        self._next_file()
        return True

    def _next_file(self) -> None:
        q = self.queue.pop(0)
        self._start(q.fd)
        self.size = 0

    def lag_bytes(self) -> int:
        """Bytes not read yet: the rest of the file being read and the newer files waiting their turn."""
        return (max(0, self.size - self.pos.offset) if self.pos else 0) + self._queued_bytes
