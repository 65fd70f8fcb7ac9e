"""A store's durable cursor: per log type, the highest `_seq` the destination has acknowledged.

One small JSON file per store under `<data>/forward/`, replaced atomically (write, fsync, rename, fsync
the folder), so after a crash it holds either the old or the new positions, never a torn file.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from ..durable import atomic_write


class Cursor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions: dict[str, int] = {}
        if path.exists():
            data = orjson.loads(path.read_bytes())
            self.positions = {k: int(v) for k, v in data.get("positions", {}).items()}

    @classmethod
    def for_store(cls, data_dir: Path, store: str) -> Cursor:
        return cls(Path(data_dir) / "forward" / f"{store}.cursor.json")

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def get(self, log_type: str) -> int | None:
        return self.positions.get(log_type)

    def advance(self, log_type: str, seq: int) -> None:
        """Move one type's position forward and make it durable before returning."""
        if seq <= self.positions.get(log_type, -1):
            return
        self.positions[log_type] = seq
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, orjson.dumps({"positions": self.positions}), tmp=self.path.with_suffix(".tmp"))
