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


def test_the_bulk_day_is_the_simulators_hour_with_its_times_moved() -> None:
    """day_of_flows renders one hour and repeats it: its last hour is byte for byte the simulator's, and each
    earlier hour is the same records an hour (3600 s, 3,600,000 ms) earlier."""
    from datetime import UTC, datetime, timedelta

    import orjson

    from margay.detect.bench import day_of_flows
    from margay.simulate import flows, ndjson_batches

    topo = topology(2)
    lo = int((END - timedelta(hours=1)).timestamp())
    sim = [b for c in topo.clusters for t in range(lo, lo + 3600, 300)
           for b in ndjson_batches(flows(topo, c, datetime.fromtimestamp(t, UTC), datetime.fromtimestamp(t + 300, UTC),
                                         level=0, denied_level=0), 50_000)]
    per_hour = sum(b.count(b"\n") for b in sim)
    three = list(day_of_flows(topo, 3 * per_hour, end=END))
    assert [b.body for b in three[-len(sim):]] == sim
    assert sum(b.records for b in three) == 3 * per_hour == sum(b.body.count(b"\n") for b in three)
    assert {b.day for b in three} == {"20261125"}
    for back, batch in ((2, three[0]), (1, three[len(sim)])):
        got = [orjson.loads(line) for line in batch.body.splitlines()]
        want = [orjson.loads(line) for line in sim[0].splitlines()]
        for g, w in zip(got, want, strict=True):
            assert g["start_time"] == w["start_time"] - 3600 * back and g["end_time"] == w["end_time"] - 3600 * back
            assert g["@timestamp"] == w["@timestamp"] - 3_600_000 * back
            assert {k: v for k, v in g.items() if k not in ("start_time", "end_time", "@timestamp")} == {
                k: v for k, v in w.items() if k not in ("start_time", "end_time", "@timestamp")}
