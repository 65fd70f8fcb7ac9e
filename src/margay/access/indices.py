"""Index patterns (as Elasticsearch clients send them) expanded to (log type, cluster) pairs."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from ..logtypes import REGISTRY, LogType

Pair = tuple[LogType, str]


def _names(lt: LogType, cluster: str, day: str | None) -> list[str]:
    names = [f"{lt.index_prefix}.{cluster}"]
    if day:
        names.append(f"{lt.index_prefix}.{cluster}.{day}")
    return names


def expand_pattern(pattern: str, existing: Iterable[tuple[str, str, str | None]]) -> list[Pair]:
    """ES multi-target syntax: comma lists, `*` wildcards, `_all`, and `-expr` exclusions.

    `existing` holds (log type name, cluster, day or None) of the stored partitions; an expression
    matches a pair when it matches `<prefix>.<cluster>` or a daily index `<prefix>.<cluster>.<yyyymmdd>`.
    """
    rows = [(REGISTRY[t], c, d) for t, c, d in existing if t in REGISTRY]
    chosen: dict[tuple[str, str], Pair] = {}
    exprs = [e.strip() for e in (pattern or "_all").split(",") if e.strip()] or ["_all"]
    for i, expr in enumerate(exprs):
        exclude = expr.startswith("-") and i > 0
        if exclude:
            expr = expr[1:]
        for lt, cluster, day in rows:
            names = _names(lt, cluster, day)
            if expr in ("_all", "*") or any(fnmatchcase(n, expr) for n in names):
                if exclude:
                    chosen.pop((lt.name, cluster), None)
                else:
                    chosen[(lt.name, cluster)] = (lt, cluster)
    return sorted(chosen.values(), key=lambda p: (p[0].name, p[1]))
