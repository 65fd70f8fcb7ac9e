"""The detect bench's measuring parts on a little data: searching after every batch finds what one search
over everything finds, and the timed alerts raise their buckets."""

from __future__ import annotations

from pathlib import Path

from margay.app import _backend
from margay.bench.data import END, flow_batches, topology
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect.bench import ALERTS, FLOWS, _respond, feed_entries, sequential_matching, time_alerts
from margay.detect.feeds import FeedStatus


def test_searching_often_finds_what_one_search_finds(tmp_path: Path) -> None:
    batches = list(flow_batches(topology(2), 6_000, batch=1_000, end=END))
    status = FeedStatus(entries=feed_entries(2_000))
    ingest_cpu, often, hits_often = sequential_matching(batches, END, status, every=1_000, work_dir=tmp_path)
    _, once, hits_once = sequential_matching(batches, END, status, every=10**9, work_dir=tmp_path)
    assert 1 < len(often) <= len(batches) and len(once) == 1
    assert hits_often == hits_once > 0  # the simulator's flows reach the feed's known-bad entries
    assert ingest_cpu > 0 and all(c >= 0 for c in often)


def test_the_timed_alerts_raise_their_buckets(tmp_path: Path) -> None:
    backend = _backend(Settings(data_dir=tmp_path / "d"), FakeClock(END))
    try:
        for b in flow_batches(topology(2), 3_000, end=END):
            backend.ingest(FLOWS, b.cluster, b.body, key=None, now=END, respond=_respond)
        out = time_alerts(backend, END, runs=3)
    finally:
        backend.close()
    for name, _ in ALERTS:
        key = f"detect_alert_{name}_24h"
        assert out[f"{key}_buckets"] > 0
        assert 0 <= out[f"{key}_s_p50"] <= out[f"{key}_s_p95"]
        assert out[f"{key}_cpu_s"] >= 0
