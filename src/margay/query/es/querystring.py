"""Lucene query_string syntax (as Kibana and Grafana type it) parsed into query DSL.

Supported: `field:value`, `field:"phrase"`, `field:(a OR b)`, wildcards (`field:web-*`), `field:*`,
`_exists_:field`, ranges (`field:[a TO b]`, `{a TO b}`, `field:>=10`), AND/OR/NOT/&&/||/!, `+`/`-`,
grouping, and bare terms when a default field is given. Clauses combine with Lucene's classic rules
(QueryParserBase.addClause), so `a OR b AND c` means what it means in Elasticsearch.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import QueryError

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<and>AND\b|&&)
  | (?P<or>OR\b|\|\|)
  | (?P<not>NOT\b|!)
  | (?P<plus>\+)
  | (?P<minus>-)
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<range>[\[{][^\]}]*[\]}])
  | (?P<term>(?:[^\s()"\\:\[\]{}]|\\.)+(?::(?![\s)]))?)
""", re.VERBOSE)

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


class _Parser:
    def __init__(self, text: str, default_field: str | None, default_and: bool, time_zone: str | None) -> None:
        self.text = text
        self.default_field = default_field
        self.default_and = default_and
        self.time_zone = time_zone
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise QueryError(f"[query_string] cannot parse {text!r} at character {pos}: {text[pos:pos + 10]!r}")
            kind = m.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> dict[str, Any]:
        q = self.group(None)
        extra = self.peek()
        if extra is not None:
            raise QueryError(f"[query_string] unexpected {extra[1]!r} at character {extra[2]}")
        return q

    def group(self, field: str | None) -> dict[str, Any]:
        """A sequence of clauses up to ')' or the end, combined by Lucene's addClause rules."""
        clauses: list[list[Any]] = []  # [occur, query]
        first = True
        while True:
            tok = self.peek()
            if tok is None or tok[0] == "rp":
                break
            conj = None
            if tok[0] in ("and", "or"):
                if first:
                    raise QueryError(f"[query_string] {tok[1]} at character {tok[2]} has nothing on its left")
                conj = tok[0]
                self.take()
            mods = None
            tok = self.peek()
            if tok is not None and tok[0] in ("not", "plus", "minus"):
                mods = "not" if tok[0] in ("not", "minus") else "req"
                self.take()
            q = self.clause(field)
            if clauses and conj == "and":
                if clauses[-1][0] != MUST_NOT:
                    clauses[-1][0] = MUST
            if clauses and self.default_and and conj == "or":
                if clauses[-1][0] != MUST_NOT:
                    clauses[-1][0] = SHOULD
            if not self.default_and:
                prohibited = mods == "not"
                required = mods == "req" or (conj == "and" and not prohibited)
            else:
                prohibited = mods == "not"
                required = not prohibited and conj != "or"
            occur = MUST if required and not prohibited else SHOULD if not prohibited else MUST_NOT
            clauses.append([occur, q])
            first = False
        if not clauses:
            raise QueryError("[query_string] empty query")
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            only: dict[str, Any] = clauses[0][1]
            return only
        out: dict[str, list[Any]] = {}
        for occur, q in clauses:
            out.setdefault(occur, []).append(q)
        if MUST not in out and SHOULD not in out:
            out[MUST] = [{"match_all": {}}]  # a purely negative query matches all others (as ES does)
        return {"bool": out}

    def clause(self, field: str | None) -> dict[str, Any]:
        tok = self.peek()
        if tok is None:
            raise QueryError("[query_string] the query ends where a term was expected")
        kind, text, pos = tok
        if kind == "lp":
            self.take()
            q = self.group(field)
            close = self.peek()
            if close is None or close[0] != "rp":
                raise QueryError(f"[query_string] unclosed '(' at character {pos}")
            self.take()
            return q
        if kind == "term" and text.endswith(":") and not text.endswith("\\:"):
            self.take()
            name = _unescape(text[:-1])
            if field is not None:
                raise QueryError(f"[query_string] nested field {name!r} inside a field group")
            if name == "_exists_":
                nxt = self.take() if self.peek() else None
                if nxt is None or nxt[0] != "term":
                    raise QueryError("[query_string] _exists_ needs a field name")
                return {"exists": {"field": _unescape(nxt[1])}}
            nxt = self.peek()
            if nxt is None:
                raise QueryError(f"[query_string] field {name!r} has no value")
            if nxt[0] == "lp":
                self.take()
                q = self.group(name)
                close = self.peek()
                if close is None or close[0] != "rp":
                    raise QueryError(f"[query_string] unclosed '(' at character {nxt[2]}")
                self.take()
                return q
            return self.value(name)
        return self.value(field)

    def value(self, field: str | None) -> dict[str, Any]:
        kind, text, pos = self.take()
        if field is None:
            if kind == "term" and text == "*":
                return {"match_all": {}}
            field = self.default_field or "*"  # Elasticsearch's index.query.default_field
        if "*" in field or "?" in field:  # every field the pattern names, leniently (query/es/multifield.py)
            if kind in ("quoted", "term") and not re.search(r"(?<!\\)[*?~^]", text) and not text.startswith(
                    ("/", ">", "<")):
                value = _unescape(text[1:-1] if kind == "quoted" else text)
                return {"multi_match": {"query": value, "fields": [field], "lenient": True,
                                        "type": "phrase" if kind == "quoted" else "best_fields"}}
            raise QueryError(f"[query_string] {text!r} at character {pos} over several fields ({field!r}): only "
                             "plain terms and phrases are supported there; name the field for wildcards and ranges")
        if kind == "quoted":
            return {"match_phrase": {field: _unescape(text[1:-1])}}
        if kind == "range":
            return self.range(field, text)
        if kind != "term":
            raise QueryError(f"[query_string] unexpected {text!r} at character {pos}")
        if text.startswith("/"):
            raise QueryError("[query_string] regular expressions are not supported")
        if text.endswith("~") or re.search(r"(?<!\\)~\d*$", text) or re.search(r"(?<!\\)\^[\d.]+$", text):
            raise QueryError("[query_string] fuzzy, proximity and boost operators are not supported")
        for op in (">=", "<=", ">", "<"):
            if text.startswith(op):
                bound = _unescape(text[len(op):])
                key = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]
                return {"range": {field: self._tz({key: bound})}}
        if text == "*":
            return {"exists": {"field": field}}
        if re.search(r"(?<!\\)[*?]", text):
            return {"wildcard": {field: {"value": text}}}
        return {"match": {field: _unescape(text)}}

    def _tz(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.time_zone:
            spec["time_zone"] = self.time_zone
        return spec

    def range(self, field: str, text: str) -> dict[str, Any]:
        m = re.fullmatch(r"([\[{])\s*(\S+|\"[^\"]*\")\s+TO\s+(\S+|\"[^\"]*\")\s*([\]}])", text)
        if not m:
            raise QueryError(f"[query_string] cannot read the range {text!r}: write [a TO b] or {{a TO b}}")
        lo, hi = m.group(2).strip('"'), m.group(3).strip('"')
        spec: dict[str, Any] = {}
        if lo != "*":
            spec["gte" if m.group(1) == "[" else "gt"] = _unescape(lo)
        if hi != "*":
            spec["lte" if m.group(4) == "]" else "lt"] = _unescape(hi)
        return {"range": {field: self._tz(spec)}}


def parse_query_string(text: str, *, default_field: str | None = None, default_and: bool = False,
                       time_zone: str | None = None) -> dict[str, Any]:
    if not text.strip():
        return {"match_all": {}}
    return _Parser(text, default_field, default_and, time_zone).parse()
