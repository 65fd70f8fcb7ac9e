"""The bounded on-disk spool: every batch waits here, durable, from the moment it is read until it is acked.

An entry is one file: a JSON header line (source, log type, idempotency key, position after the batch, ...)
and the gzipped body, written to a temporary name, fsynced and renamed. Entries are shipped oldest first,
at most one per source at a time, so the order of each file is kept.

`<seq>.batch` has never been sent. Before an entry is sent for the first time it is sealed: renamed to
`<seq>.sent` (durably), and from then on it is always resent as it is, under its key. Entries never sent
may be coalesced first: the run of a source's oldest unsent entries, up to the maximum batch size, is
written as one sealed entry (`<seq of the first>.sent`, naming its members) before the members are
deleted, so a backlog drains in large requests while every key the server may have seen stays the same.
A write that fails (a full disk) leaves nothing behind and raises OSError for the caller to wait on.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..durable import fsync_dir

log = logging.getLogger("margay.agent")

MERGEABLE = ("application/x-ndjson", "text/plain")  # line formats: bodies concatenate; EventLists do not


def durable_write(path: Path, data: bytes, tmp: Path) -> None:
    """Write `data` to `tmp` (every byte, or OSError), fsync, rename over `path`, fsync the folder. On an
    error (ENOSPC ...) the temporary file is removed, so a full disk gets no fuller."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@dataclass
class Batch:
    """A batch of one source: whole lines (or one EventList), its key and where the source stands after it."""

    source: str
    log_type: str
    key: str
    body: bytes  # gzip-compressed
    lines: int
    position: dict[str, Any]
    content_type: str = "application/x-ndjson"
    params: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    seq: int = 0
    size: int = 0  # bytes on disk
    raw_bytes: int = 0  # bytes before compression
    sealed: bool = False  # sent at least once (or may have been): never coalesced, always resent as is
    members: list[int] = field(default_factory=list)  # a coalesced entry: the seqs it replaced

    @property
    def last_seq(self) -> int:
        """The highest seq this entry stands for (a coalesced entry: its last member's)."""
        return max([self.seq, *self.members])

    def header(self) -> dict[str, Any]:
        return {"source": self.source, "log_type": self.log_type, "key": self.key, "lines": self.lines,
                "position": self.position, "content_type": self.content_type, "params": self.params,
                "created": self.created, "seq": self.seq, "raw_bytes": self.raw_bytes, "members": self.members}


_FIELDS = ("source", "log_type", "key", "lines", "position", "content_type", "params", "created", "seq")


