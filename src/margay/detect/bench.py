"""Detector benchmarks on the embedded store: a GlobalAlert with aggregateBy over 24 h of flows, and matching a
100,000-entry IP feed while ingesting (the ingest rate lost to matching)."""

from __future__ import annotations

import ipaddress
import random
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..app import _backend
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


def bench(batches: list[Any], end: datetime, *, work_dir: Path | None = None, runs: int = 5,
          feed_size: int = 100_000) -> dict[str, Any]:
    records = sum(b.records for b in batches)
    out: dict[str, Any] = {"detect_records": records, "detect_feed_entries": feed_size}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        clock = FakeClock(end)
        # 1. ingest alone
        base = _backend(Settings(data_dir=Path(tmp) / "alone"), clock)
        try:
            alone, alone_cpu = _ingest(base, batches, end)
            alert = parse_resource({"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert",
                                    "metadata": {"name": "bench"},
                                    "spec": {"description": "d", "severity": 50, "dataSet": "flows",
                                             "query": "action = allow", "lookback": "24h", "period": "5m",
                                             "aggregateBy": ["source_namespace", "dest_namespace"],
                                             "metric": "sum", "field": "bytes_out", "condition": "gt",
                                             "threshold": 0}})
            timings = []
            for _ in range(runs):
                t0 = time.perf_counter()
                found = evaluate(base, alert, end)  # type: ignore[arg-type]
                timings.append(time.perf_counter() - t0)
            out["detect_alert_aggregateby_24h_s_p50"] = round(sorted(timings)[len(timings) // 2], 3)
            out["detect_alert_buckets"] = sum(len(v) for v in found.values())
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


def main(records: int = 200_000) -> dict[str, Any]:
    from ..bench.data import END, flow_batches, topology

    batches = list(flow_batches(topology(), records, end=END))
    return bench(batches, END + timedelta(minutes=5))
