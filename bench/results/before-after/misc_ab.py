"""A/B of the side paths' bench figures (aggregate, forward, agent, UI first render, server memory) with CPU.

Run from a worktree's root with that worktree's own venv, so the same script measures any commit that has
the bench's scenario code (959394d and later):

    .venv/bin/python bench/results/before-after/misc_ab.py PART --out FILE.json --work-dir DIR

PART: aggregate | forward | agent | ui | ingest-rss | mixed. Each prints one JSON object (appended to FILE) with the
commit, the load average before and after, wall and CPU figures. CPU is what survives a noisy machine:
- aggregate: the process's CPU (all threads, DuckDB's included) per level, same 30,000 flows as the scenario;
- forward: the process's CPU while each store delivers the same 5,000 stored flows (the scenario's code);
- agent: the agent process's CPU (wait4) shipping the scenario's 30,000-line flows.log, and the server's;
- ui: the server's CPU and the wall time to first render of each page (3 runs each, Chromium), over the
  scale scenario's 300,000 flows ending now; and the server's peak RSS (VmHWM) at the end;
- ingest-rss: the server's VmHWM after the ingest scenario's 40,834 flows at 1, 4 and 16 clients;
- mixed: the mixed scenario at a fixed 20,000 records/s with 10 query clients for 30 s: query p95, the
  server's CPU and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def aggregate(work: Path) -> dict[str, Any]:
    from margay.aggregate import aggregate as run
    from margay.bench.data import flow_batches, topology

    body = b"\n".join(b.body for b in flow_batches(topology(), 30_000))
    out: dict[str, Any] = {}
    run("flows", body, level=0, level_denied=0)  # warm: imports, DuckDB's first connection
    for lvl in range(4):
        cpu0, t0 = _cpu(), time.perf_counter()
        r = run("flows", body, level=lvl, level_denied=lvl)
        out[f"aggregate_level{lvl}_wall_s"] = round(time.perf_counter() - t0, 4)
        out[f"aggregate_level{lvl}_cpu_s"] = round(_cpu() - cpu0, 3)
        out[f"aggregate_level{lvl}_rps"] = round(r.records_in / out[f"aggregate_level{lvl}_wall_s"])
        out[f"aggregate_level{lvl}_records_out"] = r.records_out
    return out


def forward(work: Path) -> dict[str, Any]:
    from margay.forward.config import from_documents
    from margay.forward.forwarder import Forwarder
    from margay.forward.service import make_sink
    from margay.forward.throughput import _load
    from margay.metrics import Registry
    from margay.store.duckdb import DuckDBBackend

    try:
        from margay.rig.hec import HecReceiver
        from margay.rig.rsyslog import RsyslogServer
        from margay.rig.s3 import S3Server
    except ImportError:  # 959394d
        from margay.testing.peers.hec import HecReceiver  # type: ignore[no-redef]
        from margay.testing.peers.rsyslog import RsyslogServer  # type: ignore[no-redef]
        from margay.testing.peers.s3 import S3Server  # type: ignore[no-redef]

    out: dict[str, Any] = {}
    root = work / f"fwd-{os.getpid()}"
    root.mkdir(parents=True)
    with ExitStack() as stack:
        backend = DuckDBBackend(root / "data")
        stack.callback(backend.close)
        stored = _load(backend, 5_000)
        time.sleep(2)
        for kind in ("s3", "syslog", "splunk"):
            spec: dict[str, Any] = {"logTypes": ["Flows"], "batchSize": 5000, "flushInterval": 0,
                                    "retryInitial": 0.2, "retryMax": 2}
            if kind == "s3":
                s3 = S3Server()
                s3.start(root / "s3")
                stack.callback(s3.stop)
                creds = root / "s3-credentials.yaml"
                creds.write_text(f"key-id: {s3.access_key}\nkey-secret: {s3.secret_key}\n")
                spec.update(region=s3.region, bucketName=s3.new_bucket("bench"), bucketPath="archive",
                            endpoint=s3.endpoint, pathStyle=True, credentialsFile=str(creds))
            elif kind == "syslog":
                rs = RsyslogServer()
                rs.start(root / "rsyslog")
                stack.callback(rs.stop)
                spec.update(endpoint=f"tcp://127.0.0.1:{rs.tcp_port}", packetSize=65536)
            else:
                hec = HecReceiver()
                hec.start(root / "hec")
                stack.callback(hec.stop)
                token = root / "hec-token"
                token.write_text(hec.token)
                spec.update(endpoint=hec.url, tokenFile=str(token))
            [config] = from_documents([{"kind": "LogCollector", "spec": {"additionalStores": {kind: spec}}}])
            metrics = Registry()
            fwd = Forwarder(config, backend, make_sink(config, metrics), root / f"state-{kind}", metrics=metrics)
            cpu0, t0 = _cpu(), time.perf_counter()
            fwd.start()
            delivered = 0.0
            while time.perf_counter() - t0 < 300:
                delivered = metrics.get("margay_forward_delivered_records_total", store=kind, type="flows")
                if delivered >= stored:
                    break
                time.sleep(0.02)
            wall = time.perf_counter() - t0
            cpu = _cpu() - cpu0
            fwd.stop()
            out[f"forward_rps_{kind}"] = round(delivered / wall)
            out[f"forward_wall_s_{kind}"] = round(wall, 3)
            out[f"forward_cpu_s_{kind}"] = round(cpu, 3)
    return out


def agent(work: Path) -> dict[str, Any]:
    from margay.agent import bench

    got = bench(lines=30_000, work_dir=work)
    return {k: v for k, v in got.items() if isinstance(v, int | float)}


def _server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ui(work: Path) -> dict[str, Any]:
    from margay.bench.data import flow_batches, topology
    from margay.bench.harness import peak_rss_mib
    from margay.bench.targets import MargayTarget
    from margay.web import bench as web

    topo = topology()
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    target = MargayTarget(work / f"ui-{os.getpid()}").start()
    out: dict[str, Any] = {}
    try:
        gen = flow_batches(topo, 300_000, end=end)
        loaded = 0
        while part := list(islice(gen, 16)):
            loaded += target.ingest(part, 2)[0]
        out["ui_records"] = loaded
        out["ui_rss_after_ingest_mib"] = round(target.rss(), 1)
        out["ui_rss_peak_after_ingest_mib"] = round(peak_rss_mib(target.pid), 1)
        target.settle()
        out["ui_rss_peak_after_settle_mib"] = round(peak_rss_mib(target.pid), 1)
        import margay.web.bench as wb
        pages = dict(wb.PAGES)
        for name, frag in pages.items():
            wb.PAGES = {name: frag}
            cpu0 = _server_cpu(target.pid)
            got = web(target.url, None, time_range="now-24h", runs=3)
            out[f"ui_server_cpu_s_{name}"] = round((_server_cpu(target.pid) - cpu0) / 3, 3)
            out[f"ui_{name}_first_render_s"] = got[f"{name}_first_render_s"]
            out[f"ui_{name}_runs_s"] = got[f"{name}_runs_s"]
        wb.PAGES = pages
        out["scale_rss_peak_mib"] = round(peak_rss_mib(target.pid), 1)
    finally:
        target.stop()
    return out


def ingest_rss(work: Path) -> dict[str, Any]:
    from margay.bench.data import flow_batches, topology
    from margay.bench.harness import peak_rss_mib
    from margay.bench.targets import MargayTarget

    batches = list(flow_batches(topology(), 40_000))
    out: dict[str, Any] = {}
    for clients in (1, 4, 16):
        target = MargayTarget(work / f"ingest-{os.getpid()}").start()
        try:
            cpu0 = _server_cpu(target.pid)
            n, seconds = target.ingest(batches, clients)
            out[f"ingest_cpu_s_{clients}c"] = round(_server_cpu(target.pid) - cpu0, 2)
            out[f"ingest_seconds_{clients}c"] = round(seconds, 2)
            out[f"ingest_rps_{clients}c"] = round(n / seconds)
            out[f"ingest_rss_mib_{clients}c"] = round(target.rss(), 1)
            out[f"ingest_rss_peak_mib_{clients}c"] = round(peak_rss_mib(target.pid), 1)
        finally:
            target.stop()
    return out


def mixed(work: Path) -> dict[str, Any]:
    """The mixed scenario at a fixed ingest rate (MIXED_RATE records/s, not half of each server's measured
    maximum, which differs between commits and with the machine's load) with 10 query clients for 30 s."""
    import threading

    import httpx

    from margay.bench.data import flow_batches, topology
    from margay.bench.harness import peak_rss_mib, percentile
    from margay.bench.targets import MargayTarget

    topo = topology()
    target = MargayTarget(work / f"mixed-{os.getpid()}").start()
    out: dict[str, Any] = {"mixed_rate": MIXED_RATE}
    try:
        target.ingest(list(flow_batches(topo, 100_000)), 4)
        out["mixed_rss_peak_after_warm_mib"] = round(peak_rss_mib(target.pid), 1)
        stop = threading.Event()
        errors: list[str] = []
        latencies: list[float] = []
        sent = [0]
        gen = flow_batches(topo, 10**9)
        cpu0 = _server_cpu(target.pid)
        started = time.monotonic()

        def writer() -> None:
            while not stop.is_set():
                try:
                    sent[0] += target.ingest(list(islice(gen, 2)), 1)[0]
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(f"ingest: {exc}")
                ahead = sent[0] / MIXED_RATE - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)

        def reader() -> None:
            qs = list(target.queries().values())
            with httpx.Client(base_url=target.url, timeout=600) as http:
                i = 0
                while not stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        qs[i % len(qs)](http)
                        latencies.append((time.perf_counter() - t0) * 1000)
                    except Exception as exc:  # noqa: BLE001 - counted
                        errors.append(f"query: {exc}")
                    i += 1

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(10)]
        for t in threads:
            t.start()
        stop.wait(30)
        stop.set()
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        out.update({"mixed_seconds": round(seconds, 1), "mixed_records_sent": sent[0], "mixed_errors": len(errors),
                    "mixed_queries": len(latencies), "mixed_query_p95_ms": round(percentile(latencies, 0.95), 1),
                    "mixed_server_cpu_s": round(_server_cpu(target.pid) - cpu0, 2),
                    "mixed_rss_peak_mib": round(peak_rss_mib(target.pid), 1)})
    finally:
        target.stop()
    return out


MIXED_RATE = 20_000

PARTS = {"mixed": mixed, "aggregate": aggregate, "forward": forward, "agent": agent, "ui": ui, "ingest-rss": ingest_rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=sorted(PARTS))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    args = ap.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"part": args.part, "commit": _commit(), "at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "load_before": os.getloadavg()[0]}
    row.update(PARTS[args.part](args.work_dir))
    row["load_after"] = os.getloadavg()[0]
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
