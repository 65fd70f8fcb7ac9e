"""Per-source checkpoints in the state directory, written atomically and only after the server's ack.

A checkpoint is the position just after the last batch the server acknowledged (for a file: generation,
device, inode, offset and a fingerprint of its first bytes). Batches read but not yet acknowledged sit in
the spool, whose entries carry their own positions; the agent resumes from the newer of the two.
A save that fails (a full disk) raises OSError and changes nothing, in memory or on disk: the caller
keeps the batch spooled and tries again.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import orjson

from ..durable import fsync_dir  # noqa: F401 - fsync_dir is re-exported
from .spool import durable_write


class Checkpoints:
    """The state file `checkpoints.json`: this agent's instance id and each source's acknowledged position."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "checkpoints.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        doc: dict[str, Any] = {}
        if self.path.exists():
            doc = orjson.loads(self.path.read_bytes())
        # The instance id goes into every idempotency key, so a wiped state dir never reuses old keys.
        self.instance: str = doc.get("instance") or uuid.uuid4().hex
        self.sources: dict[str, dict[str, Any]] = doc.get("sources", {})
        self.saved = self.path.exists()
        if not self.saved:
            self.try_save()

    def try_save(self) -> bool:
        """Save if never saved yet (a full disk at the first start); True once saved."""
        if not self.saved:
            try:
                with self._lock:
                    self._save(self.sources)
                self.saved = True
            except OSError:
                return False
        return True

    def get(self, source: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self.sources.get(source)
            return dict(entry) if entry else None

    def acknowledge(self, source: str, seq: int, position: dict[str, Any], acked_at: float) -> None:
        """Record an acknowledged batch (older acks than the current one are ignored) and save."""
        with self._lock:
            current = self.sources.get(source)
            if current is not None and current.get("seq", -1) >= seq:
                return
            sources = {**self.sources, source: {"seq": seq, "position": position, "acked_at": acked_at}}
            self._save(sources)  # OSError: nothing changed
            self.sources = sources
            self.saved = True

    def max_seq(self) -> int:
        with self._lock:
            return max((s.get("seq", 0) for s in self.sources.values()), default=0)

    def _save(self, sources: dict[str, dict[str, Any]]) -> None:
        durable_write(self.path, orjson.dumps({"instance": self.instance, "sources": sources},
                                              option=orjson.OPT_INDENT_2), self.path.with_name(self.path.name + ".tmp"))
