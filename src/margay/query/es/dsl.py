"""The Elasticsearch query DSL subset, compiled to a DuckDB boolean expression for one log type.

Every leaf yields TRUE or FALSE (never NULL), so `must_not` and NOT behave as in Elasticsearch. SQL comes
only from the registry (esfields.py); every value a request carries is a bound parameter. Anything outside
the subset raises QueryError (400) naming the feature, rather than giving a different answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...errors import QueryError
from ...logtypes import Kind
from ..sql import _ipv4_number, _like
from .dates import date_math
from .fields import FieldRef, Fields
from .querystring import parse_query_string

Sql = tuple[str, list[Any]]
TRUE: Sql = ("TRUE", [])
FALSE: Sql = ("FALSE", [])

_STRINGS = (Kind.KEYWORD, Kind.KEYWORD_LIST)
_NUMBERS = (Kind.LONG, Kind.INTEGER, Kind.DOUBLE, Kind.LONG_LIST)
_IPS = (Kind.IP, Kind.IP_LIST)
_COMMON = {"boost", "_name"}


def _params(spec: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = set(spec) - allowed - _COMMON
    if extra:
        raise QueryError(f"[{what}] parameter {sorted(extra)[0]!r} is not supported by margay's ES API")


def _one(body: Any, what: str) -> tuple[str, Any]:
    if not isinstance(body, dict) or not body:
        raise QueryError(f"[{what}] query malformed: expected an object")
    fields = [k for k in body if k not in _COMMON]
    if len(fields) != 1:
        raise QueryError(f"[{what}] query malformed: expected exactly one field, got {fields}")
    return fields[0], body[fields[0]]


class QueryCompiler:
    """Compiles a query DSL object against one log type's fields."""

    def __init__(self, fields: Fields, now: datetime) -> None:
        self.fields = fields
        self.now = now

    def compile(self, q: Any) -> Sql:
        if q is None:
            return TRUE
        if not isinstance(q, dict) or len(q) != 1:
            raise QueryError("query malformed: expected an object with exactly one query type")
        (kind, body), = q.items()
        handler = getattr(self, "q_" + kind, None)
        if handler is None:
            raise QueryError(f"unsupported query type [{kind}]: margay's ES API supports bool, term, terms, "
                             "range, exists, prefix, wildcard, match, match_phrase, multi_match, query_string, "
                             "match_all, match_none, ids, nested, constant_score")
        compiled: tuple[str, list[Any]] = handler(body)
        return compiled

    # -- compound ----------------------------------------------------------------------------------------
    def q_match_all(self, body: Any) -> Sql:
        _params(body or {}, set(), "match_all")
        return TRUE

    def q_match_none(self, body: Any) -> Sql:
        return FALSE

    def q_constant_score(self, body: Any) -> Sql:
        _params(body, {"filter"}, "constant_score")
        return self.compile(body.get("filter"))

    def q_bool(self, body: Any) -> Sql:
        if not isinstance(body, dict):
            raise QueryError("[bool] query malformed: expected an object")
        _params(body, {"must", "filter", "should", "must_not", "minimum_should_match", "adjust_pure_negative"},
                "bool")

        def clauses(name: str) -> list[Sql]:
            raw = body.get(name)
            items = [] if raw is None else raw if isinstance(raw, list) else [raw]
            return [self.compile(i) for i in items]

        must = clauses("must") + clauses("filter")
        should = clauses("should")
        must_not = clauses("must_not")
        msm = _min_should(body.get("minimum_should_match"), len(should), bool(must))
        parts = [s for s in must]
        parts += [(f"NOT ({s})", p) for s, p in must_not]
        if should and msm > 0:
            if msm == 1:
                parts.append(("(" + " OR ".join(s for s, _ in should) + ")", [x for _, p in should for x in p]))
            else:
                total = " + ".join(f"CAST(({s}) AS INTEGER)" for s, _ in should)
                parts.append((f"({total}) >= {int(msm)}", [x for _, p in should for x in p]))
        if not parts:
            return TRUE
        return "(" + " AND ".join(s for s, _ in parts) + ")", [x for _, p in parts for x in p]

    def q_nested(self, body: Any) -> Sql:
        _params(body, {"path", "query", "score_mode", "ignore_unmapped", "inner_hits"}, "nested")
        if "inner_hits" in body:
            raise QueryError("[nested] inner_hits is not supported by margay's ES API")
        path = body.get("path")
        lt = self.fields.lt
        f = lt.field_map.get(path) if isinstance(path, str) else None
        if f is None or f.kind is not Kind.STRUCT_LIST:
            if body.get("ignore_unmapped"):
                return FALSE
            raise QueryError(f"[nested] failed to create query: [nested] nested object under path [{path}] "
                             "is not of nested type")
        inner, params = QueryCompiler(self.fields.within(path), self.now).compile(body.get("query"))
        col = lt.query_keys()
        del col
        return f"coalesce(len(list_filter(\"{path}\", lambda x: ({inner}))) > 0, FALSE)", params

    # -- leaves ------------------------------------------------------------------------------------------
    def field(self, name: Any, what: str) -> FieldRef | None:
        if not isinstance(name, str):
            raise QueryError(f"[{what}] expected a field name")
        if "*" in name:
            raise QueryError(f"[{what}] field name patterns ({name!r}) are not supported")
        ref = self.fields.resolve(name)
        if ref is not None and ref.nested is not None:
            return None  # a nested field outside its nested query: ES matches nothing
        if ref is not None and ref.kind in (Kind.TEXT,) and what not in ("exists",):
            raise QueryError(f"[{what}] on the analyzed text field {name!r}: full-text search is not supported; "
                             f"query {name}.keyword for whole values")
        return ref

    def any_of(self, ref: FieldRef, test: Callable[[str], Sql]) -> Sql:
        """`test` on the field (or on any element of a list field); TRUE/FALSE, never NULL."""
        if ref.kind.is_list:
            inner, ps = test("el")
            return f"coalesce(len(list_filter({ref.sql}, lambda el: ({inner}))) > 0, FALSE)", [*ref.params, *ps]
        if ref.params:
            inner, ps = test("el")
            return f"coalesce(len(list_filter([{ref.sql}], lambda el: ({inner}))) > 0, FALSE)", [*ref.params, *ps]
        inner, ps = test(ref.sql)
        return f"(({inner}) IS TRUE)", ps

    def value(self, ref: FieldRef, v: Any, what: str, *, fmt: str | None = None, tz: str | None = None,
              round_up: bool = False) -> Any:
        """A request value as the store compares it (dates as epoch ms)."""
        kind = ref.kind
        if isinstance(v, dict | list):
            raise QueryError(f"[{what}] expected a single value for {ref.name!r}, got {v!r}")
        if ref.is_date:
            return date_math(v, fmt or ref.date_format or "strict_date_optional_time", self.now,
                             round_up=round_up, tz=tz)
        if kind in _STRINGS:
            return ("true" if v else "false") if isinstance(v, bool) else str(v)
        if kind in _NUMBERS:
            try:
                number = float(v) if not isinstance(v, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None:
                raise QueryError(f"[{what}] failed to parse {v!r} as a number for field {ref.name!r}")
            return int(number) if number.is_integer() else number
        if kind is Kind.BOOL:
            if v in (True, "true"):
                return True
            if v in (False, "false"):
                return False
            raise QueryError(f"[{what}] failed to parse {v!r} as a boolean for field {ref.name!r}")
        if kind in _IPS:
            text = str(v)
            try:
                return ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
            except ValueError:
                raise QueryError(f"[{what}] {text!r} is not an IP string literal") from None
        raise QueryError(f"[{what}] field {ref.name!r} cannot be queried this way")

    def equals(self, ref: FieldRef, values: list[Any], what: str) -> Sql:
        if not values:
            return FALSE
        if ref.kind is Kind.STRUCT:
            raise QueryError(f"[{what}] {ref.name!r} is an object; name one of its fields")
        vals = [self.value(ref, v, what) for v in values]
        if ref.kind in _IPS:
            nets = [v for v in vals if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network)]
            addrs = [str(v) for v in vals if not isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network)]
            if any(n.version != 4 for n in nets):
                raise QueryError(f"[{what}] IPv6 CIDR terms are not supported")

            def ip_test(e: str) -> Sql:
                parts = []
                ps: list[Any] = []
                if addrs:
                    parts.append(f"{e} IN ({', '.join('?' for _ in addrs)})")
                    ps += addrs
                for n in nets:
                    parts.append(f"{_ipv4_number(e)} BETWEEN ? AND ?")
                    ps += [int(n.network_address), int(n.broadcast_address)]
                return " OR ".join(parts), ps

            return self.any_of(ref, ip_test)
        col = ref.ms_sql() if ref.is_date else None

        def test(e: str) -> Sql:
            target = col if col is not None and e == ref.sql else e
            if len(vals) == 1:
                return f"{target} = ?", list(vals)
            return f"{target} IN ({', '.join('?' for _ in vals)})", list(vals)

        return self.any_of(ref, test)

    def q_term(self, body: Any) -> Sql:
        name, spec = _one(body, "term")
        if isinstance(spec, dict):
            _params(spec, {"value", "case_insensitive"}, "term")
            if spec.get("case_insensitive"):
                raise QueryError("[term] case_insensitive is not supported by margay's ES API")
            spec = spec.get("value")
        ref = self.field(name, "term")
        return FALSE if ref is None else self.equals(ref, [spec], "term")

    def q_terms(self, body: Any) -> Sql:
        if not isinstance(body, dict):
            raise QueryError("[terms] query malformed")
        name, values = _one(body, "terms")
        if not isinstance(values, list):
            raise QueryError("[terms] terms lookup is not supported: give a list of values")
        ref = self.field(name, "terms")
        return FALSE if ref is None else self.equals(ref, values, "terms")

    def q_ids(self, body: Any) -> Sql:
        _params(body, {"values", "type"}, "ids")
        values = body.get("values") or []
        ref = self.fields.resolve("_id")
        assert ref is not None
        return self.equals(ref, [str(v) for v in values], "ids")

    def q_match(self, body: Any, what: str = "match") -> Sql:
        name, spec = _one(body, what)
        if isinstance(spec, dict):
            _params(spec, {"query", "operator", "zero_terms_query", "lenient", "auto_generate_synonyms_phrase_query",
                           "slop"} if what == "match_phrase" or True else set(), what)
            if "slop" in spec and what != "match_phrase":
                raise QueryError("[match] parameter 'slop' is not supported")
            spec = spec.get("query")
        ref = self.field(name, what)
        return FALSE if ref is None else self.equals(ref, [spec], what)

    def q_match_phrase(self, body: Any) -> Sql:
        return self.q_match(body, "match_phrase")

    def q_multi_match(self, body: Any) -> Sql:
        from .multifield import multi_match

        return multi_match(self, body)

    def q_exists(self, body: Any) -> Sql:
        _params(body, {"field"}, "exists")
        name = body.get("field")
        ref = self.field(name, "exists")
        if ref is None:
            return FALSE
        if ref.kind is Kind.STRUCT:
            parts = [self.q_exists({"field": c}) for c in ref.children]
            return ("(" + " OR ".join(s for s, _ in parts) + ")", [x for _, p in parts for x in p]) if parts \
                else FALSE
        if ref.kind in _IPS:  # a malformed IP (stored before ingest refused them, ingest/ips.py) is not indexed
            return self.any_of(ref, lambda e: (f"{e} IS NOT NULL AND ({_ipv4_number(e)} IS NOT NULL "
                                               f"OR {e} LIKE '%:%')", []))
        return self.any_of(ref, lambda e: (f"{e} IS NOT NULL", []))

    def _stringy(self, name: str, what: str) -> FieldRef | None:
        ref = self.field(name, what)
        if ref is not None and ref.kind not in _STRINGS:
            raise QueryError(f"[{what}] works on keyword fields only; {name!r} is {ref.kind.value}")
        return ref

    def q_prefix(self, body: Any) -> Sql:
        name, spec = _one(body, "prefix")
        if isinstance(spec, dict):
            _params(spec, {"value", "case_insensitive", "rewrite"}, "prefix")
            ci = bool(spec.get("case_insensitive"))
            spec = spec.get("value")
        else:
            ci = False
        ref = self._stringy(name, "prefix")
        if ref is None:
            return FALSE
        text = str(spec)
        if ci:
            return self.any_of(ref, lambda e: (f"starts_with(lower({e}), ?)", [text.lower()]))
        return self.any_of(ref, lambda e: (f"starts_with({e}, ?)", [text]))

    def q_wildcard(self, body: Any) -> Sql:
        name, spec = _one(body, "wildcard")
        if isinstance(spec, dict):
            _params(spec, {"value", "wildcard", "case_insensitive", "rewrite"}, "wildcard")
            ci = bool(spec.get("case_insensitive"))
            spec = spec.get("value", spec.get("wildcard"))
        else:
            ci = False
        ref = self._stringy(name, "wildcard")
        if ref is None:
            return FALSE
        pattern = _like(str(spec))
        op = "ILIKE" if ci else "LIKE"
        return self.any_of(ref, lambda e: (f"{e} {op} ? ESCAPE '\\'", [pattern]))

    def q_range(self, body: Any) -> Sql:
        name, spec = _one(body, "range")
        if not isinstance(spec, dict):
            raise QueryError("[range] query malformed: expected an object of bounds")
        _params(spec, {"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper", "format",
                       "time_zone", "relation"}, "range")
        if spec.get("relation", "intersects").lower() not in ("intersects", "within", "contains"):
            raise QueryError("[range] relation must be intersects, within or contains")
        ref = self.field(name, "range")
        if ref is None:
            return FALSE
        bounds: list[tuple[str, Any]] = []
        for op, sym in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<=")):
            if spec.get(op) is not None:
                bounds.append((sym, spec[op]))
        if spec.get("from") is not None and "gt" not in spec and "gte" not in spec:
            bounds.append((">=" if spec.get("include_lower", True) else ">", spec["from"]))
        if spec.get("to") is not None and "lt" not in spec and "lte" not in spec:
            bounds.append(("<=" if spec.get("include_upper", True) else "<", spec["to"]))
        if ref.kind in (Kind.BOOL, Kind.STRUCT):
            raise QueryError(f"[range] is not supported on {ref.kind.value} field {name!r}")
        fmt, tz = spec.get("format"), spec.get("time_zone")
        if (fmt or tz) and not ref.is_date:
            fmt = None
        conds: list[tuple[str, Any]] = []
        for sym, raw in bounds:
            if ref.is_date:
                conds.append((sym, self.value(ref, raw, "range", fmt=fmt, tz=tz, round_up=sym in (">", "<="))))
            elif ref.kind in _IPS:
                v = self.value(ref, raw, "range")
                if not isinstance(v, ipaddress.IPv4Address):
                    raise QueryError("[range] on ip fields takes IPv4 addresses only")
                conds.append((sym, int(v)))
            else:
                conds.append((sym, self.value(ref, raw, "range")))
        if not conds:
            return self.q_exists({"field": name})

        def test(e: str) -> Sql:
            target = ref.ms_sql() if ref.is_date and e == ref.sql else e
            if ref.kind in _IPS:
                target = _ipv4_number(e)
            return " AND ".join(f"{target} {sym} ?" for sym, _ in conds), [v for _, v in conds]

        return self.any_of(ref, test)

    def q_query_string(self, body: Any) -> Sql:
        _params(body, {"query", "default_field", "default_operator", "analyze_wildcard", "lenient",
                       "allow_leading_wildcard", "fields", "time_zone"}, "query_string")
        fields = body.get("fields")
        default = body.get("default_field")
        if isinstance(fields, list) and len(fields) == 1 and default is None:
            default = fields[0]
        elif fields:
            raise QueryError("[query_string] more than one field in 'fields' is not supported")
        op = str(body.get("default_operator", "OR")).upper()
        if op not in ("AND", "OR"):
            raise QueryError("[query_string] default_operator must be AND or OR")
        text = body.get("query")
        if not isinstance(text, str):
            raise QueryError("[query_string] requires a 'query' string")
        dsl = parse_query_string(text, default_field=default if default not in (None, "*") else None,
                                 default_and=op == "AND", time_zone=body.get("time_zone"))
        return self.compile(dsl)


