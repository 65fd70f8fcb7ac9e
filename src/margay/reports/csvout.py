"""Every report CSV download is written here: by `csv.writer` (RFC 4180: a cell holding a comma, quote, CR or
newline is quoted, quotes doubled), so a value cannot add columns or rows; and with text cells that a
spreadsheet would run as a formula neutralised (OWASP "CSV injection"): a text cell starting with `=`, `+`,
`-`, `@`, a tab or a CR gets a leading `'`. Values come from clusters' writer tokens (kube-bench node names
and test texts, endpoint names), so they are never trusted to be inert.

Numbers written as numbers stay as they are (a negative count is `-3`), and so do two kinds of text that
cannot hold a formula: a plain number (`-3`, `+1.5e3`, which spreadsheets read as that number) and Calico's
`-` placeholder alone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutral(text: str) -> str:
    """`text` as a spreadsheet shows it and never evaluates: `'` before a leading = + - @ tab or CR."""
    if text.startswith(FORMULA_START) and text != "-" and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def cell(v: Any) -> str | int | float:
    """A value as a CSV cell, as Calico's Go templates render it: booleans true/false, times RFC 3339,
    lists joined by `;` (each item neutralised: some spreadsheets split on `;`), numbers as numbers."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return v
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ";".join(neutral(str(x)) for x in v)
    return neutral(str(v))


def render(header: Sequence[str], rows: Iterable[Sequence[Any]], *, single: bool = False,
           blank_line: bool = False, quote_last: bool = False) -> str:
    """A header line, then one line per row (each cell through `cell`). `single`: no final newline (Calico's
    single-row summaries); `blank_line`: an empty line at the end (Calico's per-node CIS files);
    `quote_last`: the last cell of every row always quoted (the CIS files' remediation column)."""
    buf = io.StringIO()
    lines = csv.writer(buf, lineterminator="\n")
    lines.writerow(header)
    # For quote_last, a row is written in two parts to the same buffer: the leading cells, each quoted when
    # needed and the line ended by the separator, then the last cell always quoted and the real line end.
    leading = csv.writer(buf, lineterminator=",")
    last = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [cell(v) for v in row]
        if quote_last and len(cells) > 1:
            if cells[:-1] == [""]:
                buf.write(",")  # (csv.writer writes a row of one empty cell as `""`)
            else:
                leading.writerow(cells[:-1])
            last.writerow(cells[-1:])
        else:
            lines.writerow(cells)
    text = buf.getvalue()
    if single:
        return text[:-1]
    return text + "\n" if blank_line else text


def render_csv(columns: list[str], rows: list[dict[str, Any]], *, single: bool = False) -> str:
    """Calico's csv renderer over report rows (dicts): the columns' values in order, a line per row."""
    return render(columns, ([r.get(c) for c in columns] for r in rows), single=single)
