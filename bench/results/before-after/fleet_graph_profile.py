"""Profile the flow graph over a quick-sized store at N clusters, dealt by flow or line by line.

Usage: .venv/bin/python bench/results/before-after/fleet_graph_profile.py 1000 flow /tmp/graph-1000.raw
(clusters, `flow` or `line`, and where py-spy's raw stacks go; py-spy next to the interpreter or on PATH).
Prints the graph's server CPU-ms and wall ms per request (20 runs after 2), its nodes and edges, and the
flows roll-up's rows; the store is kept under /tmp/f2prof/w-<deal>-<clusters>."""
import json, subprocess, sys, time, zlib
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path

import duckdb, httpx

from margay.bench import fleet as F
from margay.bench.data import BATCH, Batch, flow_batches, other_batches, topology
from margay.bench.profile import py_spy
from margay.bench.targets import MargayTarget

n, how, spy = int(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
work = Path(f"/tmp/f2prof/w-{how}-{n}")
work.parent.mkdir(parents=True, exist_ok=True)

def by_line(batches: Iterator[Batch], clusters: int, held_max: int = 200_000) -> Iterator[Batch]:
    names = [f"fleet-{i:04d}" for i in range(1, clusters + 1)]
    lanes = [[] for _ in names]; held = None; k = 0
    def flush(key):
        for name, lines in zip(names, lanes):
            for i in range(0, len(lines), BATCH):
                yield Batch(key[0], name, key[1], b"\n".join(lines[i:i + BATCH]) + b"\n")
            lines.clear()
    for b in batches:
        key = (b.log_type, b.day)
        if held is not None and key != held:
            yield from flush(held); k = 0
        held = key
        for line in b.body.split(b"\n"):
            if line.strip():
                lanes[k % clusters].append(line); k += 1
                if k % held_max == 0: yield from flush(key)
    if held is not None: yield from flush(held)

deal = F.fleet_batches if how == "flow" else by_line
t = MargayTarget(work).start()
try:
    topo = topology()
    src = deal(chain(flow_batches(topo, 150_000), F.by_type(other_batches(topo, 24))), n)
    sent = 0
    while part := list(islice(src, 256)):
        sent += t.ingest(part, F.CLIENTS)[0]
    t.settle()
    q = F.questions()["flowgraph"]
    with httpx.Client(base_url=t.url, timeout=600) as http:
        ans = q(http); q(http)
        runs = 20; c0 = t.cpu(); w0 = time.perf_counter()
        for _ in range(runs): q(http)
        cpu_ms = (t.cpu() - c0) * 1000 / runs; wall = (time.perf_counter() - w0) * 1000 / runs
        nodes = len(ans.get("nodes", [])) if isinstance(ans, dict) else None
        edges = len(ans.get("edges", [])) if isinstance(ans, dict) else None
        roll = list((work / "data" / "store" / "flows").rglob("*.rollup-*.parquet"))
        rows = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [[str(p) for p in roll]]).fetchall()[0][0] if roll else 0
        print(json.dumps({"clusters": n, "deal": how, "records": sent, "graph_cpu_ms": round(cpu_ms, 1),
                          "graph_wall_ms": round(wall, 1), "nodes": nodes, "edges": edges,
                          "rollup_files": len(roll), "rollup_rows": rows, "keys": sorted(ans)[:10] if isinstance(ans, dict) else None}))
        if spy:
            p = subprocess.Popen([py_spy() or "py-spy", "record", "--pid", str(t.pid), "--native", "-d", "25",
                                  "-f", "raw", "-o", spy], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            end = time.time() + 24
            while time.time() < end: q(http)
            p.wait()
finally:
    t.stop()
