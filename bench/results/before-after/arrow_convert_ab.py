"""The C parser into Arrow columns (ingest/columns.py) against DuckDB's read_json, in-process, interleaved.

    .venv/bin/python bench/results/before-after/arrow_convert_ab.py OUT.json [--rounds 7]

Two shapes of work, each converted with the plan's C parser (`arrow`) and with it switched off (`read_json`:
main's path, the C key scanner's look included), taking turns on one single-threaded DuckDB connection as the
server's ingest engine:
- `large`: one 10,000-flow batch through `Converter.convert` (the peers data's first batch, 9,335 flows of
  ~1.5 kB), sim and highcard variants;
- `group`: a group commit of 32 batches of ~200 flows from 32 clusters through `convert_group` (the fleet's
  1,000-cluster shape: 6,400 records a statement).
Server-style CPU (process_time) per record; median and range over the rounds. Both paths' files are compared
row for row once before timing.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from margay.bench.peers import high_cardinality
from margay.ingest.group import convert_group
from margay.ingest.parse import Converter
from margay.logtypes import REGISTRY
from margay.store.duckdb.engine import connect


def _cpu(fn: Callable[[], Any]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _body(batch: Any) -> bytes:
    return gzip.decompress(batch.body) if batch.body[:2] == b"\x1f\x8b" else batch.body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    lt = REGISTRY["flows"]
    large = {"sim": _body(next(iter(flow_batches(topology(), 10_000)))),
             "highcard": _body(next(iter(high_cardinality(flow_batches(topology(), 10_000)))))}
    lines = large["sim"].split(b"\n")
    group = [(f"cluster-{i:04d}", b"\n".join(lines[i * 200:(i + 1) * 200])) for i in range(32)]
    work = Path(tempfile.mkdtemp(prefix="arrow-ab-"))
    con = connect(spill_dir=work / "spill")
    con.execute("SET threads = 1")
    conv = Converter(con.cursor, work / "scratch")
    plan = conv.plan(lt)
    assert plan.arrow is not None, "the C parser is not built (make native)"
    plans = {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}
    now = datetime.now(UTC)

    def one(side: str, body: bytes) -> None:
        conv._plans[lt.name] = plans[side]
        out = conv.convert(lt, body, cluster="c1", now=now, seq_base=0)
        assert out.succeeded and not out.errors, out.errors[:3]
        out.discard()

    def grouped(side: str) -> None:
        conv._plans[lt.name] = plans[side]
        g = convert_group(conv, lt, group, now=now, seq_base=0)
        assert sum(p.stored or 0 for p in g.parts) == sum(b.count(b"\n") + 1 for _, b in group)
        g.discard()

    # The same rows either way (every column, `_seq` and `cluster` included).
    for name, body in large.items():
        files = {}
        for side in plans:
            conv._plans[lt.name] = plans[side]
            out = conv.convert(lt, body, cluster="c1", now=now, seq_base=0)
            files[side] = out
        diff = con.execute("SELECT count(*) FROM (SELECT * FROM read_parquet(?) EXCEPT ALL SELECT * FROM read_parquet(?))",
                           [str(files["arrow"].files[0][1]), str(files["read_json"].files[0][1])]).fetchone()
        assert diff == (0,), (name, diff)
        for f in files.values():
            f.discard()
    n = {name: body.count(b"\n") + 1 for name, body in large.items()}
    ng = sum(b.count(b"\n") + 1 for _, b in group)
    runs: dict[str, list[float]] = {}
    for _ in range(2):
        for side in plans:
            one(side, large["sim"])
            grouped(side)
    for _ in range(a.rounds):
        for side in plans:
            for name, body in large.items():
                runs.setdefault(f"large_{name}_{side}", []).append(_cpu(lambda s=side, b=body: one(s, b)) / n[name] * 1e6)
            runs.setdefault(f"group_{side}", []).append(_cpu(lambda s=side: grouped(s)) / ng * 1e6)
    shutil.rmtree(work, ignore_errors=True)
    summary = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for k, v in runs.items()}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    Path(a.out).write_bytes(orjson.dumps({"records": n, "group_records": ng, "rounds": a.rounds,
                                          "us_per_record": runs, "summary": summary, "load": os.getloadavg()},
                                         option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
