"""The ingest check of IP fields (ingest/ips.py) against none, in-process, interleaved.

    .venv/bin/python bench/results/before-after/ip_check_ab.py OUT.json BEFORE_DIR [--rounds 9]

BEFORE_DIR holds `before/_columns.<abi>.so`, the C parser built from the sources before the check (same
compiler and flags). The same converter, taking turns on one single-threaded DuckDB connection as the server's
ingest engine, with each log type's plan `before` (no IP checks; the old parser) and `after` (the parser checks
IP fields itself; read_json's way checks them in SQL):
- `large`: one 10,000-flow batch through `Converter.convert` (the peers data's first batch, 9,335 flows);
- `group`: a group commit of 32 batches of ~200 flows from 32 clusters through `convert_group`;
- `dns`: one batch of the simulator's DNS records (client_ip and servers[].ip checked);
- `large_rj`: the 10,000 flows the way a batch the C parser declines takes (read_json, the SQL checks).
Thread CPU (time.thread_time) per record; median and range over the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from margay.bench.data import flow_batches, topology
from margay.ingest import parse
from margay.ingest.group import convert_group
from margay.ingest.parse import Converter, plan_for
from margay.logtypes import REGISTRY
from margay.store.duckdb.engine import connect


def _cpu(fn: Callable[[], Any]) -> float:
    t = time.thread_time()
    fn()
    return time.thread_time() - t


def _body(batch: Any) -> bytes:
    return gzip.decompress(batch.body) if batch.body[:2] == b"\x1f\x8b" else batch.body


def _dns_body(n: int) -> bytes:
    from margay.simulate.generate import dns  # the simulator's DNS records

    topo = topology()
    end = datetime(2023, 11, 15, tzinfo=UTC)
    out: list[bytes] = []
    for cluster in topo.clusters:
        for rec in dns(topo, cluster, datetime(2023, 11, 14, tzinfo=UTC), end):
            out.append(orjson.dumps(rec))
            if len(out) >= n:
                return b"\n".join(out)
    return b"\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("before_dir")
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    flows, dns = REGISTRY["flows"], REGISTRY["dns"]
    large = _body(next(iter(flow_batches(topology(), 10_000))))
    lines = large.split(b"\n")
    group = [(f"cluster-{i:04d}", b"\n".join(lines[i * 200:(i + 1) * 200])) for i in range(32)]
    dns_body = _dns_body(10_000)
    work = Path(tempfile.mkdtemp(prefix="ip-ab-"))
    con = connect(spill_dir=work / "spill")
    con.execute("SET threads = 1")
    conv = Converter(con.cursor, work / "scratch")
    so = next(Path(a.before_dir, "before").glob("_columns*.so"))
    spec = importlib.util.spec_from_file_location("before._columns", so)
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    with mock.patch.object(parse, "ip_checks", lambda fields: []), mock.patch.object(parse, "ip_paths",
                                                                                      lambda fields: iter(())):
        before = {lt.name: plan_for(lt) for lt in (flows, dns)}
    after = {lt.name: plan_for(lt) for lt in (flows, dns)}
    for p in before.values():  # (this thread's parser: the converter parses on the calling thread)
        assert p.arrow is not None
        p.arrow._local.parser = old.Parser(p.arrow._spec)
    assert all(p.arrow is not None for p in after.values()), "the C parser is not built"
    assert "regexp_full_match" in after["flows"].select and "regexp_full_match" not in before["flows"].select
    assert "regexp_full_match" not in after["flows"].lean_arrow
    plans = {"before": before, "after": after}
    rj = {side: {n: dataclasses.replace(p, arrow=None) for n, p in ps.items()} for side, ps in plans.items()}
    now = datetime.now(UTC)

    def one(side: str, lt: Any, body: bytes, read_json: bool = False) -> None:
        conv._plans[lt.name] = (rj if read_json else plans)[side][lt.name]
        out = conv.convert(lt, body, cluster="c1", now=now, seq_base=0)
        assert out.succeeded and not out.errors, out.errors[:3]
        out.discard()

    def grouped(side: str) -> None:
        conv._plans[flows.name] = plans[side][flows.name]
        g = convert_group(conv, flows, group, now=now, seq_base=0)
        assert sum(p.stored or 0 for p in g.parts) == sum(b.count(b"\n") + 1 for _, b in group)
        g.discard()

    n = {"large": large.count(b"\n") + 1, "dns": dns_body.count(b"\n") + 1,
         "group": sum(b.count(b"\n") + 1 for _, b in group), "large_rj": large.count(b"\n") + 1}
    work_items: dict[str, Callable[[str], None]] = {
        "large": lambda s: one(s, flows, large), "group": grouped, "dns": lambda s: one(s, dns, dns_body),
        "large_rj": lambda s: one(s, flows, large, True)}
    for side in plans:  # the C parser took the batches on both sides
        assert all(plans[side][lt.name].arrow.table([b]) is not None  # type: ignore[union-attr]
                   for lt, b in ((flows, large), (dns, dns_body)))
    for _ in range(2):
        for side in plans:
            for fn in work_items.values():
                fn(side)
    runs: dict[str, list[float]] = {}
    for r in range(a.rounds):
        order = list(plans) if r % 2 == 0 else list(reversed(plans))
        for side in order:
            for name, fn in work_items.items():
                runs.setdefault(f"{name}_{side}", []).append(_cpu(lambda f=fn, s=side: f(s)) / n[name] * 1e6)
    shutil.rmtree(work, ignore_errors=True)
    summary = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for k, v in sorted(runs.items())}
    for name in work_items:
        b, c = statistics.median(runs[f"{name}_before"]), statistics.median(runs[f"{name}_after"])
        summary[f"{name}_change_pct"] = {"median": round((c - b) / b * 100, 2), "min": 0, "max": 0}
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    Path(a.out).write_bytes(orjson.dumps({"records": n, "rounds": a.rounds, "us_per_record": runs,
                                          "summary": summary, "load": os.getloadavg()},
                                         option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
