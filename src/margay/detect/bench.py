"""Detector benchmarks on the embedded store: a GlobalAlert with aggregateBy over 24 h of flows, and matching a
100,000-entry IP feed while ingesting (the ingest rate lost to matching)."""

from __future__ import annotations

import ipaddress
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..app import _backend
from ..bench.settle import wait_idle
from ..clock import FakeClock
from ..config import Settings
from ..logtypes import REGISTRY
from ..store.ipset import parse_ipset
from .alerts import evaluate
from .feeds import FeedStatus
from .matching import search_feed
from .resources import ThreatFeed, parse_resource

FLOWS = REGISTRY["flows"]


def _respond(conv: Any) -> dict[str, Any]:
    return {"failed": conv.failed_lines}


def _ingest(backend: Any, batches: list[Any], now: datetime) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) to ingest the batches."""
    started, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        backend.ingest(FLOWS, b.cluster, b.body, key=None, now=now, respond=_respond)
    return time.perf_counter() - started, time.process_time() - cpu


KNOWN_BAD = ("185.220.101.4", "198.51.100.0/24")  # the simulator's flows reach these: the feed has hits


def feed_entries(n: int, seed: int = 7) -> tuple[str, ...]:
    """n distinct public IPv4 addresses and /24s (one in ten a CIDR), none in the simulator's 10/8 space but
    KNOWN_BAD, which its flows reach."""
    rng = random.Random(seed)
    out: set[str] = set(KNOWN_BAD[:n])
    while len(out) < n:
        a = rng.randrange(11, 223) << 24 | rng.randrange(1 << 24)
        out.add(f"{ipaddress.ip_address(a & ~0xFF)}/24" if rng.random() < 0.1 else str(ipaddress.ip_address(a)))
    return tuple(out)


def _alert(spec: dict[str, Any]) -> Any:
    return parse_resource({"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": "bench"},
                           "spec": {"description": "d", "severity": 50, "dataSet": "flows", "lookback": "24h",
                                    "period": "5m", **spec}})


# The GlobalAlerts timed over the last 24 h: (result key, spec)
ALERTS = (
    ("ns_pair_sum", {"query": "action = allow", "aggregateBy": ["source_namespace", "dest_namespace"],
                     "metric": "sum", "field": "bytes_out", "condition": "gt", "threshold": 0}),
    ("ns_port_count", {"query": "", "aggregateBy": ["source_namespace", "dest_port"], "metric": "count",
                       "condition": "gt", "threshold": 0}),
)


def time_alerts(backend: Any, end: datetime, *, runs: int = 5) -> dict[str, Any]:
    """p50/p95 wall seconds and mean CPU seconds (the whole process: the engine's threads too) of each ALERTS
    evaluation over [end - 24 h, end], after one untimed run."""
    out: dict[str, Any] = {}
    for name, spec in ALERTS:
        alert = _alert(spec)
        evaluate(backend, alert, end)
        walls, cpus = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            found = evaluate(backend, alert, end)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        walls.sort()
        key = f"detect_alert_{name}_24h"
        out[f"{key}_s_p50"] = round(walls[len(walls) // 2], 3)
        out[f"{key}_s_p95"] = round(walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))], 3)
        out[f"{key}_cpu_s"] = round(sum(cpus) / len(cpus), 3)
        out[f"{key}_buckets"] = sum(len(v) for v in found.values())
    return out


def settle(backend: Any, *, quiet: float = 10.0, timeout: float = 3600.0) -> None:
    """Wait until the compactor is idle, as a server's store is a minute after its last write: partitions are
    merged once cold (no write for `compact_cold_after` seconds) and merged files get their roll-ups."""
    def state() -> tuple[float | None, ...]:
        st = backend.stats()
        return (st.get("merges"), st.get("rollups_built"), st.get("compacting"))

    cold = time.monotonic() + float(getattr(backend, "compact_cold_after", 60.0)) + 10
    if wait_idle(state, cold_at=cold, quiet=quiet, timeout=timeout):
        return
    raise RuntimeError(f"the compactor was still busy after {timeout:.0f} s")


def alert_bench(batches: Iterable[Any], end: datetime, *, work_dir: Path | None = None, runs: int = 5,
                log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Load the flows (streamed: 10 M do not fit in memory as batches) and time ALERTS over the last 24 h."""
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        backend = _backend(Settings(data_dir=Path(tmp) / "alerts"), FakeClock(end))
        try:
            t0, stored, first = time.perf_counter(), 0, None
            for b in batches:
                backend.ingest(FLOWS, b.cluster, b.body, key=None, now=end, respond=_respond)
                stored += b.records
                first = first or b.day
            out: dict[str, Any] = {"detect_alert_flows": stored, "detect_alert_first_day": first,
                                   "detect_alert_load_s": round(time.perf_counter() - t0, 1)}
            log(f"detect: {stored:,} flows loaded in {out['detect_alert_load_s']} s; timing the alerts")
            out |= time_alerts(backend, end, runs=runs)  # at once: the newest files not merged nor rolled up yet
            t0 = time.perf_counter()
            settle(backend)
            out["detect_alert_settle_s"] = round(time.perf_counter() - t0, 1)
            log(f"detect: compaction settled in {out['detect_alert_settle_s']} s; timing the alerts again")
            out |= {k.replace("_24h_", "_24h_settled_"): v for k, v in time_alerts(backend, end, runs=runs).items()}
        finally:
            backend.close()
    return out


def sequential_matching(batches: list[Any], end: datetime, status: FeedStatus, *, every: int,
                        work_dir: Path | None = None) -> tuple[float, list[float], int]:
    """Ingest the batches one after the other, searching the feed after every `every` records; (ingest CPU s,
    each search's CPU s, hits), each part's process CPU measured apart - a figure the load of the machine
    moves far less than a matcher on a timer beside an ingest the load slows down (more searches)."""
    feed = ThreatFeed("bench", url=None)
    status = FeedStatus(entries=status.entries)
    ingest_cpu = 0.0
    searches: list[float] = []
    hits = since = 0
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        backend = _backend(Settings(data_dir=Path(tmp) / "seq"), FakeClock(end))
        try:
            for i, b in enumerate(batches):
                c0 = time.process_time()
                backend.ingest(FLOWS, b.cluster, b.body, key=None, now=end, respond=_respond)
                ingest_cpu += time.process_time() - c0
                since += b.records
                if since >= every or i == len(batches) - 1:
                    c0 = time.process_time()
                    found = search_feed(backend, feed, status)
                    status.cursor["flows"] = found.upto
                    searches.append(time.process_time() - c0)
                    hits, since = hits + found.scanned, 0
        finally:
            backend.close()
    return ingest_cpu, searches, hits


def bench(batches: list[Any], end: datetime, *, work_dir: Path | None = None, runs: int = 5,
          feed_size: int = 100_000, alerts: bool = True) -> dict[str, Any]:
    records = sum(b.records for b in batches)
    out: dict[str, Any] = {"detect_records": records, "detect_feed_entries": feed_size}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        clock = FakeClock(end)
        # 1. ingest alone
        base = _backend(Settings(data_dir=Path(tmp) / "alone"), clock)
        try:
            alone, alone_cpu = _ingest(base, batches, end)
            if alerts:
                out |= time_alerts(base, end, runs=runs)
        finally:
            base.close()
        # 2. ingest with a matcher following the store, as the detector does each minute (here: back to back)
        feed = ThreatFeed("bench", url=None)
        status = FeedStatus(entries=feed_entries(feed_size))
        matched = _backend(Settings(data_dir=Path(tmp) / "matched"), clock)
        stop = threading.Event()
        scanned = [0, 0.0, 0.0, 0]  # hits, matching wall s, matching CPU s (its thread), runs

        def follow() -> None:
            while not stop.is_set():
                t0, c0 = time.perf_counter(), time.thread_time()
                hits = search_feed(matched, feed, status)
                status.cursor["flows"] = hits.upto
                scanned[0] += hits.scanned
                scanned[1] += time.perf_counter() - t0
                scanned[2] += time.thread_time() - c0
                scanned[3] += 1
                stop.wait(0.5)

        # The feed was synced before: its set is parsed once per sync (daily by default), not per run.
        t0 = time.perf_counter()
        parse_ipset(status.entries)
        out["detect_feed_prepare_s"] = round(time.perf_counter() - t0, 3)
        # 3. the same, sequentially: matching's CPU apart from ingest's, a search after every 10,000 records
        # (~0.5 s of ingest here, 100x the detector's once a minute), then one search over everything
        for tag, every in (("10k", 10_000), ("all", records)):
            ing, searches, _ = sequential_matching(batches, end, status, every=every, work_dir=work_dir)
            out[f"detect_seq_{tag}_ingest_cpu_s"] = round(ing, 2)
            out[f"detect_seq_{tag}_match_cpu_s"] = round(sum(searches), 3)
            out[f"detect_seq_{tag}_searches"] = len(searches)
            out[f"detect_seq_{tag}_match_pct_of_ingest"] = round(100 * sum(searches) / ing, 1)
            if len(searches) > 2:  # without the process's first search (DuckDB's and the kernels' first use)
                steady = sorted(searches[1:])[len(searches[1:]) // 2]
                out[f"detect_seq_{tag}_search_cpu_ms_p50"] = round(1000 * steady, 1)
                out[f"detect_seq_{tag}_match_pct_of_ingest_steady"] = round(100 * steady * len(searches) / ing, 1)
        thread = threading.Thread(target=follow)
        try:
            thread.start()
            with_matching, with_cpu = _ingest(matched, batches, end)
            stop.set()
            thread.join()
            t0, c0 = time.perf_counter(), time.thread_time()
            scanned[0] += search_feed(matched, feed, status).scanned  # what the matcher still had to catch up
            scanned[1] += time.perf_counter() - t0
            scanned[2] += time.thread_time() - c0
        finally:
            stop.set()
            matched.close()
    out["detect_ingest_rps_alone"] = round(records / alone)
    out["detect_ingest_rps_with_matching"] = round(records / with_matching)
    out["detect_ingest_loss_pct"] = round(100 * (1 - alone / with_matching), 1)
    out["detect_ingest_cpu_s_alone"] = round(alone_cpu, 2)
    out["detect_ingest_cpu_s_with_matching"] = round(with_cpu, 2)  # the whole process: ingest + matcher
    out["detect_ingest_cpu_loss_pct"] = round(100 * (1 - alone_cpu / with_cpu), 1)
    out["detect_match_runs"] = scanned[3]
    out["detect_match_s"] = round(scanned[1], 2)  # wall, summed over the runs
    out["detect_match_cpu_s"] = round(scanned[2], 2)  # this thread's CPU (Python); the engine's own threads not
    out["detect_match_rps"] = round(records / scanned[1]) if scanned[1] else None  # records matched per second
    out["detect_match_hits"] = scanned[0]
    return out


def main(records: int = 200_000) -> dict[str, Any]:  # pragma: no cover - a manual entry point
    from ..bench.data import END, flow_batches, topology

    batches = list(flow_batches(topology(), records, end=END))
    return bench(batches, END + timedelta(minutes=5))
