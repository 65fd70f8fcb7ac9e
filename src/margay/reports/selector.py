"""Calico's label selector language and Kubernetes label selectors, evaluated against resource labels.

Calico: `==`, `!=`, `in {..}`, `not in {..}`, `has(k)`, `!`, `&&`, `||`, `( )`, `all()`, `global()`,
`contains`, `starts with`, `ends with`; the empty selector selects everything. `!=` and `not in` also match
resources without the label, as in Calico. `global()` selects resources outside any namespace (a
namespaceSelector's way of naming global network sets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ParseError

Labels = Mapping[str, str]
Predicate = Callable[[Labels, bool], bool]  # (labels, is_global) -> matches

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<op>==|!=|&&|\|\||!|\(|\)|\{|\}|,)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<word>[A-Za-z0-9_./\-]+)
    )""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str  # op, str, word, end
    text: str
    pos: int


def _tokens(text: str, what: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ParseError(f"{what}: unexpected character {text[pos:].lstrip()[:1]!r} at offset "
                             f"{pos + len(text[pos:]) - len(text[pos:].lstrip())} in selector {text!r}")
        kind = m.lastgroup or "op"
        value = m.group(kind)
        out.append(_Tok(kind, value, m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.what = text, what
        self.toks = _tokens(text, what)
        self.i = 0

    def fail(self, expected: str) -> ParseError:
        tok = self.toks[self.i]
        got = "the end" if tok.kind == "end" else repr(tok.text)
        return ParseError(f"{self.what}: expected {expected} at offset {tok.pos}, got {got} in selector {self.text!r}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None, kind: str | None = None) -> _Tok | None:
        tok = self.toks[self.i]
        if (text is not None and tok.text != text) or (kind is not None and tok.kind != kind):
            return None
        if text is not None and tok.kind == "str":
            return None
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        if self.peek().kind == "end":
            return lambda labels, is_global: True
        pred = self.or_()
        if self.peek().kind != "end":
            raise self.fail("&&, || or the end")
        return pred

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while self.take("||"):
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda labels, g: any(p(labels, g) for p in parts)

    def and_(self) -> Predicate:
        parts = [self.unary()]
        while self.take("&&"):
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda labels, g: all(p(labels, g) for p in parts)

    def unary(self) -> Predicate:
        if self.take("!"):
            inner = self.unary()
            return lambda labels, g: not inner(labels, g)
        if self.take("("):
            inner = self.or_()
            if not self.take(")"):
                raise self.fail(")")
            return inner
        return self.term()

    def term(self) -> Predicate:
        word = self.take(kind="word")
        if word is None:
            raise self.fail("a label, has(), all(), global(), ! or (")
        name = word.text
        if name in ("all", "global", "has") and self.take("("):
            if name == "has":
                label = self.take(kind="word")
                if label is None:
                    raise self.fail("a label name")
                if not self.take(")"):
                    raise self.fail(")")
                k = label.text
                return lambda labels, g: k in labels
            if not self.take(")"):
                raise self.fail(")")
            if name == "all":
                return lambda labels, g: True
            return lambda labels, g: g
        key = name
        if self.take("=="):
            v = self.value()
            return lambda labels, g: labels.get(key) == v
        if self.take("!="):
            v = self.value()
            return lambda labels, g: labels.get(key) != v
        nxt = self.peek()
        if nxt.kind == "word" and nxt.text in ("in", "not", "contains", "starts", "ends"):
            self.i += 1
            if nxt.text == "in":
                vs = self.value_set()
                return lambda labels, g: key in labels and labels[key] in vs
            if nxt.text == "not":
                if not self.take("in", kind="word"):
                    raise self.fail("in")
                vs = self.value_set()
                return lambda labels, g: key not in labels or labels[key] not in vs
            if nxt.text == "contains":
                v = self.value()
                return lambda labels, g: key in labels and v in labels[key]
            if not self.take("with", kind="word"):
                raise self.fail("with")
            v = self.value()
            if nxt.text == "starts":
                return lambda labels, g: key in labels and labels[key].startswith(v)
            return lambda labels, g: key in labels and labels[key].endswith(v)
        raise self.fail("==, !=, in, not in, contains, starts with or ends with")

    def value(self) -> str:
        tok = self.take(kind="str")
        if tok is None:
            raise self.fail("a quoted value")
        return tok.text[1:-1]

    def value_set(self) -> frozenset[str]:
        if not self.take("{"):
            raise self.fail("{")
        out: set[str] = set()
        if self.take("}"):
            return frozenset()
        while True:
            out.add(self.value())
            if self.take("}"):
                return frozenset(out)
            if not self.take(","):
                raise self.fail(", or }")


def parse_calico(text: Any, what: str = "selector") -> Predicate:
    """A Calico selector as a predicate; malformed text raises ParseError naming `what` and the offset."""
    if text is None:
        return lambda labels, is_global: True
    if not isinstance(text, str):
        raise ParseError(f"{what}: expected a selector string, got {type(text).__name__}")
    if len(text) > 4096:
        raise ParseError(f"{what}: selector longer than 4096 characters")
    return _Parser(text, what).parse()


def parse_k8s(sel: Any, what: str = "selector") -> Predicate | None:
    """A Kubernetes LabelSelector (`matchLabels`, `matchExpressions`); None (absent) is returned as None
    so callers can tell "no selector" from "select everything" (`{}`)."""
    if sel is None:
        return None
    if not isinstance(sel, dict):
        raise ParseError(f"{what}: expected a label selector object, got {type(sel).__name__}")
    checks: list[Callable[[Labels], bool]] = []
    match_labels = sel.get("matchLabels") or {}
    if not isinstance(match_labels, dict) or not all(isinstance(v, str) for v in match_labels.values()):
        raise ParseError(f"{what}.matchLabels: expected an object of string values")
    for k, v in match_labels.items():
        checks.append(_equals(k, v))
    exprs = sel.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise ParseError(f"{what}.matchExpressions: expected a list")
    for n, e in enumerate(exprs):
        where = f"{what}.matchExpressions[{n}]"
        if not isinstance(e, dict) or not isinstance(e.get("key"), str):
            raise ParseError(f"{where}.key: expected a string")
        op, key, values = e.get("operator"), e["key"], e.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ParseError(f"{where}.values: expected a list of strings")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ParseError(f"{where}.operator: expected In, NotIn, Exists or DoesNotExist, got {op!r}")
        checks.append(_expression(key, op, frozenset(values)))
    return lambda labels, is_global: all(c(labels) for c in checks)


def _equals(key: str, value: str) -> Callable[[Labels], bool]:
    return lambda labels: labels.get(key) == value


def _expression(key: str, op: str, values: frozenset[str]) -> Callable[[Labels], bool]:
    if op == "In":
        return lambda labels: labels.get(key) in values
    if op == "NotIn":
        return lambda labels: labels.get(key) not in values
    if op == "Exists":
        return lambda labels: key in labels
    return lambda labels: key not in labels
