"""The selector parser: operators, precedence, quoting, sets, rendering, and every error with its position."""

from __future__ import annotations

import pytest

from margay.errors import QueryError
from margay.query import selector as sel
from margay.query.selector import And, Compare, InSet, Not, Or, parse_selector, render, tokenize


def c(key: str, op: str, value: sel.Value) -> Compare:
    return Compare(key, op, value)


# -- leaves -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_comparison_operator(op: str) -> None:
    assert parse_selector(f"dest_port {op} 443") == c("dest_port", op, 443)
    assert parse_selector(f"dest_port{op}443") == c("dest_port", op, 443)


@pytest.mark.parametrize("key", ["source_labels.labels", "client_labels.app", "dns.question.name", "@timestamp",
                                 "objectRef.name", "annotations.authorization.k8s.io/decision",
                                 "client_labels.pod-template-hash", "_x1"])
def test_key_shapes(key: str) -> None:
    assert parse_selector(f"{key} = v") == c(key, "=", "v")


def test_quoted_keys() -> None:
    assert parse_selector('"odd key" = v') == c("odd key", "=", "v")
    assert parse_selector("'in' = v") == c("in", "=", "v")


@pytest.mark.parametrize(("text", "value"), [
    ("allow", "allow"), ("web-5d8c9-*", "web-5d8c9-*"), ("10.0.0.1", "10.0.0.1"), ("10.0.0.0/8", "10.0.0.0/8"),
    ("fe80::1", "fe80::1"), ("2023-11-14T22:13:20+00:00", "2023-11-14T22:13:20+00:00"), ("now-15m", "now-15m"),
    ("-", "-"), ("443", 443), ("-5", -5), ("1.5", 1.5), ("1e+16", 1e16), ("007", "007"), ("1.50", "1.50"),
    ('"443"', "443"), ('""', ""), ('"-"', "-"), ("'single'", "single"), ('"two words"', "two words"),
    ('"AND"', "AND"), ('"x\' OR 1=1 --"', "x' OR 1=1 --"), ("true", "true"),
])
def test_values(text: str, value: sel.Value) -> None:
    node = parse_selector(f"k = {text}")
    assert node == c("k", "=", value)
    assert type(node.value) is type(value)  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "value"), [
    (r'"say \"hi\""', 'say "hi"'), (r"'it\'s'", "it's"), (r'"back\\slash"', "back\\slash"),
    (r'"a\*"', "a\\*"), (r'"a\\*"', "a\\*"), (r'"tab\t"', "tab\\t"), ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'),
    ('"line\nbreak"', "line\nbreak"), (r'"ends\\"', "ends\\"),
])
def test_string_escapes(text: str, value: str) -> None:
    # Only quotes and the backslash are unescaped; `\*` stays as written so a set member can mean a literal star.
    assert parse_selector(f"k = {text}") == c("k", "=", value)


def test_positions_of_key_and_value() -> None:
    node = parse_selector("  action   =  'allow'")
    assert isinstance(node, Compare)
    assert (node.pos, node.value_pos) == (2, 14)
    node = parse_selector('a = 1 AND dest_domains IN {x, "y"}')
    assert isinstance(node, And)
    leaf = node.items[1]
    assert isinstance(leaf, InSet)
    assert (leaf.pos, leaf.value_pos) == (10, (27, 30))


def test_positions_take_no_part_in_equality() -> None:
    assert Compare("a", "=", 1, pos=3, value_pos=7) == Compare("a", "=", 1)


# -- sets -------------------------------------------------------------------------------------------------

def test_sets() -> None:
    assert parse_selector('dest_domains IN {"*.example.com", api.stripe.com, 3, \'a?c\'}') == InSet(
        "dest_domains", ("*.example.com", "api.stripe.com", 3, "a?c"))
    assert parse_selector("k NOTIN {a}") == InSet("k", ("a",), negated=True)
    assert parse_selector("k NOT IN {a}") == InSet("k", ("a",), negated=True)
    assert parse_selector("k in {a,b}") == InSet("k", ("a", "b"))
    assert parse_selector("k notin {a}") == InSet("k", ("a",), negated=True)
    assert parse_selector("k IN {}") == InSet("k", ())
    assert parse_selector("k IN {web-*,*.svc}") == InSet("k", ("web-*", "*.svc"))


