"""Memory the compactor frees goes back to the system (store/duckdb/memory.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from pathlib import Path

import duckdb
import pytest

from margay.store.duckdb import DuckDBBackend, memory

from .test_duckdb import batch, ingest

_LIBC = ctypes.util.find_library("c")
glibc = pytest.mark.skipif(_LIBC is None or not hasattr(ctypes.CDLL(_LIBC), "malloc_trim"),
                           reason="malloc_trim is glibc's")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@glibc
def test_release_gives_a_threads_freed_heap_back() -> None:
    """What a thread frees stays in its glibc arena (as a merge's buffers did in the compactor thread's) until
    release(): 160 MiB of 32 KiB blocks (under the mmap threshold), all freed but the last, which pins the
    heap's top so that free() cannot shrink it."""
    libc = ctypes.CDLL(_LIBC)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    kept: list[int] = []
    before: list[float] = []

    def work() -> None:
        blocks = [libc.malloc(32 << 10) for _ in range(5120)]
        for b in blocks:
            ctypes.memset(b, 1, 32 << 10)  # touched: resident
        for b in blocks[:-1]:
            libc.free(b)
        kept.append(blocks[-1])
        before.append(_rss_mib())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    try:
        assert memory.release()
        assert before[0] - _rss_mib() > 100  # ~160 MiB were free in the arena, resident until now
    finally:
        libc.free(kept[0])


def test_the_compactor_releases_its_engine_after_a_round_that_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = memory.release

    def counted() -> bool:
        calls.append(time.monotonic())
        return real()

    monkeypatch.setattr(memory, "release", counted)
    store = DuckDBBackend(tmp_path, compact_min_files=4, compact_interval=3600)
    try:
        for i in range(4):
            ingest(store, batch(i * 100, 100))
        first = store.compact_con
        idle = threading.Thread(target=store._compact_loop, args=(0.01,))  # the loop itself, on its own
        idle.start()
        deadline = time.monotonic() + 30
        while store.stats()["merges"] == 0 or not calls:
            assert time.monotonic() < deadline, "no merge, or no release after it"
            time.sleep(0.05)
        assert store.stats()["files"] == 1
        assert store.compact_con is not first  # a fresh engine: the one that merged is closed
        with pytest.raises(duckdb.ConnectionException):
            first.execute("SELECT 1")
        assert store.compact_con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        n = len(calls)
        time.sleep(0.3)  # rounds with nothing to do release nothing
        assert len(calls) == n
    finally:
        store.close()
        idle.join(timeout=30)
