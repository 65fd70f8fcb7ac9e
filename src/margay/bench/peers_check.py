"""The peers scenario's answers in common terms, and the check that every system answered alike.

A figure compared across systems is only worth something if each was asked the same thing and answered it
the same way: each system's answer to each question is reduced to what must agree (page sizes, the top 10
destinations with their bytes, the namespace graph's edges with bytes and flows), and the run fails when a
system's reduced answer differs from the first system's that gave one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from .data import END

DAY = (END - timedelta(hours=24), END)
WEEK = (END - timedelta(days=7), END)
CLUSTER = "cluster"  # the questions ask one cluster, as the UI does

# A timed question: run it once, return anything (the answer is materialised, as a client would).
Question = Callable[[], Any]
# (source namespace, dest namespace, action) -> (bytes, flows)
Graph = dict[tuple[str, str, str], tuple[int, int]]


def _rows(answer: Any) -> list[dict[str, Any]]:
    """JSONEachRow text (chDB) or a list of rows (VictoriaLogs) as rows."""
    if isinstance(answer, str):
        return [orjson.loads(x) for x in answer.splitlines() if x.strip()]
    return list(answer)


def _num(v: Any) -> int:
    """A count or sum as an integer: chDB quotes 64-bit integers, VictoriaLogs answers strings of floats."""
    return int(float(v))


def _graph_buckets(aggs: dict[str, Any]) -> Graph:
    out: Graph = {}
    for s in aggs["src"]["buckets"]:
        for d in s["dst"]["buckets"]:
            for a in d["action"]["buckets"]:
                out[(s["key"], d["key"], a["key"])] = (_num(a["bytes"]["value"]), _num(a["flows"]["value"]))
    return out


def reduce(system: str, question: str, answer: Any) -> Any:
    """What of `answer` must agree across systems; None where a system's answer is not comparable (margay's
    flow graph folds both reporters' flows into edges between nodes: not a sum per namespace pair)."""
    if question == "search":  # a list of pages (or of page sizes)
        return [p if isinstance(p, int) else len(_page(system, p)) for p in answer]
    if question == "denied":
        return len(_page(system, answer))
    if question == "topdest":
        if system == "margay":
            return {b["key"]: _num(b["bytes"]["value"]) for b in answer["dest"]["buckets"]}
        if system == "opensearch":
            return {b["key"]: _num(b["bytes"]["value"]) for b in answer["aggregations"]["dest"]["buckets"]}
        return {r["dest_name_aggr"]: _num(r["b"]) for r in _rows(answer)}
    if question == "flowgraph":
        if system == "margay":
            return None
        if system == "opensearch":
            return _graph_buckets(answer["aggregations"])
        out: Graph = {}
        for r in _rows(answer):
            bytes_, flows = (r["sum(bytes_in)"], r["sum(num_flows)"]) if system == "clickhouse" else (r["bytes"], r["flows"])
            out[(r["source_namespace"], r["dest_namespace"], r["action"])] = (_num(bytes_), _num(flows))
        return out
    raise ValueError(f"unknown question {question!r}")


def _page(system: str, answer: Any) -> list[Any]:
    if system == "margay":
        return list(answer["items"])
    if system == "opensearch":
        return list(answer["hits"]["hits"])
    return _rows(answer)


def disagreements(answers: dict[str, dict[str, Any]]) -> list[str]:
    """`answers`: system label -> question -> reduced answer, in the order the systems ran. Each question's
    answers are compared with the first comparable one; returns one line per system and question that differs."""
    out: list[str] = []
    questions = sorted({q for a in answers.values() for q in a})
    for q in questions:
        reference: tuple[str, Any] | None = None
        for label, asked in answers.items():
            got = asked.get(q)
            if got is None:
                continue
            if reference is None:
                reference = (label, got)
                if not got or (isinstance(got, list) and not any(got)):
                    out.append(f"{q}: {label} answered nothing ({got!r}): nothing to compare")
                continue
            if got != reference[1]:
                out.append(f"{q}: {label} answered {_short(got)}, {reference[0]} {_short(reference[1])}")
    return out


def _short(v: Any) -> str:
    text = repr(sorted(v.items()) if isinstance(v, dict) else v)
    return text if len(text) <= 300 else text[:300] + "…"