# -- combinations and precedence ---------------------------------------------------------------------------

A, B, C = c("a", "=", 1), c("b", "=", 2), c("c", "=", 3)


@pytest.mark.parametrize(("text", "tree"), [
    ("a = 1 AND b = 2", And((A, B))),
    ("a = 1 and b = 2 AnD c = 3", And((A, B, C))),
    ("a = 1 && b = 2", And((A, B))),
    ("a = 1 OR b = 2", Or((A, B))),
    ("a = 1 || b = 2 or c = 3", Or((A, B, C))),
    ("NOT a = 1", Not(A)),
    ("not a = 1", Not(A)),
    ("!a = 1", Not(A)),
    ("!!a = 1", Not(Not(A))),
    ("! (a = 1)", Not(A)),
    ("a = 1 OR b = 2 AND c = 3", Or((A, And((B, C))))),
    ("a = 1 AND b = 2 OR c = 3", Or((And((A, B)), C))),
    ("(a = 1 OR b = 2) AND c = 3", And((Or((A, B)), C))),
    ("NOT a = 1 AND b = 2", And((Not(A), B))),
    ("NOT a = 1 OR b = 2", Or((Not(A), B))),
    ("NOT (a = 1 OR b = 2)", Not(Or((A, B)))),
    ("((a = 1))", A),
    ("(a = 1 AND b = 2) AND c = 3", And((And((A, B)), C))),
    ("a=1&&!b=2||c=3", Or((And((A, Not(B))), C))),
])
def test_precedence(text: str, tree: sel.Node) -> None:
    assert parse_selector(text) == tree


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_is_none(text: str) -> None:
    assert parse_selector(text) is None


def test_depth_limit_is_inclusive() -> None:
    assert parse_selector("(" * 100 + "a = 1" + ")" * 100) == A
    assert parse_selector("NOT " * 100 + "a = 1") is not None


