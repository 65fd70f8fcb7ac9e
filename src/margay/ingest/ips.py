"""Which strings an IP field takes on ingest: what OpenSearch's `ip` type indexes, on both engines.

OpenSearch parses an `ip` value with `InetAddresses.forString` (org.opensearch.common.network): an IPv4 dotted
quad of four decimal octets 0-255 without leading zeros; or an IPv6 address of eight hextets (each any number
of leading zeros then at most four hex digits, so a value up to ffff), with at most one `::` standing for at
least one zero hextet, its last 32 bits optionally an IPv4 dotted quad (`::ffff:10.0.0.1`), and, when it has
no dotted quad, optionally a scope id after `%` (`fe80::1%eth0`: any non-empty text). Nothing else: no CIDR,
no brackets, no blanks, no empty string, no `-`, no numbers. margay's index templates map IP fields with
`ignore_malformed` (store/mapping.py), so OpenSearch would keep any other string unindexed, where the
embedded engine's reads (terms, cardinality, CIDRs, L3 flows) would still see it: both engines refuse such a
record instead, in the conversion they share, naming the line and the field.

Where it is checked: the C parser (ingest/_columns_ip.c, the same rules) as it reads an IP column, declining a
batch that holds a bad value; read_json's way (a batch the parser declined) by the SQL below in the conversion's
checks (parse.py `_checks`), unless the parser's lenient look at the IP fields alone vouches for the batch
(columns.IpVouch: the regular expressions cost a statement ~0.3 ms each to compile). tests/ingest/test_ips.py
holds them to a reference written from OpenSearch's parser, and to OpenSearch's own answers.

One deliberate difference: OpenSearch takes any Unicode decimal digit and hex letter (Java's Character.digit,
so `٣.2.3.4`); margay takes ASCII only.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..logtypes import Field, Kind, quote_ident
from .output import FIELD_SEP

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H = "0*[0-9A-Fa-f]{1,4}"
# `hi` hextets, `::`, `lo` hextets: hi + lo <= 7 (the `::` stands for at least one); or eight without `::`.
_V6_HEX = "|".join([
    f"({_H}:){{7}}{_H}",
    f"({_H}:){{1,7}}:",
    *(f"({_H}:){{1,{hi}}}(:{_H}){{1,{7 - hi}}}" for hi in range(1, 7)),
    f":((:{_H}){{1,7}}|:)",
])
# The same with the last two hextets written as a dotted quad: hi + lo <= 5.
_V6_QUAD = "|".join([
    f"({_H}:){{6}}{_V4}",
    f"::({_H}:){{0,5}}{_V4}",
    *(f"({_H}:){{{hi}}}:({_H}:){{0,{5 - hi}}}{_V4}" for hi in range(1, 6)),
])
IPV4_PATTERN = _V4
IPV6_PATTERN = f"(?s)({_V6_HEX})(%.+)?|{_V6_QUAD}"
# SQL string literals of margay's constants (no quote in them), for regexp_full_match.
_V4_SQL = "'" + IPV4_PATTERN + "'"
_V6_SQL = "'" + IPV6_PATTERN + "'"
assert "'" not in IPV4_PATTERN + IPV6_PATTERN


def bad_ip_sql(expr: str) -> str:
    """SQL true when `expr` (VARCHAR) is a value no IP field takes; NULL or false otherwise (NULL is fine).
    Most values are IPv4: the IPv6 pattern runs only on those that are not."""
    return (f"({expr} IS NOT NULL AND NOT regexp_full_match({expr}, {_V4_SQL}) "
            f"AND NOT regexp_full_match({expr}, {_V6_SQL}))")


def _any_bad(list_expr: str, item: str) -> str:
    """SQL true when an item of a list (each item `x`, its IP at `item`) is a bad IP. (CASE spares a NULL list
    the lambda, ~0.3 us a row even then.)"""
    return (f"(CASE WHEN {list_expr} IS NULL THEN false "
            f"ELSE len(list_filter({list_expr}, lambda x: {bad_ip_sql(item)})) > 0 END)")


def ip_paths(fields: tuple[Field, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, SQL true when the row holds a bad IP there) of every IP field of a type, nested ones included (WAF
    `source.ip`, DNS `servers.ip`: a list's items are passed through), over the raw columns."""
    for f in fields:
        col = quote_ident(f.name)
        if f.kind is Kind.IP:
            yield (f.name,), bad_ip_sql(col)
        elif f.kind is Kind.IP_LIST:
            yield (f.name,), _any_bad(col, "x")
        elif f.kind in (Kind.STRUCT, Kind.STRUCT_LIST):
            for c in f.children:
                member = quote_ident(c.name)
                if c.kind is Kind.IP and f.kind is Kind.STRUCT:
                    yield (f.name, c.name), bad_ip_sql(f"{col}.{member}")
                elif c.kind is Kind.IP:
                    yield (f.name, c.name), _any_bad(col, f"x.{member}")
                elif c.kind is Kind.IP_LIST and f.kind is Kind.STRUCT:
                    yield (f.name, c.name), _any_bad(f"{col}.{member}", "x")
                elif _has_ip(c):
                    raise ValueError(f"{f.name}.{c.name}: an IP field this deep is not checked on ingest")


def _has_ip(f: Field) -> bool:
    return f.kind in (Kind.IP, Kind.IP_LIST) or any(_has_ip(c) for c in f.children)


def ip_checks(fields: tuple[Field, ...]) -> list[str]:
    """The conversion's checks (parse.py `_checks`) of the IP fields: 'field<US>message' for a bad row, else NULL."""
    out = []
    for path, bad in ip_paths(fields):
        out.append(f"CASE WHEN {bad} THEN '{'.'.join(path)}{FIELD_SEP}is not an IP address (expected an IPv4 or "
                   "IPv6 address)' END")
    return out
