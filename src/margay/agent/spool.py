"""The bounded on-disk spool: every batch waits here, durable, from the moment it is read until it is acked.

An entry is one file `<seq>.batch`: a JSON header line (source, log type, idempotency key, position after
the batch, ...) and the gzipped body, written to a temporary name, fsynced and renamed. Entries are
shipped oldest first, at most one per source at a time, so the order of each file is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..durable import atomic_write


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

    def header(self) -> dict[str, Any]:
        return {"source": self.source, "log_type": self.log_type, "key": self.key, "lines": self.lines,
                "position": self.position, "content_type": self.content_type, "params": self.params,
                "created": self.created, "seq": self.seq}


class Spool:
    """Durable FIFO of batches, bounded in bytes; thread-safe."""

    def __init__(self, directory: Path, max_bytes: int, first_seq: int = 1) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        self._entries: dict[int, Batch] = {}  # insertion order = seq order
        self.bytes = 0
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        for path in sorted(self.dir.glob("*.batch")):
            with path.open("rb") as fh:
                header = orjson.loads(fh.readline())
            b = Batch(body=b"", size=path.stat().st_size, **{k: header[k] for k in (
                "source", "log_type", "key", "lines", "position", "content_type", "params", "created", "seq")})
            self._entries[b.seq] = b
            self.bytes += b.size
        self.next_seq = max([first_seq, *(s + 1 for s in self._entries)])

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:016d}.batch"

    def put(self, batch: Batch) -> bool:
        """Store a batch durably; False (nothing stored) when the spool is full."""
        header = orjson.dumps(batch.header() | {"seq": 0}) + b"\n"
        size = len(header) + len(batch.body) + 16
        with self._cond:
            if self.bytes + size > self.max_bytes and self._entries:
                return False
            batch.seq = self.next_seq
            self.next_seq += 1
        batch.created = batch.created or time.time()
        data = orjson.dumps(batch.header()) + b"\n" + batch.body
        final = self._path(batch.seq)
        atomic_write(final, data, tmp=final.with_suffix(".tmp"))
        batch.size = len(data)
        body, batch.body = batch.body, b""  # the body is read back from disk when shipped
        del body
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
                blocked: set[str] = set()
                for b in self._entries.values():
                    if b.source in skip or b.source in blocked:
                        blocked.add(b.source)
                        continue
                    return b
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def body(self, batch: Batch) -> bytes:
        with self._path(batch.seq).open("rb") as fh:
            fh.readline()
            return fh.read()

    def remove(self, batch: Batch) -> None:
        self._path(batch.seq).unlink(missing_ok=True)
        with self._cond:
            if self._entries.pop(batch.seq, None) is not None:
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
