"""In-process CPU of the peers scenario's denied page and 3-page search, calls alternating (in one process, on one
store) between the document fetch with columns NULL in every file read rendered as constants (`Reader._nulls_of`,
s10-search) and with every column decoded (as before). Run: python search_nulls_ab.py PEERS_DATA_DIR [ROUNDS]
(a copy of peers_ab.py load's WORK/data). Prints min / p25 / median CPU-ms per call of each."""

from __future__ import annotations

import resource
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from margay.bench.data import END
from margay.logtypes import REGISTRY
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb.reader import Reader


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def flows(sel: str) -> Query:
    return Query(REGISTRY["flows"], ["cluster"], start=END - timedelta(hours=24), end=END, size=100,
                 selector=parse_selector(sel), sort=[SortKey("end_time", True)], now=END)


def three(s: DuckDBBackend, q: Query) -> None:
    r = s.search(q)
    r = s.search(replace(q, after_key=r.after_key))
    s.search(replace(q, after_key=r.after_key))


def main(data: Path, rounds: int) -> None:
    store = DuckDBBackend(data, compact_interval=3600)
    on = Reader._nulls_of
    modes: dict[str, Any] = {"decoded": lambda self, files, rel: frozenset(), "constants": on}
    den = flows('source_namespace = "shop" AND action = "deny"')
    alw = flows('source_namespace = "shop" AND action = "allow"')
    res: dict[tuple[str, str], list[float]] = {(k, m): [] for k in ("denied", "search3") for m in modes}
    for _ in range(3):
        for fn in modes.values():
            Reader._nulls_of = fn  # type: ignore[method-assign]
            store.search(den)
            three(store, alw)
    for r in range(rounds):
        for m in (list(modes) if r % 2 else list(reversed(modes))):
            Reader._nulls_of = modes[m]  # type: ignore[method-assign]
            c0 = cpu()
            store.search(den)
            res[("denied", m)].append((cpu() - c0) * 1000)
            c0 = cpu()
            three(store, alw)
            res[("search3", m)].append((cpu() - c0) * 1000)
    store.close()
    for (q, m), xs in res.items():
        xs.sort()
        print(q, m, "min", round(xs[0], 2), "p25", round(xs[len(xs) // 4], 2), "median", round(xs[len(xs) // 2], 2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 60)
