"""Durable file writes: fsync a file or a folder, and replace a file atomically (old or new after a crash)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file (or, opened read-only, a folder) so what was written survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a folder, making renames and new files in it durable."""
    fsync_path(path)


def atomic_write(path: Path, data: bytes, *, tmp: Path | None = None) -> None:
    """Write to a temporary file, fsync it, rename it over `path`, fsync the folder."""
    tmp = tmp or path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