def _min_should(raw: Any, n: int, has_must: bool) -> int:
    if raw is None:
        return 0 if has_must else (1 if n else 0)
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw if raw >= 0 else n + raw
    elif isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        v = int(raw)
        value = v if v >= 0 else n + v
    elif isinstance(raw, str) and re.fullmatch(r"-?\d+%", raw.strip()):
        pct = int(raw.strip()[:-1])
        value = int(n * pct / 100) if pct >= 0 else n - int(n * -pct / 100)
    else:
        raise QueryError(f"[bool] minimum_should_match {raw!r} is not supported (use an integer or a percentage)")
    return max(0, min(value, n + 1))


def named_fields(q: Any) -> set[str]:
    """Field names mentioned in a query (for RBAC's namespace scoping)."""
    out: set[str] = set()
    if isinstance(q, dict):
        for k, v in q.items():
            if k in ("term", "terms", "prefix", "wildcard", "range", "match", "match_phrase") and isinstance(v, dict):
                out |= {f for f in v if f not in _COMMON}
            elif k in ("exists",) and isinstance(v, dict) and isinstance(v.get("field"), str):
                out.add(v["field"])
            elif k in ("query_string", "multi_match"):
                out.add("*")
            else:
                out |= named_fields(v)
    elif isinstance(q, list):
        for v in q:
            out |= named_fields(v)
    return out
