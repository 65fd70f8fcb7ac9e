"""What the parts of the embedded engine share: the attributes DuckDBBackend.__init__ sets, declared once
so that each part (reader, feed, compactor) is checked against them."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from ...clock import Clock
from ..catalog import Catalog, DataFile, PartKey
from ..journal import Journal
from ..sql import SearchCompiler
from .dismissals import Dismissals


class EngineState:
    data_dir: Path
    root: Path
    scratch: Path
    clock: Clock
    key_ttl: timedelta
    compact_min_files: int
    compact_target_rows: int
    compact_cold_after: float
    con: duckdb.DuckDBPyConnection  # reads, every core
    small_con: duckdb.DuckDBPyConnection  # reads of few rows, one thread
    ingest_con: duckdb.DuckDBPyConnection
    compact_con: duckdb.DuckDBPyConnection
    catalog: Catalog
    journal: Journal
    compiler: SearchCompiler
    dismissals: Dismissals
    deleted: Dismissals
    _keys: dict[str, tuple[dict[str, Any], float]]  # idempotency keys -> (response, stored at)
    _commit_lock: threading.Lock
    _drop_lock: threading.Lock
    _stranded: list[tuple[dict[str, Any], list[tuple[PartKey, DataFile]], int]]  # commits whose renames failed (engine.py _place)
    _counts: dict[tuple[str, bytes], int]
    _counts_lock: threading.Lock
    _schemas: dict[Path, int | None]
    _kept: dict[Path, bool]
    _spans: dict[tuple[Path, str], tuple[float, float]]
    _nulls: dict[Path, frozenset[str]]
    _groups: dict[tuple[Path, tuple[str, ...]], Any]  # pruning.py: a file's row groups and their bounds
    _rollup_rows: dict[Path, int]
    merges: int
    rollups_built: int
    _busy: int
    _stop: threading.Event
    _reads: int  # read cursors made (Reader.cursor)
    _reads_seen: int  # ... as of the last footer check (Reader.bound_footers)

    def safe_seq(self) -> int:
        raise NotImplementedError

    def head_seq(self) -> int:
        raise NotImplementedError

    def place_stranded(self) -> int:  # engine.py
        raise NotImplementedError

    def cursor(self, rows: int | None = None, files: int = 0) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def share_cold(self, now: float) -> tuple[int, set[Any]]:  # layout.py: (merges, cold PartKeys)
        raise NotImplementedError

    def tier_shared(self, key: Any, files: list[Any], fanout: int) -> int:  # layout.py: merges made
        raise NotImplementedError

    def bound_footers(self) -> bool:  # reader.py
        raise NotImplementedError

    def stop_compactor(self, timeout: float) -> None:  # compactor.py
        raise NotImplementedError

    def read_engines(self) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:  # engine.py
        raise NotImplementedError

    def compact_engine(self) -> duckdb.DuckDBPyConnection:  # engine.py
        raise NotImplementedError

    def sweep_folders(self) -> None:  # layout.py
        raise NotImplementedError
