"""Detector benchmarks on the embedded store: a GlobalAlert with aggregateBy over 24 h of flows, and matching a
100,000-entry IP feed while ingesting (the ingest rate lost to matching)."""

from __future__ import annotations

import ipaddress
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..app import _backend
from ..bench.data import Batch
from ..bench.settle import wait_idle
from ..clock import FakeClock
from ..config import Settings
from ..logtypes import REGISTRY
from ..simulate import Topology, flows, ndjson_batches
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


_TIMES = re.compile(rb'"(start_time|end_time|@timestamp)":(\d+)')


@dataclass(frozen=True)
class _Counted(Batch):
    lines: int = 0

    @property
    def records(self) -> int:  # known: no count of 10 M lines' newlines
        return self.lines


@dataclass(frozen=True)
class _Template:
    """One batch of the rendered hour: its bytes (rewritten in place hour after hour), lines, and where each
    time value's digits are."""

    body: npt.NDArray[np.uint8]
    lines: int
    values: list[tuple[int, int, npt.NDArray[np.intp]]]  # (seconds, scale, its digits' offsets: n x width)

    @classmethod
    def of(cls, body: bytes) -> _Template:
        at: dict[tuple[bytes, int], list[int]] = {}
        for m in _TIMES.finditer(body):  # once per rendered record, not per record sent
            at.setdefault((m.group(1), int(m.group(2))), []).append(m.start(2))
        values = []
        for (name, value), starts in at.items():
            scale = 1000 if name == b"@timestamp" else 1
            offsets = np.add.outer(np.array(starts, dtype=np.intp), np.arange(len(str(value))))
            values.append((value // scale, scale, offsets))
        return cls(np.frombuffer(bytearray(body), dtype=np.uint8), body.count(b"\n"), values)

    def moved(self, shift: int) -> bytes:
        """The batch with every time `shift` seconds from the rendered one (the digit count must not change)."""
        for value, scale, offsets in self.values:
            digits = np.frombuffer(str((value + shift) * scale).encode(), dtype=np.uint8)
            if len(digits) != offsets.shape[1]:
                raise ValueError("a moved time changed its digit count")
            self.body[offsets] = digits
        return self.body.tobytes()


def day_of_flows(topo: Topology, records: int, *, end: datetime, batch: int = 50_000) -> Iterator[Batch]:
    """About `records` level-0 Felix flows in the hours before `end`, generated in bulk: the simulator renders
    one hour per cluster (12 five-minute intervals), and every other hour is those bytes with the times moved
    (`start_time`, `end_time`, `@timestamp`: their digits overwritten in place by numpy, no Python per record).
    At level 0 every key writes a record each interval (423-425k an hour at 69 namespaces a cluster, whichever
    hour), so the repeat changes neither volume nor shape."""
    first = end - timedelta(hours=1)
    hour = {c: [_Template.of(body) for lo in range(int(first.timestamp()), int(end.timestamp()), 300)
                for body in ndjson_batches(flows(topo, c, datetime.fromtimestamp(lo, UTC),
                                                 datetime.fromtimestamp(lo + 300, UTC), level=0, denied_level=0),
                                           batch)]
            for c in topo.clusters}
    per_hour = sum(t.lines for ts in hour.values() for t in ts)
    hours = max(1, -(-records // max(per_hour, 1)))
    sent = 0
    for back in range(hours - 1, -1, -1):  # oldest first, as the data arrives
        shift = -3600 * back
        day = (first + timedelta(seconds=shift)).strftime("%Y%m%d")
        for cluster, templates in hour.items():
            for t in templates:
                yield _Counted("flows", cluster, day, t.moved(shift), t.lines)
                sent += t.lines
                if sent >= records:
                    return


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
        # 3. the same, sequentially: matching's CPU apart from ingest's, at the detector's cadence (a search a
        # minute: the records a minute of ingest alone brought here; all of them when that is more than the
        # bench ingests), and at a search every 10,000 records (a stress cadence, far more often)
        # A server pays DuckDB's and the Arrow kernels' first use once per process (0.1-0.3 s of CPU): paid here
        # on a throwaway store, apart, so that each cadence times the searches of a running detector.
        _, first, _ = sequential_matching(batches[:2], end, status, every=10**12, work_dir=work_dir)
        out["detect_first_search_cpu_s"] = round(sum(first), 3)
        minute = round(60 * records / alone)
        out["detect_minute_records"] = minute
        out["detect_seq_minute_window_records"] = min(minute, records)
        for tag, every in (("minute", minute), ("10k", 10_000)):
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
