"""Giving memory back to the system after a large statement (the compactor's merges and roll-ups).

DuckDB frees a statement's buffers when it ends, to the C allocator: glibc's keeps freed pages mapped in
the arena of the thread that freed them, so a cold merge's sort (up to the compactor's cap, 448 MiB) stayed
in the server's RSS for as long as it ran, although nothing used it. `malloc_trim(0)` returns the free
pages of every arena (madvise), which costs a few milliseconds; on a C library without it this does nothing.
Under tcmalloc (margay/allocator.py) its own `MallocExtension_ReleaseFreeMemory` does the same for its page heap.
tcmalloc keeps what reads free, too: the query scenario's questions over 50 M flows left the server at ~810 MiB
of RSS under tcmalloc and ~320 under glibc, once idle; so the compactor also releases, each round, once
tcmalloc's page heap holds more than FREE_HELD_BYTES free (`release_if_held`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


@cache
def _tcmalloc() -> Callable[[], None] | None:
    from ...allocator import loaded

    if not loaded():
        return None
    fn = ctypes.CDLL(None).MallocExtension_ReleaseFreeMemory
    fn.argtypes = []
    fn.restype = None
    return fn


# Free bytes tcmalloc may keep in its page heap between compactor rounds before they go back to the system.
FREE_HELD_BYTES = 64 << 20


@cache
def _free_bytes() -> Callable[[], int] | None:
    from ...allocator import loaded

    if not loaded():
        return None
    fn = ctypes.CDLL(None).MallocExtension_GetNumericProperty
    fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    fn.restype = ctypes.c_int

    def free() -> int:
        value = ctypes.c_size_t(0)
        return int(value.value) if fn(b"tcmalloc.pageheap_free_bytes", ctypes.byref(value)) else 0

    return free


def release_if_held(bound: int | None = None) -> bool:
    """Under tcmalloc, return its free pages once it holds more than `bound` (FREE_HELD_BYTES) of them; True
    if it did. Under glibc, nothing: its arenas give back on their own past the trim threshold, and a merge's
    pages are trimmed after the merge (`release`)."""
    free = _free_bytes()
    if free is None or free() <= (FREE_HELD_BYTES if bound is None else bound):
        return False
    return release()


def release() -> bool:
    """Return the allocator's free pages to the system; True if it could (tcmalloc's release or glibc's
    malloc_trim)."""
    tc = _tcmalloc()
    if tc is not None:
        tc()
        return True
    fn = _trim()
    if fn is None:
        return False
    fn(0)
    return True


__all__ = ["FREE_HELD_BYTES", "release", "release_if_held"]
