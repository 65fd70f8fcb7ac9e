"""Native formats that are not NDJSON records: BIRD log lines and audit EventList bodies."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ..errors import ParseError
from .parse import LineError
from .screen import MAX_DEPTH

_BIRD = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?\s+(bird6?):\s?(.*)$")
BIRD_NOISE = "device1: Scanning interfaces"


def bird_to_ndjson(text: bytes, *, host: str | None, ip_version: str | None
                   ) -> tuple[bytes, list[LineError], int, int]:
    """BIRD/BIRD6 lines -> NDJSON records {logtime, message, host, ip_version}.

    Returns (ndjson, errors, lines, dropped noise lines). Timestamps keep seconds only (spec §4).
    """
    out: list[bytes] = []
    errors: list[LineError] = []
    total = dropped = 0
    for number, raw in enumerate(text.split(b"\n"), start=1):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            continue
        total += 1
        if BIRD_NOISE in line:
            dropped += 1
            continue
        m = _BIRD.match(line)
        if m is None:
            errors.append(LineError(number, "logtime", "not a BIRD log line "
                                    "(expected 'YYYY-MM-DDTHH:MM:SS.fffff bird: message')"))
            continue
        version = ip_version or ("IPv6" if m.group(2) == "bird6" else "IPv4")
        # As Calico's fluentd writes it (Linseed's records: "2023-02-23T00:11:46"): UTC, no zone.
        out.append(orjson.dumps({"logtime": m.group(1), "message": m.group(3), "host": host,
                                 "ip_version": version}))
    return b"\n".join(out), errors, total, dropped


def eventlist_to_ndjson(body: bytes) -> bytes | None:
    """An audit.k8s.io EventList (the audit webhook's body) -> NDJSON of its items; None if not one."""
    head = body.lstrip()[:200]
    if not head.startswith(b"{") or b"EventList" not in body[:4096]:
        return None
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        where = _too_deep(body)
        if where is not None:  # orjson reads 1024 levels; an item deeper than MAX_DEPTH is a line error
            raise ParseError(f"EventList{where} nests deeper than {MAX_DEPTH} levels of objects and arrays, too "
                             "deep to read the list: none of its events were stored") from None
        return None  # perhaps NDJSON whose first line mentions EventList: let the NDJSON path decide
    if not isinstance(doc, dict) or doc.get("kind") != "EventList":
        return None
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("EventList: 'items' must be a list of audit events")
    # kube-apiserver's audit webhook leaves kind and apiVersion off each item (they are the list's); the same
    # events in its audit log carry them, so fill them in for both paths to store the same record.
    api = doc.get("apiVersion") if isinstance(doc.get("apiVersion"), str) else "audit.k8s.io/v1"
    return b"\n".join(orjson.dumps({"kind": "Event", "apiVersion": api, **item} if isinstance(item, dict)
                                    and ("kind" not in item or "apiVersion" not in item) else item)
                       for item in items)



_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _too_deep(body: bytes) -> str | None:
    """Where a JSON object orjson could not read nests too deep: " item N" (its `items`' Nth, counted from 1 as
    the lines its items become are), "" (elsewhere), or None (no: another error). Value by value with the
    standard library's decoder, whose C scanner raises RecursionError inside a value too deep for it."""
    try:
        text = body.decode()
        i = _skip(text, 0)
        if text[i] != "{":
            return None
        i = _skip(text, i + 1)
        while text[i] != "}":
            key, i = _DECODER.raw_decode(text, i)
            i = _skip(text, i)
            if text[i] != ":":
                return None
            i = _skip(text, i + 1)
            if key == "items" and text[i] == "[":
                i, item = _skip(text, i + 1), 0
                while text[i] != "]":
                    item += 1
                    try:
                        _, i = _DECODER.raw_decode(text, i)
                    except RecursionError:
                        return f" item {item}"
                    i = _skip(text, i)
                    i = _skip(text, i + 1) if text[i] == "," else i
                i += 1
            else:
                try:
                    _, i = _DECODER.raw_decode(text, i)
                except RecursionError:
                    return ""
            i = _skip(text, i)
            i = _skip(text, i + 1) if text[i] == "," else i
    except (ValueError, IndexError):  # not UTF-8, not JSON, cut short
        return None
    return None


def _skip(text: str, i: int) -> int:
    """Past the JSON whitespace at `i`."""
    m = _WS.match(text, i)
    return m.end() if m else i