# -- errors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "position", "message"), [
    ("action =", 8, "expected a value after '=' at position 8, found the end of the selector"),
    ("action = )", 9, "expected a value after '=' at position 9, found ')'"),
    ("action = AND", 9, "expected a value after '=' at position 9, found 'AND'"),
    ("action == allow", 8, "expected a value after '=' at position 8, found '='"),
    ("action = allow AND", 18, "expected a key at position 18, found the end of the selector"),
    ("= allow", 0, "expected a key at position 0, found '='"),
    ("5 = x", 0, "expected a key at position 0, found '5'"),
    ('"" = x', 0, "expected a key at position 0, found '\"\"'"),
    ("web-* = x", 0, "expected a key at position 0, found 'web-*'"),
    ("()", 1, "expected a key at position 1, found ')'"),
    ("NOT", 3, "expected a key at position 3, found the end of the selector"),
    ("action allow", 7, "expected an operator (=, !=, <, <=, >, >=, IN or NOTIN) after the key 'action' at position 7"),
    ("action", 6, "expected an operator"),
    ("(action = allow", 15, "expected ')' at position 15, found the end of the selector "
                            "(the '(' at position 0 is still open)"),
    ("((a = 1) OR (b = 2)", 19, "(the '(' at position 0 is still open)"),
    ("action = allow)", 14, "unexpected ')' without a matching '(' at position 14"),
    ("action = allow deny", 15, "expected AND, OR or the end of the selector at position 15, found 'deny'"),
    ("a = 1 b = 2", 6, "expected AND, OR or the end of the selector at position 6, found 'b'"),
    ('action = "allow', 9, "unterminated string starting at position 9"),
    ("action = 'allow", 9, "unterminated string starting at position 9"),
    ('k = "ends\\"', 4, "unterminated string starting at position 4"),
    ("a IN x", 5, "expected '{' after IN at position 5, found 'x'"),
    ("a NOTIN (x)", 8, "expected '{' after NOTIN at position 8, found '('"),
    ("a IN {x y}", 8, "expected ',' or '}' in the set at position 8, found 'y' (the set opened at position 5)"),
    ("a IN {x,}", 8, "expected a value in the set at position 8, found '}' (the set opened at position 5)"),
    ("a IN {x", 7, "expected ',' or '}' in the set at position 7, found the end of the selector"),
    ("a IN {{x}}", 6, "expected a value in the set at position 6, found '{'"),
    ("a # b", 2, "unexpected character '#' at position 2"),
    ("a = b & c = d", 6, "unexpected character '&' at position 6"),
    ("a = b | c = d", 6, "unexpected character '|' at position 6"),
    ("a = ${name}", 4, "unexpected character '$' at position 4"),
    ("a = (b)", 4, "expected a value after '=' at position 4, found '('"),
])
def test_errors_point_at_the_character(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_selector(text)
    assert err.value.details == {"position": position, "selector": text}
    assert message in err.value.message
    assert err.value.message.startswith("selector: ")
    assert err.value.status == 400


def test_error_has_a_caret_line() -> None:
    with pytest.raises(QueryError) as err:
        parse_selector("action = allow AND dest_port =")
    assert err.value.message == (
        "selector: expected a value after '=' at position 30, found the end of the selector\n"
        "  action = allow AND dest_port =\n"
        "                                ^")


def test_caret_on_a_long_and_multiline_selector() -> None:
    text = "a = 1 AND\n" + " AND ".join(f"k{i} = {i}" for i in range(40)) + " AND )"
    with pytest.raises(QueryError) as err:
        parse_selector(text)
    pos = err.value.details["position"]
    assert text[pos] == ")"
    _, line, marker = err.value.message.split("\n")
    assert line.startswith("  …") and line.endswith(")")
    assert line[marker.index("^")] == ")"


def test_too_deep() -> None:
    text = "(" * 101 + "a = 1" + ")" * 101
    with pytest.raises(QueryError) as err:
        parse_selector(text)
    assert err.value.details["position"] == 100
    assert "nests deeper than 100 levels at position 100" in err.value.message
    with pytest.raises(QueryError) as err:
        parse_selector("NOT " * 101 + "a = 1")
    assert err.value.details["position"] == 400


def test_too_long() -> None:
    text = "a = 1 OR " * 1111 + "a = 1"
    assert len(text) > sel.MAX_LENGTH
    with pytest.raises(QueryError) as err:
        parse_selector(text)
    assert err.value.details == {"position": 10_000, "length": len(text)}
    assert "longer than 10000 characters" in err.value.message
    exactly = ("a = 1" + " OR a = 1" * 1000).ljust(sel.MAX_LENGTH)
    assert parse_selector(exactly) is not None


def test_too_many_set_members(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under the 10,000-character limit a set cannot reach 10,000 members; a smaller bound shows the check.
    monkeypatch.setattr(sel, "MAX_SET_SIZE", 3)
    assert parse_selector("k IN {a, b, c}") == InSet("k", ("a", "b", "c"))
    with pytest.raises(QueryError) as err:
        parse_selector("k IN {a, b, c, d}")
    assert err.value.details["position"] == 15
    assert "a set holds at most 3 values" in err.value.message


# -- tokens and rendering ----------------------------------------------------------------------------------

def test_tokens() -> None:
    kinds = [t.kind for t in tokenize("a<=1 && !(b IN {x,'y'}) || c NotIn {}")]
    assert kinds == ["word", "op", "word", "and", "not", "lparen", "word", "in", "lbrace", "word", "comma", "str",
                     "rbrace", "rparen", "or", "word", "notin", "lbrace", "rbrace", "end"]


@pytest.mark.parametrize(("tree", "text"), [
    (Or((A, And((B, C)))), "a = 1 OR b = 2 AND c = 3"),
    (And((Or((A, B)), C)), "(a = 1 OR b = 2) AND c = 3"),
    (Not(And((A, B))), "NOT (a = 1 AND b = 2)"),
    (Not(Not(A)), "NOT NOT a = 1"),
    (Or((Or((A, B)), C)), "(a = 1 OR b = 2) OR c = 3"),
    (InSet("dest_domains", ("*.example.com", "x y", 3, "80", "and"), negated=True),
     'dest_domains NOTIN {*.example.com, "x y", 3, "80", "and"}'),
    (c("odd key", ">=", 1.5), '"odd key" >= 1.5'),
    (c("notin", "=", 'say "hi" \\o/'), '"notin" = "say \\"hi\\" \\\\o/"'),
    (c("k", "=", ""), 'k = ""'),
])
def test_render(tree: sel.Node, text: str) -> None:
    assert render(tree) == text
    assert parse_selector(text) == tree
