"""Report CSVs (reports/csvout.py): RFC 4180 quoting through csv.writer, formula cells neutralised."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from margay.reports import csvout, inventory


@pytest.mark.parametrize(("value", "shown"), [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-", "-"), ("-3", "-3"), ("+1.5e3", "+1.5e3"), ("-.5", "-.5"),
    ("-3 days", "'-3 days"), ("node-a", "node-a"), ("", ""), (" =1", " =1"),
])
def test_text_cells(value: str, shown: str) -> None:
    assert csvout.cell(value) == shown


def test_other_values() -> None:
    assert [csvout.cell(v) for v in (True, False, None, -3, -1.5, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                                     ["a", "=b", "-"])] == ["true", "false", "", -3, -1.5, "2026-01-02T03:04:05Z",
                                                            "a;'=b;-"]


def test_render_layouts() -> None:
    assert csvout.render(["a", "b"], [[1, "x"]], single=True) == "a,b\n1,x"
    assert csvout.render(["a", "b"], [[1, "x"]], blank_line=True) == "a,b\n1,x\n\n"
    assert csvout.render(["a", "b", "c"], [["p,q", -2, "r"]], quote_last=True) == 'a,b,c\n"p,q",-2,"r"\n'
    assert csvout.render(["a", "b"], [["", "r"]], quote_last=True) == 'a,b\n,"r"\n'


def test_inventory_rows_neutralise_formulas() -> None:
    """inventory.render_csv (every inventory, network-access and policy-audit file) goes through csvout."""
    text = inventory.render_csv(["endpoint", "ingressProtected", "services"],
                                [{"endpoint": '=HYPERLINK("http://e/")', "ingressProtected": True,
                                  "services": ["-x", "ok,\"y\"\nz"]}])
    assert list(csv.reader(io.StringIO(text))) == [["endpoint", "ingressProtected", "services"],
                                                    ["'=HYPERLINK(\"http://e/\")", "true", "'-x;ok,\"y\"\nz"]]