class Spool:
    """Durable FIFO of batches, bounded in bytes; thread-safe."""

    def __init__(self, directory: Path, max_bytes: int, first_seq: int = 1) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        self._prep: dict[str, threading.Lock] = {}  # per source: one coalescing at a time
        self.on_coalesce: Callable[[str, int], None] = lambda source, n: None
        self._entries: dict[int, Batch] = {}  # kept in seq order
        self.bytes = 0
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        found: dict[int, Batch] = {}
        replaced: set[int] = set()
        for path in sorted(self.dir.glob("*.sent")) + sorted(self.dir.glob("*.batch")):
            try:
                with path.open("rb") as fh:
                    header = orjson.loads(fh.readline())
                b = Batch(body=b"", size=path.stat().st_size, raw_bytes=int(header.get("raw_bytes") or 0),
                          sealed=path.suffix == ".sent", members=list(header.get("members") or []),
                          **{k: header[k] for k in _FIELDS})
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("spool entry %s is unreadable (%s); moved aside as .bad", path.name, exc)
                path.rename(path.with_suffix(".bad"))
                continue
            if not b.sealed and b.seq in replaced:
                path.unlink()  # coalesced into a sealed entry just before a crash
                continue
            replaced.update(m for m in b.members if m != b.seq)
            if b.seq in found and b.sealed is False:
                path.unlink()  # the first member of a coalesced entry with the same seq
                continue
            found[b.seq] = b
        for seq in sorted(found):
            self._entries[seq] = found[seq]
            self.bytes += found[seq].size
        # Never reuse a seq, not even one a coalesced entry names as a member (its file is gone): a new
        # entry with that seq would be taken for a leftover member after a crash, and deleted.
        self.next_seq = max([first_seq, *(b.last_seq + 1 for b in self._entries.values())])

    def _path(self, seq: int, sealed: bool) -> Path:
        return self.dir / f"{seq:016d}.{'sent' if sealed else 'batch'}"

    def put(self, batch: Batch) -> bool:
        """Store a batch durably; False (nothing stored) when the spool is at its bound. OSError when the
        disk is full (nothing stored either)."""
        header = orjson.dumps(batch.header() | {"seq": 0}) + b"\n"
        size = len(header) + len(batch.body) + 16
        with self._cond:
            if self.bytes + size > self.max_bytes and self._entries:
                return False
            batch.seq = self.next_seq
            self.next_seq += 1
        batch.created = batch.created or time.time()
        data = orjson.dumps(batch.header()) + b"\n" + batch.body
        final = self._path(batch.seq, False)
        durable_write(final, data, final.with_suffix(".tmp"))
        batch.size = len(data)
        batch.body = b""  # the body is read back from disk when shipped
        with self._cond:
            self._entries[batch.seq] = batch
            self.bytes += batch.size
            self._cond.notify_all()
        return True

    def has_room(self, size: int) -> bool:
        with self._cond:
            return self.bytes + size <= self.max_bytes or not self._entries

    def take(self, busy: Iterable[str], timeout: float) -> Batch | None:
        """The oldest entry whose source has nothing in flight (waits up to `timeout` for one)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                skip = set(busy)
                for b in self._entries.values():
                    if b.source not in skip:
                        return b
                    # a busy source's later entries wait behind the one in flight
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def _prep_lock(self, source: str) -> threading.Lock:
        with self._cond:
            return self._prep.setdefault(source, threading.Lock())

    def prepare(self, batch: Batch, max_raw_bytes: int) -> Batch:
        """Make `batch` ready to send (its source must be busy, i.e. owned by the caller): coalesce it with
        the source's next unsent entries up to `max_raw_bytes`, or seal it alone. OSError on a full disk;
        FileNotFoundError if it is gone. If it was coalesced meanwhile (`prefetch`), the coalesced entry."""
        with self._prep_lock(batch.source):
            with self._cond:
                current = self._entries.get(batch.seq)
            if current is None:
                raise FileNotFoundError(f"spool entry {batch.seq} is gone")
            return self._prepare(current, max_raw_bytes, alone=True)

    def prefetch(self, source: str, after: int, max_raw_bytes: int) -> Batch | None:
        """Coalesce the source's next unsent entries after seq `after` ahead of time (while the entry before
        them is in flight), when there are two or more; the coalesced entry, or None."""
        with self._prep_lock(source):
            with self._cond:
                nxt = next((b for b in self._entries.values()
                            if b.source == source and b.seq > after and not b.sealed), None)
            if nxt is None:
                return None
            out = self._prepare(nxt, max_raw_bytes, alone=False)
            return out if out.members else None

    def _prepare(self, batch: Batch, max_raw_bytes: int, alone: bool) -> Batch:
        if batch.sealed:
            return batch
        group = [batch]
        if batch.content_type in MERGEABLE:
            total = batch.raw_bytes or batch.size
            with self._cond:
                after = False
                for b in self._entries.values():
                    if b is batch:
                        after = True
                        continue
                    if not after or b.source != batch.source:
                        continue
                    if b.sealed or (b.log_type, b.content_type, b.params) != \
                            (batch.log_type, batch.content_type, batch.params):
                        break
                    size = b.raw_bytes or b.size * 8
                    if total + size > max_raw_bytes:
                        break
                    group.append(b)
                    total += size
        if len(group) == 1:
            if not alone:
                return batch
            os.rename(self._path(batch.seq, False), self._path(batch.seq, True))
            fsync_dir(self.dir)
            batch.sealed = True
            return batch
        parts: list[bytes] = []
        for i, b in enumerate(group):
            try:
                parts.append(gzip.decompress(self.body(b)))
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a damaged entry goes alone (refused)
                log.error("spool entry %d (%s) is damaged (%s); it is not coalesced", b.seq, b.source, exc)
                group = group[:i]
                break
        if len(group) <= 1:
            return self._prepare(batch, 0, alone) if alone else batch
        raw = b"".join(parts)
        merged = Batch(batch.source, batch.log_type, _merged_key(group), gzip.compress(raw, compresslevel=1),
                       sum(b.lines for b in group), group[-1].position, batch.content_type, batch.params,
                       created=batch.created, seq=batch.seq, raw_bytes=len(raw), sealed=True,
                       members=[b.seq for b in group])
        data = orjson.dumps(merged.header()) + b"\n" + merged.body
        final = self._path(merged.seq, True)
        durable_write(final, data, final.with_suffix(".tmp"))
        merged.size, merged.body = len(data), b""
        gone = {b.seq for b in group}
        with self._cond:
            entries: dict[int, Batch] = {}
            for seq, b in self._entries.items():
                if seq == merged.seq:
                    entries[seq] = merged
                elif seq not in gone:
                    entries[seq] = b
            self._entries = entries
            self.bytes += merged.size - sum(b.size for b in group)
        for b in group:
            self._path(b.seq, False).unlink(missing_ok=True)
        self.on_coalesce(merged.source, len(group))
        return merged

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def body(self, batch: Batch) -> bytes:
        with self._path(batch.seq, batch.sealed).open("rb") as fh:
            fh.readline()
            return fh.read()

    def remove(self, batch: Batch) -> None:
        self._path(batch.seq, batch.sealed).unlink(missing_ok=True)
        with self._cond:
            if self._entries.get(batch.seq) is batch:
                del self._entries[batch.seq]
                self.bytes -= batch.size
            self._cond.notify_all()

    def newest(self, source: str) -> Batch | None:
        with self._cond:
            found = None
            for b in self._entries.values():
                if b.source == source:
                    found = b
            return found

    def pending(self) -> dict[str, tuple[int, float]]:
        """source -> (batches waiting, creation time of the oldest)."""
        out: dict[str, tuple[int, float]] = {}
        with self._cond:
            for b in self._entries.values():
                n, oldest = out.get(b.source, (0, b.created))
                out[b.source] = (n + 1, min(oldest, b.created))
        return out

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)


def _merged_key(group: list[Batch]) -> str:
    text = "\x1f".join(["merged", *(b.key for b in group)])
    return hashlib.sha256(text.encode()).hexdigest()[:48]
