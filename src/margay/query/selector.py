"""The selector language of GlobalAlerts and every margay search box: tokens, parser, AST and renderer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError

MAX_LENGTH = 10_000
MAX_DEPTH = 100
MAX_SET_SIZE = 10_000

OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
KEYWORDS = frozenset({"and", "or", "not", "in", "notin"})

Value = str | int | float

# Positions are 0-based character offsets into the selector text; they take no part in equality, so a
# rendered and re-parsed AST compares equal to the original.


@dataclass(frozen=True)
class Compare:
    key: str
    op: str  # one of OPERATORS
    value: Value
    pos: int = field(default=0, compare=False)
    value_pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InSet:
    """`key IN {…}` (or NOTIN when negated); string members with `*` or `?` are wildcard patterns."""

    key: str
    values: tuple[Value, ...]
    negated: bool = False
    pos: int = field(default=0, compare=False)
    value_pos: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | InSet | And | Or | Not

_KEY = re.compile(r"[A-Za-z_@][A-Za-z0-9_@./\-]*")
_WORD = re.compile(r"[A-Za-z0-9_@./:*?+\-]+")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_SIMPLE = [("op", re.compile(r"<=|>=|!=|=|<|>")), ("and", re.compile(r"&&")), ("or", re.compile(r"\|\|")),
           ("not", re.compile(r"!")), ("lparen", re.compile(r"\(")), ("rparen", re.compile(r"\)")),
           ("lbrace", re.compile(r"\{")), ("rbrace", re.compile(r"\}")), ("comma", re.compile(r","))]


@dataclass(frozen=True)
class Token:
    kind: str  # op and or not in notin lparen rparen lbrace rbrace comma str word end
    text: str  # as written
    value: str  # unescaped content for strings, else the text
    pos: int


def caret(text: str, pos: int, width: int = 72) -> str:
    """Two indented lines: the part of `text` around `pos`, and a caret under `pos`."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:len(text) if end < 0 else end].replace("\t", " ").replace("\r", " ")
    col = pos - start
    lo = max(0, min(col - width // 2, len(line) - width))
    hi = min(len(line), lo + width)
    head, tail = ("…" if lo > 0 else ""), ("…" if hi < len(line) else "")
    return f"  {head}{line[lo:hi]}{tail}\n  {' ' * (len(head) + col - lo)}^"


def selector_error(text: str | None, pos: int, what: str, found: str | None = None, tail: str = "",
                   **details: Any) -> QueryError:
    """A QueryError that points at one character of the selector (with a caret line when text is known)."""
    message = f"selector: {what} at position {pos}" + (f", found {found}" if found else "") + tail
    body: dict[str, Any] = {"position": pos}
    if text is not None:
        message += "\n" + caret(text, pos)
        body["selector"] = text
    body.update(details)
    return QueryError(message, details=body)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; keywords are recognised case-insensitively."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "\"'":
            tokens.append(_string(text, i))
            i += len(tokens[-1].text)
            continue
        for kind, rx in _SIMPLE:
            m = rx.match(text, i)
            if m:
                tokens.append(Token(kind, m.group(), m.group(), i))
                i = m.end()
                break
        else:
            m = _WORD.match(text, i)
            if not m:
                raise selector_error(text, i, f"unexpected character {c!r}")
            word = m.group()
            kind = word.lower() if word.lower() in KEYWORDS else "word"
            tokens.append(Token(kind, word, word, i))
            i = m.end()
    tokens.append(Token("end", "", "", n))
    return tokens


def _string(text: str, start: int) -> Token:
    # Backslash escapes the quotes and itself; any other escape is kept as written, so that `\*` reaches
    # a wildcard pattern intact (where it means a literal star, as in Elasticsearch).
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(nxt if nxt in "\"'\\" else c + nxt)
            i += 2
        elif c == quote:
            return Token("str", text[start:i + 1], "".join(out), start)
        else:
            out.append(c)
            i += 1
    raise selector_error(text, start, "unterminated string starting")


def _classify(word: str) -> Value:
    """A bare word as a value: an int or float when it reads back exactly the same, else the text."""
    if _INT.fullmatch(word) and str(int(word)) == word:
        return int(word)
    if _FLOAT.fullmatch(word) and repr(float(word)) == word:
        return float(word)
    return word


def _describe(tok: Token) -> str:
    return "the end of the selector" if tok.kind == "end" else repr(tok.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def fail(self, tok: Token, what: str, tail: str = "") -> QueryError:
        return selector_error(self.text, tok.pos, what, _describe(tok), tail)

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise selector_error(self.text, tok.pos, f"selector nests deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        node = self.or_()
        tok = self.peek()
        if tok.kind == "rparen":
            raise selector_error(self.text, tok.pos, "unexpected ')' without a matching '('")
        if tok.kind != "end":
            raise self.fail(tok, "expected AND, OR or the end of the selector")
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.peek().kind == "or":
            self.next()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.unary()]
        while self.peek().kind == "and":
            self.next()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "not":
            self.next()
            self.enter(tok)
            item = self.unary()
            self.depth -= 1
            return Not(item)
        if tok.kind == "lparen":
            self.next()
            self.enter(tok)
            node = self.or_()
            close = self.peek()
            if close.kind != "rparen":
                raise self.fail(close, "expected ')'", f" (the '(' at position {tok.pos} is still open)")
            self.next()
            self.depth -= 1
            return node
        return self.term()

    def term(self) -> Node:
        tok = self.next()
        if tok.kind == "str" and tok.value:
            key = tok.value
        elif tok.kind == "word" and _KEY.fullmatch(tok.text):
            key = tok.text
        else:
            raise self.fail(tok, "expected a key")
        op = self.next()
        if op.kind == "op":
            value, pos = self.value(f"after '{op.text}'")
            return Compare(key, op.text, value, tok.pos, pos)
        if op.kind in ("in", "notin") or (op.kind == "not" and op.text.lower() == "not"
                                          and self.peek().kind == "in"):
            if op.kind == "not":
                self.next()
            values, positions = self.set_(op)
            return InSet(key, values, op.kind != "in", tok.pos, positions)
        raise self.fail(op, f"expected an operator (=, !=, <, <=, >, >=, IN or NOTIN) after the key {key!r}")

    def value(self, context: str, tail: str = "") -> tuple[Value, int]:
        tok = self.next()
        if tok.kind == "str":
            return tok.value, tok.pos
        if tok.kind == "word":
            return _classify(tok.text), tok.pos
        raise self.fail(tok, f"expected a value {context}", tail)

    def set_(self, op: Token) -> tuple[tuple[Value, ...], tuple[int, ...]]:
        brace = self.next()
        if brace.kind != "lbrace":
            raise self.fail(brace, f"expected '{{' after {op.text.upper()}")
        values: list[Value] = []
        positions: list[int] = []
        if self.peek().kind == "rbrace":
            self.next()
            return (), ()
        while True:
            if len(values) >= MAX_SET_SIZE:
                raise selector_error(self.text, self.peek().pos, f"a set holds at most {MAX_SET_SIZE} values")
            value, pos = self.value("in the set", f" (the set opened at position {brace.pos})")
            values.append(value)
            positions.append(pos)
            sep = self.next()
            if sep.kind == "rbrace":
                return tuple(values), tuple(positions)
            if sep.kind != "comma":
                raise self.fail(sep, "expected ',' or '}' in the set", f" (the set opened at position {brace.pos})")


def parse_selector(text: str) -> Node | None:
    """Parse a selector; a blank one gives None. Errors are QueryErrors that point at the character."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"selector: longer than {MAX_LENGTH} characters ({len(text)})",
                         details={"position": MAX_LENGTH, "length": len(text)})
    if not text.strip():
        return None
    return _Parser(text).parse()


def render(node: Node) -> str:
    """Selector text that parses back to an equal AST."""
    if isinstance(node, Compare):
        return f"{render_key(node.key)} {node.op} {render_value(node.value)}"
    if isinstance(node, InSet):
        return (f"{render_key(node.key)} {'NOTIN' if node.negated else 'IN'} "
                f"{{{', '.join(render_value(v) for v in node.values)}}}")
    if isinstance(node, And):
        return " AND ".join(_wrapped(i, (And, Or)) for i in node.items)
    if isinstance(node, Or):
        return " OR ".join(_wrapped(i, (Or,)) for i in node.items)
    if isinstance(node, Not):
        return "NOT " + _wrapped(node.item, (And, Or))
    raise TypeError(f"not a selector node: {node!r}")


def _wrapped(node: Node, needs_parens: tuple[type, ...]) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, needs_parens) else text


def render_key(key: str) -> str:
    """A key as selector text: bare when it reads back as the same key, else quoted."""
    return key if _KEY.fullmatch(key) and key.lower() not in KEYWORDS else _quote(key)


def render_value(value: Value) -> str:
    """A value as selector text: bare when it reads back as the same value (and type), else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if _WORD.fullmatch(value) and value.lower() not in KEYWORDS and isinstance(_classify(value), str):
        return value
    return _quote(value)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
