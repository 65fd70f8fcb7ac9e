"""What the compactor's memory cap costs a cold day's merge: one sorted COPY of N flow rows, as layout.py writes
a shared file, on a single-threaded DuckDB engine capped at each limit (a fresh process per run for its peak
RSS: run it under `/usr/bin/time -f %M`).

    python merge_cap_sort.py prepare STORE_DATA_DIR WORK   # the store's flows, back in arrival (`_seq`) order
    python merge_cap_sort.py sort WORK ROWS LIMIT          # e.g. 1000000 288MB: CPU-s and wall of the merge

STORE_DATA_DIR: a `margay serve --data-dir` after the peers scenario's full load (2 M flows, one day).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

from margay.logtypes import get
from margay.store.duckdb.layout import Layout, layout_sort
from margay.store.sql import quote_ident


def prepare(data: Path, work: Path) -> None:
    files = [str(p) for p in sorted((data / "store" / "flows").rglob("*.parquet")) if ".rollup-" not in p.name]
    work.mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet(?) ORDER BY _seq) TO '{work / 'arrival'}' "
                             "(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880, FILE_SIZE_BYTES '20MB')",
                             [files])


def sort(work: Path, rows: int, limit: str) -> None:
    inputs = [str(p) for p in sorted((work / "arrival").glob("*.parquet"))]
    order = ", ".join(quote_ident(c) for c in layout_sort(get("flows")))
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    cpu, wall = time.process_time(), time.perf_counter()
    con.execute(f"COPY (SELECT * FROM (SELECT * FROM read_parquet(?) WHERE _seq < (SELECT min(_seq) FROM "
                f"read_parquet(?)) + ?) ORDER BY {order}) TO '{work / 'out.parquet'}' ({Layout._format(Layout())})",
                [inputs, inputs, rows])
    n = con.execute(f"SELECT count(*) FROM '{work / 'out.parquet'}'").fetchone()[0]  # type: ignore[index]
    print(f"limit {limit}: {time.process_time() - cpu:.1f} CPU-s, wall {time.perf_counter() - wall:.1f} s, {n} rows")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sort(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
