"""Calico and Kubernetes label selectors: every operator, Calico's semantics for absent labels, errors."""

from __future__ import annotations

import pytest

from margay.errors import ParseError
from margay.reports.selector import parse_calico, parse_k8s

WEB = {"app": "web", "tier": "front", "env": "prod-eu"}


@pytest.mark.parametrize(("text", "labels", "is_global", "want"), [
    ("", WEB, False, True),
    ("all()", {}, False, True),
    ('app == "web"', WEB, False, True),
    ("app == 'db'", WEB, False, False),
    ('app != "db"', WEB, False, True),
    ('missing != "x"', WEB, False, True),  # != matches resources without the label
    ('app in {"db", "web"}', WEB, False, True),
    ('missing in {"x"}', WEB, False, False),
    ('app not in {"web"}', WEB, False, False),
    ('missing not in {"x"}', WEB, False, True),
    ("has(tier)", WEB, False, True),
    ("!has(tier)", WEB, False, False),
    ('has(app) && !(tier == "back" || env == "dev")', WEB, False, True),
    ('app == "db" || tier == "front" && env == "x"', WEB, False, False),  # && binds tighter than ||
    ("global()", {}, True, True),
    ("global()", {}, False, False),
    ('env starts with "prod"', WEB, False, True),
    ('env ends with "-eu"', WEB, False, True),
    ('env contains "d-e"', WEB, False, True),
    ('projectcalico.org/namespace == "shop"', {"projectcalico.org/namespace": "shop"}, False, True),
])
def test_calico(text: str, labels: dict[str, str], is_global: bool, want: bool) -> None:
    assert parse_calico(text)(labels, is_global) is want


@pytest.mark.parametrize(("text", "message"), [
    ("app ==", "expected a quoted value at offset 6"),
    ("app = 'x'", "unexpected character '=' at offset 4"),
    ("(has(a)", r"expected \) at offset 7"),
    ("app in 'x'", r"expected \{ at offset 7"),
    ('a == "x" b', "expected &&, || or the end at offset 9"),
])
def test_calico_errors_name_field_and_offset(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=r"^spec\.selector: " + message):
        parse_calico(text, "spec.selector")


def test_k8s() -> None:
    sel = parse_k8s({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["front"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "gone", "operator": "DoesNotExist"}, {"key": "app", "operator": "Exists"}]})
    assert sel is not None and sel(WEB, False) is True
    assert sel({**WEB, "gone": "1"}, False) is False
    everything = parse_k8s({})
    assert everything is not None and everything({}, False) is True
    assert parse_k8s(None) is None
    with pytest.raises(ParseError, match=r"podSelector\.matchExpressions\[0\]\.operator: expected In"):
        parse_k8s({"matchExpressions": [{"key": "a", "operator": "Near"}]}, "podSelector")
