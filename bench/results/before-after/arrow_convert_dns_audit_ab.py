"""DNS and audit through the C parser (ingest/columns.py, `_raw` and the MAP/JSON columns) against DuckDB's
read_json, in-process, interleaved.

    .venv/bin/python bench/results/before-after/arrow_convert_dns_audit_ab.py OUT.json [--rounds 7] [--kinds dns,audit_kube]

For DNS and Kubernetes audit (the simulator's records, `margay.bench.data.other_batches`; or `--kinds` naming other
simulated types too: events, waf, bgp, a day of one cluster's), two shapes of work,
each converted with the plan's C parser (`arrow`) and with it switched off (`read_json`: main's path for these
types, the C key scanner's look included), taking turns on one single-threaded DuckDB connection:
- `large`: one 10,000-record batch through `Converter.convert`;
- `group`: a group commit of 32 batches of 20 records from 32 clusters through `convert_group` (the 1,000-cluster
  fleet's shape of DNS and audit traffic).
Server-style CPU (process_time): us per record, and ms per group statement; median and range over the rounds.
Both paths' files are compared row for row once before timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from margay import simulate
from margay.simulate import activity
from margay.bench.data import CLUSTERS, END, other_batches, topology
from margay.ingest.group import convert_group
from margay.ingest.parse import Converter
from margay.logtypes import REGISTRY
from margay.store.duckdb.engine import connect


def _cpu(fn: Callable[[], Any]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _lines(kind: str, want: int) -> list[bytes]:
    """`want` records of a kind, of one day and cluster (the simulator's first batch, repeated: an audit batch
    holds a few hundred): the files are not split by day, as almost none of a live fleet's are."""
    if kind in ("dns", "audit_kube"):
        batch = next(b for b in other_batches(topology(), 24) if b.log_type == kind).body
    else:
        topo = simulate.Topology.build(7, clusters=CLUSTERS)
        batch = next(simulate.ndjson_batches(getattr(activity, kind)(topo, CLUSTERS[0], END - timedelta(days=1), END),
                                             want))
    out = [line for line in batch.split(b"\n") if line.strip()]
    return (out * -(-want // len(out)))[:want]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--kinds", default="dns,audit_kube")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arrow-dns-ab-"))
    con = connect(spill_dir=work / "spill")
    con.execute("SET threads = 1")
    conv = Converter(con.cursor, work / "scratch")
    now = datetime.now(UTC)
    runs: dict[str, list[float]] = {}
    facts: dict[str, Any] = {}
    shapes = {}
    for kind in a.kinds.split(","):
        lt = REGISTRY[kind]
        plan = conv.plan(lt)
        assert plan.arrow is not None, "the C parser is not built (make native)"
        lines = _lines(kind, 10_000)
        large = b"\n".join(lines)
        group = [(f"cluster-{i:04d}", b"\n".join(lines[i * 20:(i + 1) * 20])) for i in range(32)]
        shapes[kind] = (lt, {"arrow": plan, "read_json": dataclasses.replace(plan, arrow=None)}, large, group)
        facts[kind] = {"large_records": len(lines), "large_bytes": len(large), "group_records": 32 * 20}

    def one(kind: str, side: str) -> None:
        lt, plans, large, _ = shapes[kind]
        conv._plans[lt.name] = plans[side]
        out = conv.convert(lt, large, cluster="c1", now=now, seq_base=0)
        assert out.succeeded == len(large.split(b"\n")) and not out.errors, out.errors[:3]
        out.discard()

    def grouped(kind: str, side: str) -> None:
        lt, plans, _, group = shapes[kind]
        conv._plans[lt.name] = plans[side]
        g = convert_group(conv, lt, group, now=now, seq_base=0)
        assert sum(p.stored or 0 for p in g.parts) == 640
        g.discard()

    # The same rows either way (every column, `_seq`, `cluster` and the kept-as-sent ones included).
    for kind, (lt, plans, large, group) in shapes.items():
        files = {}
        for side in plans:
            conv._plans[lt.name] = plans[side]
            files[side] = conv.convert(lt, large, cluster="c1", now=now, seq_base=0)
        paths = [[str(p) for _, p, _ in files[side].files] for side in plans]
        diff = con.execute("SELECT count(*) FROM (SELECT * EXCLUDE (generated_time) FROM read_parquet(?) EXCEPT ALL "
                           "SELECT * EXCLUDE (generated_time) FROM read_parquet(?))", paths).fetchone()
        assert diff == (0,), (kind, diff)
        for f in files.values():
            f.discard()
    for _ in range(2):
        for kind in shapes:
            for side in ("arrow", "read_json"):
                one(kind, side)
                grouped(kind, side)
    for _ in range(a.rounds):
        for kind in shapes:
            for side in ("arrow", "read_json"):
                n = facts[kind]["large_records"]
                runs.setdefault(f"{kind}_large_{side}_us_per_record", []).append(
                    _cpu(lambda k=kind, s=side: one(k, s)) / n * 1e6)
                cpu = _cpu(lambda k=kind, s=side: grouped(k, s))
                runs.setdefault(f"{kind}_group_{side}_ms_per_statement", []).append(cpu * 1e3)
                runs.setdefault(f"{kind}_group_{side}_us_per_record", []).append(cpu / 640 * 1e6)
    shutil.rmtree(work, ignore_errors=True)
    summary = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for k, v in runs.items()}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    Path(a.out).write_bytes(orjson.dumps({"facts": facts, "rounds": a.rounds, "runs": runs, "summary": summary,
                                          "load": os.getloadavg()}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
