"""Whether a batch holds a top-level key outside a log type's declared set, without parsing it twice.

A large batch with no undeclared key is converted without computing `_extra` per record (ingest/parse.py's
lean plan). Asking DuckDB (`read_ndjson_objects` + `json_keys`) parses every record a second time, ~4.8 us a
1.5 kB flow; the C scanner (`_keyscan.c`) walks only the records' top-level keys in one pass over the bytes,
~0.5 us. It answers UNSURE on whatever it does not understand (a line that is not one object, an escaped key,
a comment, a trailing comma), and then DuckDB's look decides. Built without a C compiler, margay has no
scanner: every look is UNSURE, and the answers are the same, only slower.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Protocol


class Verdict(enum.IntEnum):
    CLEAN = 0  # every top-level key of every record is declared
    UNDECLARED = 1  # some record has a top-level key that is not
    UNSURE = 2  # the scanner cannot tell: ask DuckDB


class _KeySet(Protocol):
    def scan(self, body: bytes, /) -> int: ...


try:
    _keyscan: ModuleType | None = importlib.import_module("._keyscan", __package__)
except ImportError:  # built without a C compiler (setup.py's extension is optional)
    _keyscan = None
_NativeKeySet = getattr(_keyscan, "KeySet", None)
# A build from before count_newlines keeps its scanner; `make native` rebuilds it (the test of the build says so).
_native_count: Callable[[bytes], int] | None = getattr(_keyscan, "count_newlines", None)
_native_records: Callable[[bytes], int] | None = getattr(_keyscan, "count_records", None)

NATIVE = _NativeKeySet is not None


def count_newlines(body: bytes) -> int:
    """`body.count(b"\\n")` at C speed (16 bytes a step) when the extension is built (bytes.count compares byte by byte:
    ~0.8 us a 1.5 kB record, paid by every batch to reserve its `_seq`s)."""
    return _native_count(body) if _native_count is not None else body.count(b"\n")


def count_records(body: bytes) -> int:
    """The lines of `body` that are not blank (a byte other than ASCII whitespace, as `bytes.strip` sees it): the
    records the reader returns, in C when the extension is built (numbering them in Python cost a group commit
    ~0.76 us a 1.5 kB record)."""
    if _native_records is not None:
        return _native_records(body)
    return sum(1 for line in body.split(b"\n") if line.strip())


class KeyScanner:
    """The declared top-level keys of a log type, and the scan of NDJSON batches against them."""

    def __init__(self, keys: Sequence[str], *, native: bool = True) -> None:
        self.keys = tuple(keys)
        self._set: _KeySet | None = _NativeKeySet(self.keys) if native and _NativeKeySet is not None else None

    @property
    def native(self) -> bool:
        return self._set is not None

    def scan(self, body: bytes) -> Verdict:
        """CLEAN or UNDECLARED as DuckDB's json_keys would find on a batch its reader accepts, else UNSURE.

        On a batch the reader refuses any answer may come: the conversion fails either way."""
        if self._set is None:
            return Verdict.UNSURE
        return Verdict(self._set.scan(body))
