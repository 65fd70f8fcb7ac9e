"""Selector ASTs as parameterised DuckDB SQL, and as the Elasticsearch query DSL Calico's translation emits."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import QueryError
from ..logtypes import Kind, LogType, QueryKey
from ..logtypes.base import INT64
from .selector import And, Compare, InSet, Node, Not, Or, Value, selector_error

# Semantics follow Calico's Elasticsearch translation: a missing (NULL) field never matches a term or a
# range, while `!=`, NOTIN and NOT are `must_not`, so a row whose field is NULL does match `key != v`.
# Under NOT every leaf compiles to a two-valued expression (`(…) IS TRUE` / `(…) IS NOT TRUE`) so NOT agrees.
# A list key matches when any element matches; `!=` and NOTIN on a list mean that no element matches.

_STRINGY = (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST)
_IPS = (Kind.IP, Kind.IP_LIST)
_ADDRESSES = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_ES_RANGE = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_ES_DATE_FORMAT = "strict_date_optional_time||epoch_second"
_IPV4_SHAPE = r"'[0-9]{1,3}(\.[0-9]{1,3}){3}'"  # our constant, pasted as a SQL literal


@dataclass(frozen=True)
class _Key:
    """A resolved key: its registry entry, its SQL (plus the bound map key, if any) and its ES context."""

    name: str
    qk: QueryKey
    sql: str
    params: tuple[Any, ...]
    nested: str | None  # the ES nested path of keys inside a list of objects
    normalize: Callable[[str], str] | None  # the case the store keeps this key's values in

    @property
    def kind(self) -> Kind:
        return self.qk.kind


@dataclass(frozen=True)
class _Time:
    at: datetime
    relative: str | None  # `now-15m` as typed: Elasticsearch evaluates date math itself


@dataclass(frozen=True)
class _Pattern:
    text: str  # Elasticsearch wildcard syntax: * and ?, backslash escapes


_SPECIALS = (_Pattern, *_NETWORKS)  # set members that need more than an equality test


@dataclass(frozen=True)
class _Leaf:
    """A Compare or InSet reduced to: key, `=` or a comparison, the values, and whether it is negated."""

    key: _Key
    op: str
    values: list[Any]
    positions: tuple[int, ...]
    negated: bool


class _Compiler:
    def __init__(self, logtype: LogType, now: datetime | None, text: str | None) -> None:
        self.lt = logtype
        self.keys = logtype.query_keys()
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now or datetime.now(UTC)
        self.text = text

    def error(self, pos: int, what: str, tail: str = "", **details: Any) -> QueryError:
        return selector_error(self.text, pos, what, tail=tail, **details)

    def resolve(self, key: str, pos: int) -> _Key:
        qk = self.keys.get(key)
        if qk is not None and qk.kind is Kind.MAP:
            raise self.error(pos, f"{key!r} is a map; select one of its keys as {key}.<key>", key=key)
        if qk is None:
            qk = self.lt.map_key(key)
        if qk is None:
            names = sorted(self.keys) + [f"{column}.<key>" for column in self.lt.map_keys]
            close = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
            tail = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(names)}"
            raise self.error(pos, f"unknown key {key!r} for {self.lt.name} logs", tail, key=key,
                             suggestions=close)
        if qk.map_column is not None:
            column = self.keys[qk.map_column].sql
            return _Key(key, qk, f"map_extract_value({column}, ?)", (key[len(qk.map_column) + 1:],), None, None)
        parent = self.lt.field_map.get(qk.es_field.split(".", 1)[0])
        nested = parent.name if parent is not None and parent.kind is Kind.STRUCT_LIST else None
        # A value the store normalises on ingest (DNS qname lowercased, qtype uppercased) is normalised here too.
        derived = self.lt.derived.get(qk.es_field, "")
        normalize = {f"lower({qk.sql})": str.lower, f"upper({qk.sql})": str.upper}.get(derived)
        return _Key(key, qk, qk.sql, (), nested, normalize)

    def leaf(self, node: Compare | InSet) -> _Leaf:
        k = self.resolve(node.key, node.pos)
        if isinstance(node, Compare):
            pos = node.value_pos or node.pos
            value = self.value(k, node.value, pos, in_set=False)
            op = "=" if node.op == "!=" else node.op
            return _Leaf(k, op, [value], (pos,), node.op == "!=")
        positions = node.value_pos or (node.pos,) * len(node.values)
        values = [self.value(k, raw, p, in_set=True) for raw, p in zip(node.values, positions, strict=True)]
        return _Leaf(k, "=", values, positions, node.negated)

    def value(self, k: _Key, raw: Value, pos: int, *, in_set: bool) -> Any:
        """`raw` converted for the key's kind: str, number, bool, an ipaddress object, _Time or _Pattern."""
        kind = k.kind
        if in_set and isinstance(raw, str) and ("*" in raw or "?" in raw):
            if kind not in _STRINGY:
                hint = "; use a CIDR such as 10.0.0.0/8" if kind in _IPS else ""
                raise self.error(pos, f"wildcards work only on string keys, not on {k.name!r}{hint}")
            return _Pattern(k.normalize(raw) if k.normalize else raw)
        if kind in _STRINGY:
            text = raw if isinstance(raw, str) else str(raw)
            return k.normalize(text) if k.normalize else text
        if kind in _IPS:
            text = str(raw).strip()
            try:
                return ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
            except ValueError:
                raise self.error(pos, f"expected an IP address or CIDR for {k.name!r}, got {raw!r}") from None
        if kind.is_time:
            from .model import parse_time  # model may come to import this module

            try:
                at = parse_time(raw, self.now, what=k.name)
            except QueryError as e:
                raise self.error(pos, e.message) from None
            relative = re.sub(r"\s+", "", raw) if isinstance(raw, str) and raw.strip().startswith("now") else None
            return _Time(at, relative)
        if kind.is_numeric:
            number = _number(raw, kind is Kind.DOUBLE)
            if number is None:
                raise self.error(pos, f"expected a number for {k.name!r}, got {raw!r}")
            if isinstance(number, int) and not INT64[0] <= number <= INT64[1]:  # the stores' integers are 64-bit
                raise self.error(pos, f"{k.name!r} holds 64-bit integers: {str(raw)[:40]!r} is out of range")
            return number
        if kind is Kind.BOOL and str(raw).lower() in ("true", "false"):
            return str(raw).lower() == "true"
        if kind is Kind.BOOL:
            raise self.error(pos, f"expected true or false for {k.name!r}, got {raw!r}")
        raise self.error(pos, f"the key {k.name!r} cannot be selected on")

    # -- SQL ------------------------------------------------------------------------------------------

    def sql(self, node: Node, *, filtering: bool = True) -> tuple[str, list[Any]]:
        """`filtering`: the expression is only ever used to keep rows (a NULL keeps none, like FALSE), so a
        plain match needs no `IS TRUE`, and the engine can push it down into the Parquet scan. Under NOT
        every leaf is two-valued, so NOT agrees with the selector's meaning."""
        if isinstance(node, And | Or):
            parts = [self.sql(item, filtering=filtering) for item in node.items]
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(p for p, _ in parts) + ")", [x for _, ps in parts for x in ps]
        if isinstance(node, Not):
            inner, params = self.sql(node.item, filtering=False)
            return f"(NOT {inner})", params
        if isinstance(node, Compare | InSet):
            leaf = self.leaf(node)
            expr, params = self.sql_match(leaf) if leaf.values else ("FALSE", [])
            if filtering and not leaf.negated:
                return f"({expr})", params
            return f"(({expr}) IS {'NOT ' if leaf.negated else ''}TRUE)", params
        raise TypeError(f"not a selector node: {node!r}")

    def sql_match(self, leaf: _Leaf) -> tuple[str, list[Any]]:
        """True when the key (any element, for lists) matches the leaf's op with any of its values."""
        k, op = leaf.key, leaf.op
        for v, pos in zip(leaf.values, leaf.positions, strict=True):
            if isinstance(v, _NETWORKS) and op != "=":
                raise self.error(pos, f"a CIDR works only with =, != and sets, not with {op}")
            if (isinstance(v, _NETWORKS) or (op != "=" and isinstance(v, _ADDRESSES))) and v.version != 4:
                raise self.error(pos, f"IPv6 ranges and CIDRs on {k.name!r} are not supported; "
                                      "give a full IPv6 address with = or IN")
        if op != "=":  # a comparison has exactly one value
            v = leaf.values[0]
            if isinstance(v, _ADDRESSES):
                return self.sql_any(k, lambda e, ep: (f"{_ipv4_number(e)} {op} ?", [*ep * 5, int(v)]))
            return self.sql_any(k, lambda e, ep: (f"{e} {op} ?", [*ep, self.sql_param(k, v)]))
        literals = [self.sql_param(k, v) for v in leaf.values if not isinstance(v, _SPECIALS)]
        specials = [v for v in leaf.values if isinstance(v, _SPECIALS)]
        parts: list[tuple[str, list[Any]]] = []
        if len(literals) == 1:
            template = "list_contains({}, ?)" if k.kind.is_list else "{} = ?"
            parts.append((template.format(k.sql), [*k.params, literals[0]]))
        elif literals and k.kind.is_list:
            parts.append((f"list_has_any({k.sql}, ?)", [*k.params, literals]))
        elif literals:
            parts.append((f"list_contains(?, {k.sql})", [literals, *k.params]))
        if specials:
            parts.append(self.sql_any(k, lambda e, ep: _sql_specials(e, ep, specials)))
        return " OR ".join(p for p, _ in parts), [x for _, ps in parts for x in ps]

    def sql_any(self, k: _Key, test: Callable[[str, list[Any]], tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
        """`test(e, e_params)` on the key, or on each element of a list key (true when any passes).

        `test` repeats `e_params` each time it writes `e`.
        """
        if not k.kind.is_list:
            return test(k.sql, list(k.params))
        expr, params = test("el", [])
        return f"len(list_filter({k.sql}, lambda el: {expr})) > 0", [*k.params, *params]

    def sql_param(self, k: _Key, v: Any) -> Any:
        if isinstance(v, _Time):
            if k.kind is Kind.EPOCH_S:
                seconds = v.at.timestamp()
                return int(seconds) if seconds.is_integer() else seconds
            return v.at
        return str(v) if isinstance(v, _ADDRESSES) else v

    # -- Elasticsearch --------------------------------------------------------------------------------

    def es(self, node: Node) -> dict[str, Any]:
        if isinstance(node, And):
            return {"bool": {"filter": [self.es(i) for i in node.items]}}
        if isinstance(node, Or):
            return {"bool": {"should": [self.es(i) for i in node.items], "minimum_should_match": 1}}
        if isinstance(node, Not):
            return {"bool": {"must_not": [self.es(node.item)]}}
        if not isinstance(node, Compare | InSet):
            raise TypeError(f"not a selector node: {node!r}")
        leaf = self.leaf(node)
        k, field = leaf.key, leaf.key.qk.es_field
        should: list[dict[str, Any]]
        if not leaf.values:
            query: dict[str, Any] = {"terms": {field: []}}
        elif leaf.op != "=":
            bounds: dict[str, Any] = {_ES_RANGE[leaf.op]: self.es_param(k, leaf.values[0])}
            if k.kind.is_time:
                bounds["format"] = _ES_DATE_FORMAT
            query = {"range": {field: bounds}}
        elif k.kind.is_time:  # a date equals a value only through a range in its own format
            should = [{"range": {field: {"gte": t, "lte": t, "format": _ES_DATE_FORMAT}}}
                      for t in (self.es_param(k, v) for v in leaf.values)]
            query = should[0] if len(should) == 1 else {"bool": {"should": should, "minimum_should_match": 1}}
        else:
            terms = [self.es_param(k, v) for v in leaf.values if not isinstance(v, _Pattern)]
            wild = [{"wildcard": {field: {"value": v.text}}} for v in leaf.values if isinstance(v, _Pattern)]
            if isinstance(node, Compare):
                query = {"term": {field: terms[0]}}
            elif wild:
                should = ([{"terms": {field: terms}}] if terms else []) + wild
                query = should[0] if len(should) == 1 else {"bool": {"should": should, "minimum_should_match": 1}}
            else:
                query = {"terms": {field: terms}}
        if k.nested:
            query = {"nested": {"path": k.nested, "query": query}}
        return {"bool": {"must_not": [query]}} if leaf.negated else query

    def es_param(self, k: _Key, v: Any) -> Any:
        if isinstance(v, _Time):
            if v.relative is not None:
                return v.relative
            if k.kind is Kind.EPOCH_S:
                return self.sql_param(k, v)
            return v.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return str(v) if isinstance(v, (*_ADDRESSES, *_NETWORKS)) else v


def _sql_specials(e: str, ep: list[Any], specials: list[Any]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for v in specials:
        if isinstance(v, _Pattern):
            parts.append(f"{e} LIKE ? ESCAPE '\\'")
            params += [*ep, _like(v.text)]
        else:
            parts.append(f"{_ipv4_number(e)} BETWEEN ? AND ?")
            params += [*ep * 5, int(v.network_address), int(v.broadcast_address)]
    return " OR ".join(parts), params


def _ipv4_number(e: str) -> str:
    """A dotted IPv4 text as a number (NULL for anything else): CIDRs and order without the inet extension.

    Writes `e` five times; callers repeat its parameters to match.
    """
    octets = " + ".join(f"TRY_CAST(split_part({e}, '.', {i}) AS BIGINT) * {256 ** (4 - i)}" for i in range(1, 5))
    return f"(CASE WHEN regexp_full_match({e}, {_IPV4_SHAPE}) THEN {octets} END)"


def _number(raw: Value, as_float: bool) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return float(raw) if as_float else raw
    if isinstance(raw, str) and re.fullmatch(r"\s*-?[0-9]+\s*", raw) and not as_float:
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if not as_float and number.is_integer() else number


def _like(pattern: str) -> str:
    """An Elasticsearch wildcard pattern (*, ?, backslash escapes) as a LIKE pattern for ESCAPE '\\'."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 1
            c = pattern[i]
            out.append("\\" + c if c in "%_\\" else c)
        elif c in "*?":
            out.append("%" if c == "*" else "_")
        else:
            out.append("\\" + c if c in "%_\\" else c)
        i += 1
    return "".join(out)


def compile_selector(node: Node | None, logtype: LogType, *, now: datetime | None = None,
                     text: str | None = None) -> tuple[str, list[Any]]:
    """A DuckDB filter condition and its parameters; only registry SQL is pasted, values are bound.

    The condition is exact as a filter (WHERE, FILTER, CASE WHEN): a row it does not keep may evaluate
    to NULL rather than FALSE; wrap it in `coalesce(…, FALSE)` before negating it.

    `now` (default: the current UTC time) anchors relative times such as `now-15m`; `text`, the
    selector as typed, adds a caret line to errors.
    """
    if node is None:
        return "TRUE", []
    return _Compiler(logtype, now, text).sql(node)


def compile_to_es(node: Node | None, logtype: LogType, *, text: str | None = None) -> dict[str, Any]:
    """The Elasticsearch query DSL for a selector, as Calico builds it; relative times stay ES date math."""
    if node is None:
        return {"match_all": {}}
    return _Compiler(logtype, None, text).es(node)
