"""Threat-feed bodies into entries: newline-delimited, JSON with a path, CSV; IPs/CIDRs and IDN domains
normalised so matching compares like with like."""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ConfigError
from .resources import FeedFormat, fail

MAX_ENTRIES = 1_000_000  # entries read from one body (lines, CSV rows, JSON items); a body with more is refused
MAX_INVALID = 100_000  # entries that are not IPs/CIDRs (or domains): past this many, the body is refused
MAX_LINES = 4 * MAX_ENTRIES  # lines of a newline-delimited or CSV body, counted before it is read
MAX_JSON_VALUES = 4 * MAX_ENTRIES  # values of a JSON body (an upper bound), counted before it is parsed
_TEXT = re.compile(r"[^\r\n]+")
_JSON_STRING = re.compile(r'"[^"]*"')  # once escapes are gone: linear, whatever the body
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


def _walk(value: Any, steps: list[tuple[str, Any]]) -> Iterator[Any]:
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
    for v in current:
        if isinstance(v, list):
            yield from v
        else:
            yield v


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


def count_lines(text: str) -> int:
    """Lines of a body, each ended by LF, CRLF or CR (the last one possibly by nothing)."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + (0 if not text or text.endswith(("\n", "\r")) else 1)


def _line_numbers(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for each line with more than line breaks, without a list of them all: the runs of
    line breaks between them are skipped by the regex engine."""
    line, pos = 1, 0
    for m in _TEXT.finditer(text):
        start = m.start()
        if start > pos:
            line += text.count("\n", pos, start) + text.count("\r", pos, start) - text.count("\r\n", pos, start)
        pos = start
        yield line, m.group()


def _lines(text: str, comment: str = "#") -> Iterator[tuple[int, str]]:
    for n, line in _line_numbers(text):
        line = line.strip()
        if line and not line.startswith(comment):
            yield n, line


def _csv_lines(text: str, comment: str | None) -> Iterator[str]:
    """Each physical line for csv.reader (so its line_num is the body's), comment lines as empty ones."""
    line = 1
    for n, raw in _line_numbers(text):
        while line < n:  # the empty lines skipped, kept for the numbering
            yield "\n"
            line += 1
        line = n + 1
        yield "\n" if comment and raw.lstrip().startswith(comment) else raw + "\n"


def _csv(text: str, fmt: FeedFormat) -> Iterator[tuple[int, str]]:
    reader = csv.reader(_csv_lines(text, fmt.comment_delimiter), delimiter=fmt.column_delimiter, strict=True)
    expected = fmt.record_size
    column = fmt.field_num
    header_pending = fmt.header
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
                    if fmt.field_name not in row:  # the header's names are the body's: not said back
                        raise FeedError(f"csv header (line {reader.line_num}) has no column {fmt.field_name!r} "
                                        f"(the header has {len(row)} column{'' if len(row) == 1 else 's'})")
                    column = row.index(fmt.field_name)
                continue
            if column is not None and column < len(row):
                yield reader.line_num, row[column]
    except csv.Error as exc:  # the csv module's own words (they name its settings, never the body's text)
        raise FeedError(f"csv line {reader.line_num}: {exc}") from None


def json_values(text: str) -> int:
    """An upper bound on the values in a JSON text, without parsing it: each value after a container's first
    follows a comma, and each container opens with a bracket. Commas and brackets inside strings are left out
    only when the rough count is past the bound: escaped backslashes and quotes dropped first, every quote left
    opens or closes a string (exact for valid JSON; invalid JSON fails to parse anyway)."""
    rough = text.count(",") + text.count("[") + text.count("{") + 1
    if rough <= MAX_JSON_VALUES:
        return rough
    bare = _JSON_STRING.sub('""', text.replace("\\\\", "").replace('\\"', ""))
    return bare.count(",") + bare.count("[") + bare.count("{") + 1


def _json(text: str, fmt: FeedFormat) -> Iterator[tuple[int, Any]]:
    steps = compile_json_path(fmt.json_path or "$")
    if json_values(text) > MAX_JSON_VALUES:
        raise FeedError(f"body holds more than {MAX_JSON_VALUES:,} JSON values; refused before parsing "
                        f"(at most {MAX_ENTRIES:,} entries are read from a feed)")
    try:
        doc = orjson.loads(text) if text.strip() else []
    except orjson.JSONDecodeError as exc:  # its position only: orjson's message may change, the body stays ours
        raise FeedError(f"body is not JSON (line {exc.lineno}, column {exc.colno})") from None
    yield from enumerate(_walk(doc, steps), start=1)


def parse_body(body: bytes, fmt: FeedFormat, content: str) -> Entries:
    """Entries of a feed body; FeedError when the body as a whole cannot be read (garbage), holds more than
    MAX_ENTRIES entries (or MAX_LINES lines), or more than MAX_INVALID of its entries are invalid.

    Errors say counts, positions (line or item numbers) and the feed's own settings, never the body's text:
    the body may come from a service the feed's author cannot read otherwise, while its status is readable by
    anyone who may read the feed."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"body is not UTF-8 (byte {exc.start})") from None
    items: Iterator[tuple[int, Any]]
    unit = "item" if fmt.kind == "json" else "line"
    if fmt.kind != "json" and (lines := count_lines(text)) > MAX_LINES:
        raise FeedError(f"body has {lines:,} lines, more than the {MAX_LINES:,} read from a feed "
                        f"(at most {MAX_ENTRIES:,} entries)")
    items = _json(text, fmt) if fmt.kind == "json" else _csv(text, fmt) if fmt.kind == "csv" else _lines(text)
    norm = normalise_ip if content == "IPSet" else normalise_domain
    what = "an IP or CIDR" if content == "IPSet" else "a domain name"
    seen: dict[str, None] = {}
    count = skipped = 0
    first_bad = 0
    for where, item in items:
        count += 1
        if count > MAX_ENTRIES:
            raise FeedError(f"body holds more than {MAX_ENTRIES:,} entries ({unit} {where} is entry "
                            f"{count:,}); a feed may have at most {MAX_ENTRIES:,}")
        value = norm(item) if isinstance(item, str) else None
        if value is not None:
            seen.setdefault(value, None)
            continue
        skipped += 1
        first_bad = first_bad or where
        if skipped > MAX_INVALID:
            raise FeedError(f"more than {MAX_INVALID:,} entries are not {what} (the first at {unit} {first_bad}, "
                            f"reading stopped at {unit} {where}); check the feed's format and content")
    if count and not seen:
        raise FeedError(f"none of the {count:,} entries is {what} (the first at {unit} {first_bad}); check the "
                        "feed's format and content")
    if not count and text.strip():
        raise FeedError("no entries found in the body for this format")
    return Entries(tuple(seen), skipped)
