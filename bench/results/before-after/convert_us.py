"""In-process CPU of one 10,000-flow batch's conversion (µs per record), the undeclared-key look apart.

    .venv/bin/python bench/results/before-after/convert_us.py OUT.json [--rounds 7]

`Converter.convert` on one single-threaded DuckDB connection (as the server's ingest engine), the peers data's
first batch (9,335 flows, 1.5 kB each), with the look answered by the C scanner (`native`) and by DuckDB alone
(`duckdb`: what a build without the extension does, and what main does), taking turns; and each look on its
own: the scanner's pass and DuckDB's `_UNKNOWN_KEYS` statement. CPU time (process_time) per record; the
median and range of the rounds.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from margay.bench.data import flow_batches, topology
from margay.ingest import keyscan
from margay.ingest.parse import _UNKNOWN_KEYS, Converter
from margay.logtypes import REGISTRY
from margay.logtypes.base import own_keys
from margay.store.duckdb.engine import connect


def _cpu(fn: Callable[[], Any]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    body = next(iter(flow_batches(topology(), 10_000))).body
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    newlines = body.count(b"\n")
    n = newlines + (not body.endswith(b"\n"))
    lt = REGISTRY["flows"]
    work = Path(tempfile.mkdtemp(prefix="convert-us-"))
    con = connect(spill_dir=work / "spill")
    con.execute("SET threads = 1")
    conv = Converter(con.cursor, work / "scratch")
    plan = conv.plan(lt)
    scanners = {"native": keyscan.KeyScanner(plan.own), "duckdb": keyscan.KeyScanner(plan.own, native=False)}
    assert scanners["native"].native, "the C scanner is not built (pip install -e .)"
    src = work / "in.ndjson"
    src.write_bytes(body)
    runs: dict[str, list[float]] = {"convert_native": [], "convert_duckdb": [], "look_native": [],
                                    "look_duckdb": []}
    now = datetime.now(UTC)

    def convert(kind: str) -> None:
        object.__setattr__(plan, "keys", scanners[kind])
        out = conv.convert(lt, body, cluster="c1", now=now, seq_base=0, newlines=newlines)
        assert out.succeeded == n and not out.errors, (out.succeeded, out.errors[:3])
        out.discard()

    for _ in range(2):  # warm-up
        convert("native")
        convert("duckdb")
    for _ in range(a.rounds):
        for kind in ("native", "duckdb"):
            runs[f"convert_{kind}"].append(_cpu(lambda k=kind: convert(k)) / n * 1e6)
        runs["look_native"].append(_cpu(lambda: scanners["native"].scan(body)) / n * 1e6)
        runs["look_duckdb"].append(_cpu(lambda: con.execute(_UNKNOWN_KEYS, [str(src), list(own_keys(lt))])
                                        .fetchall()) / n * 1e6)
    shutil.rmtree(work, ignore_errors=True)
    summary = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for k, v in runs.items()}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    Path(a.out).write_bytes(orjson.dumps({"records": n, "bytes_per_record": round(len(body) / n),
                                          "rounds": a.rounds, "us_per_record": runs, "summary": summary,
                                          "load": os.getloadavg()}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
