"""The converter's first look at a batch: documents over the size or depth bound of a stored record, refused
before any reader sees them (ingest/parse.py names them as the batch's bad lines)."""

from __future__ import annotations

import json
import operator
import re
from itertools import accumulate

from ..logtypes import Kind, LogType

# Bounds on one stored document (a line of a batch): its size, and how deep its objects and arrays nest.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # room for RequestResponse audit events of 1 MiB objects
MAX_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*+"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}\n")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_DECODER = json.JSONDecoder()
_STEP = bytes.maketrans(b"[]", b"\x02\x00")


def prescreen(lt: LogType, body: bytes, *, size: bool = True, depth: bool = True
              ) -> tuple[bytes, list[tuple[int, str | None, str]]]:
    """Refuse documents over the size (`size`) or depth (`depth`) bound before the reader sees them: the body with
    those lines blanked (line numbers hold), and (line, field, message) for each.

    Both checks run over the whole body at C speed: line lengths only when the body is larger than one
    document may be, and nesting only for types with free-form JSON fields (the declared shapes of the other
    fields bound their depth), measured only on lines with more than MAX_DEPTH opening brackets. The nesting
    look is the dearer (~26 us a 1.1 kB audit record, a regular expression over the strings): the converter
    skips it for a batch the C parser takes, which takes no line nested deeper (ingest/_columns.h).
    """
    bad: dict[int, tuple[int, str | None, str]] = {}
    lines: list[bytes] | None = None
    if size and len(body) > MAX_DOCUMENT_BYTES and _may_hold_long_line(body):
        lines = body.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if len(line) > MAX_DOCUMENT_BYTES:
                bad[number] = (number, None, f"document of {len(line)} bytes is over the limit of "
                               f"{MAX_DOCUMENT_BYTES} bytes per record")
    if depth and _json_fields(lt):
        # Strings out, brackets of one kind (valid JSON matches its kinds): a line can nest deeper than
        # MAX_DEPTH only with more than MAX_DEPTH opening brackets; only those lines are measured.
        shape = _JSON_STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKET)
        if shape.count(b"[") > MAX_DEPTH:
            lines = lines if lines is not None else body.split(b"\n")
            for number, line_shape in enumerate(shape.split(b"\n"), start=1):
                if len(line_shape) > MAX_DEPTH * 2 and number not in bad and _shape_too_deep(line_shape):
                    bad[number] = (number, _deep_field(lines[number - 1], lt),
                                   f"nests deeper than {MAX_DEPTH} levels of objects and arrays")
    if not bad:
        return body, []
    lines = lines if lines is not None else body.split(b"\n")
    for number in bad:
        lines[number - 1] = b""
    return b"\n".join(lines), list(bad.values())


def _may_hold_long_line(body: bytes) -> bool:
    """Whether a line of `body` may be longer than MAX_DOCUMENT_BYTES: a line that long covers a whole aligned
    window of half that size, so every window holding a newline rules it out (a few memchr calls instead of
    splitting a 15 MB batch into its lines: ~1.6 us a record)."""
    window = MAX_DOCUMENT_BYTES // 2
    return any(body.find(b"\n", start, start + window) < 0 for start in range(0, len(body) - window + 1, window))


def _deep_field(line: bytes, lt: LogType) -> str | None:
    """Which free-form field of a too-deep line nests too deep (None: another part of the record does)."""
    text = line.decode("utf-8", "replace")
    for name in _json_fields(lt):
        m = re.search('"' + re.escape(name) + r'"\s*:\s*(?=[\[{])', text)
        if m is None:
            continue
        try:
            _, end = _DECODER.raw_decode(text, m.end())
        except RecursionError:
            return name
        except ValueError:
            continue
        if _too_deep(text[m.end():end].encode()):
            return name
    return None


def _too_deep(doc: bytes) -> bool:
    """Whether one JSON value nests deeper than MAX_DEPTH."""
    return nests_deeper(doc, MAX_DEPTH)


def nests_deeper(doc: bytes, limit: int) -> bool:
    """Whether a JSON text (a request body, a record) nests objects and arrays deeper than `limit`."""
    return _shape_too_deep(_JSON_STRING.sub(b"", doc).translate(_ONE_KIND, _NOT_BRACKET).replace(b"\n", b""), limit)


def _shape_too_deep(shape: bytes, limit: int = MAX_DEPTH) -> bool:
    """Over a value's brackets (one kind, nothing else): the running count, summed in C."""
    if shape.count(b"[") <= limit:
        return False
    # '[' -> 2, ']' -> 0: after i+1 brackets the running sum minus i+1 is the depth.
    return max(map(operator.sub, accumulate(shape.translate(_STEP)), range(1, len(shape) + 1))) > limit


def _json_fields(lt: LogType) -> tuple[str, ...]:
    return tuple(f.name for f in lt.fields if f.kind is Kind.JSON)
