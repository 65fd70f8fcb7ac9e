"""Threat-feed bodies into entries: newline-delimited, JSON with a path, CSV; IPs/CIDRs and IDN domains
normalised so matching compares like with like."""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ConfigError
from .resources import FeedFormat, fail

_JP_TOKEN = re.compile(r"\.\.|\.([A-Za-z_][A-Za-z0-9_\-]*)|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\.\*|\.")


class FeedError(ConfigError):
    """A feed body that cannot be read: the feed keeps its last good set."""


@dataclass(frozen=True)
class Entries:
    values: tuple[str, ...]  # normalised, de-duplicated, in first-seen order
    skipped: int  # lines or items that were not an IP/CIDR/domain


def compile_json_path(path: str, where: str = "path") -> list[tuple[str, Any]]:
    """A JSONPath without filters: `$.items[*].ip`, Kubernetes-style `{.items[*].ip}`, `$[*]`."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _JP_TOKEN.match(text, pos)
        if not m or m.group(0) == "..":
            raise fail(where, f"unsupported JSONPath at {text[pos:]!r}: use .name, [n], ['name'] and [*] only")
        tok = m.group(0)
        if m.group(1) is not None:
            steps.append(("key", m.group(1)))
        elif m.group(2) is not None:
            steps.append(("index", int(m.group(2))))
        elif m.group(3) is not None or m.group(4) is not None:
            steps.append(("key", m.group(3) if m.group(3) is not None else m.group(4)))
        elif tok in ("[*]", ".*"):
            steps.append(("all", None))
        pos = m.end()
    return steps


def _walk(value: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    current = [value]
    for kind, arg in steps:
        nxt: list[Any] = []
        for v in current:
            if kind == "key" and isinstance(v, dict) and arg in v:
                nxt.append(v[arg])
            elif kind == "index" and isinstance(v, list) and -len(v) <= arg < len(v):
                nxt.append(v[arg])
            elif kind == "all":
                nxt.extend(v if isinstance(v, list) else v.values() if isinstance(v, dict) else [])
        current = nxt
    out: list[Any] = []
    for v in current:
        out.extend(v if isinstance(v, list) else [v])
    return out


def normalise_ip(text: str) -> str | None:
    """An IP as its canonical address, a CIDR as its network (`10.1.2.3/8` → `10.0.0.0/8`); None if neither."""
    t = text.strip()
    try:
        if "/" in t:
            net = ipaddress.ip_network(t, strict=False)
            return str(net.network_address) if net.num_addresses == 1 else str(net)
        return str(ipaddress.ip_address(t))
    except ValueError:
        return None


_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def normalise_domain(text: str) -> str | None:
    """A domain in lowercase ASCII (IDNs to their `xn--` form), no trailing dot; `*.` kept for subdomain
    entries; None if it is not a domain name."""
    t = text.strip().rstrip(".").lower()
    wild = t.startswith("*.")
    if wild:
        t = t[2:]
    if not t or len(t) > 253:
        return None
    try:
        ace = t.encode("idna").decode("ascii") if not t.isascii() else t
    except UnicodeError:
        return None
    if not all(_LABEL.match(label) for label in ace.split(".")):
        return None
    return ("*." if wild else "") + ace


def _lines(body: str, comment: str = "#") -> list[str]:
    out = []
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith(comment):
            out.append(line)
    return out


def _csv(body: str, fmt: FeedFormat) -> list[str]:
    lines = body.splitlines()
    if fmt.comment_delimiter:
        lines = ["" if ln.lstrip().startswith(fmt.comment_delimiter) else ln for ln in lines]
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=fmt.column_delimiter, strict=True)
    expected = fmt.record_size
    column = fmt.field_num
    header_pending = fmt.header
    out: list[str] = []
    try:
        for row in reader:
            if not row or row == [""]:
                continue
            if expected is None and not fmt.disable_record_size_validation:
                expected = len(row)
            if not fmt.disable_record_size_validation and len(row) != expected:
                raise FeedError(f"csv line {reader.line_num}: {len(row)} fields, expected {expected}")
            if header_pending:
                header_pending = False
                if fmt.field_name is not None:
                    if fmt.field_name not in row:
                        raise FeedError(f"csv header has no column {fmt.field_name!r} (columns: {', '.join(row)})")
                    column = row.index(fmt.field_name)
                continue
            if column is not None and column < len(row):
                out.append(row[column])
    except csv.Error as exc:
        raise FeedError(f"csv line {reader.line_num}: {exc}") from None
    return out


def parse_body(body: bytes, fmt: FeedFormat, content: str) -> Entries:
    """Entries of a feed body; FeedError when the body as a whole cannot be read (garbage)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"body is not UTF-8 (byte {exc.start})") from None
    raw: list[Any]
    if fmt.kind == "json":
        try:
            doc = orjson.loads(text) if text.strip() else []
        except orjson.JSONDecodeError as exc:
            raise FeedError(f"body is not JSON: {exc}") from None
        raw = _walk(doc, compile_json_path(fmt.json_path or "$"))
    elif fmt.kind == "csv":
        raw = _csv(text, fmt)
    else:
        raw = _lines(text)
    norm = normalise_ip if content == "IPSet" else normalise_domain
    seen: dict[str, None] = {}
    skipped = 0
    for item in raw:
        value = norm(item) if isinstance(item, str) else None
        if value is None:
            skipped += 1
        else:
            seen.setdefault(value, None)
    if raw and not seen:
        what = "IPs or CIDRs" if content == "IPSet" else "domain names"
        raise FeedError(f"none of the {len(raw)} entries are {what} (first: {str(raw[0])[:60]!r})")
    if text.strip() and not raw:
        raise FeedError("no entries found in the body for this format")
    return Entries(tuple(seen), skipped)
