"""Retention: LogStorage parsing, Calico's day rule across UTC midnights, real disk freed, the disk guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import pytest

from margay.app import Margay, create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.errors import ConfigError
from margay.logtypes import REGISTRY
from margay.metrics import Registry
from margay.retention import DiskGuard, RetentionPolicy, RetentionScheduler
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend
from margay.testing.server import ServerThread

LOGSTORAGE = """
apiVersion: operator.tigera.io/v1
kind: LogStorage
metadata: {name: tigera-secure}
spec:
  retention: {flows: 2, dnsLogs: 3, auditReports: 30}
"""


class FakeBackend:
    def __init__(self, parts: list[Partition]) -> None:
        self.parts = list(parts)
        self.dropped: list[Partition] = []
        self.calls: list[list[Partition]] = []

    def partitions(self) -> list[Partition]:
        return list(self.parts)

    def drop_many(self, parts: list[Partition]) -> dict[str, int]:
        self.calls.append(list(parts))
        for p in parts:
            self.parts.remove(p)
            self.dropped.append(p)
        return {p.index: p.docs for p in parts}


def test_logstorage_days_and_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(LOGSTORAGE)
    p = RetentionPolicy.from_file(cfg)
    assert (p.days_for("flows"), p.days_for("dns"), p.days_for("bgp")) == (2, 3, 8)
    assert (p.days_for("audit_ee"), p.days_for("audit_kube")) == (30, 30)
    assert (p.days_for("events"), p.days_for("l7")) == (91, 1)  # fixed
    assert RetentionPolicy().days_for("flows") == 8


@pytest.mark.parametrize(("retention", "field"), [
    ("{flows: -1}", "spec.retention.flows"), ("{flows: seven}", "spec.retention.flows"),
    ("{l7: 3}", "spec.retention.l7"), ("{events: 3}", "spec.retention.events"),
])
def test_invalid_logstorage_names_the_field(retention: str, field: str) -> None:
    doc = {"apiVersion": "operator.tigera.io/v1", "kind": "LogStorage", "spec": {"retention": None}}
    import yaml

    doc["spec"]["retention"] = yaml.safe_load(retention)
    with pytest.raises(ConfigError, match=field):
        RetentionPolicy.from_log_storage(doc)


def test_partitions_go_exactly_when_their_day_began_n_days_ago() -> None:
    days = ["20260101", "20260102", "20260103"]
    backend = FakeBackend([Partition("flows", "c", d, 1, 10) for d in days] +
                          [Partition("dns", "c", d, 1, 10) for d in days])
    policy = RetentionPolicy({**RetentionPolicy().days, "flows": 2, "dns": 3})
    clock = FakeClock(datetime(2026, 1, 2, 23, 59, 59, tzinfo=UTC))
    sched = RetentionScheduler(backend, policy, clock=clock)
    assert sched.run_once() == []
    clock.set(datetime(2026, 1, 3, 0, 0, tzinfo=UTC))  # 2026-01-01 began 2 days ago: flows go
    assert [(p.log_type, p.day) for p in sched.run_once()] == [("flows", "20260101")]
    # 00:30 on Jan 4 in UTC+01:00 is still Jan 3 in UTC: nothing more goes.
    clock.set(datetime(2026, 1, 4, 0, 30, tzinfo=timezone(timedelta(hours=1))))
    assert sched.run_once() == []
    clock.set(datetime(2026, 1, 4, 0, 0, tzinfo=UTC))
    assert sorted((p.log_type, p.day) for p in sched.run_once()) == [("dns", "20260101"), ("flows", "20260102")]
    status = {r["type"]: r for r in sched.status()}
    assert status["flows"]["next_expiry_day"] == "20260103"
    assert status["flows"]["next_expiry_at"] == "2026-01-05T00:00:00+00:00"
    assert status["dns"]["partitions"] == 2 and status["dns"]["bytes"] == 20


def test_a_day_that_is_no_date_never_stops_the_run() -> None:
    """A nine-digit day (a record past 9999, stored before ingest refused them) is never removable, and the
    run and the status go on with every other partition instead of failing on it."""
    backend = FakeBackend([Partition("flows", "a", "100000101", 1, 10), Partition("flows", "b", "20250101", 1, 10)])
    sched = RetentionScheduler(backend, clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    assert [(p.cluster, p.day) for p in sched.run_once()] == [("b", "20250101")]
    assert [r["cluster"] for r in sched.status()] == ["a"]


def test_dry_run_drops_nothing() -> None:
    backend = FakeBackend([Partition("flows", "c", "20250101", 1, 1)])
    sched = RetentionScheduler(backend, clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    assert len(sched.run_once(dry_run=True)) == 1 and backend.dropped == []


def test_a_type_and_day_expired_for_many_clusters_goes_in_one_drop_and_is_counted_per_partition() -> None:
    """Retention expires a type's day for every cluster together: one drop_many per (type, day), so the embedded
    store rewrites a shared file once rather than once per cluster; metrics stay per partition."""
    clusters = [f"c{i}" for i in range(5)]
    backend = FakeBackend([Partition(t, c, d, 3, 30) for t in ("flows", "dns") for c in clusters
                           for d in ("20260101", "20260102", "20260110")])
    metrics = Registry()
    sched = RetentionScheduler(backend, RetentionPolicy({**RetentionPolicy().days, "flows": 2, "dns": 2}),
                               clock=FakeClock(datetime(2026, 1, 4, tzinfo=UTC)), metrics=metrics)
    assert len(sched.run_once()) == 20
    assert [(c[0].log_type, c[0].day, sorted(p.cluster for p in c)) for c in backend.calls] == [
        (t, d, clusters) for t in ("dns", "flows") for d in ("20260101", "20260102")]
    assert metrics.get("margay_retention_dropped_partitions_total", type="flows", cluster="c3") == 2
    assert metrics.get("margay_retention_dropped_records_total", type="dns", cluster="c0") == 6
    assert metrics.get("margay_retention_freed_bytes_total", type="flows") == 300
    assert {p.day for p in backend.parts} == {"20260110"}


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_drop_frees_disk_in_the_embedded_store(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    backend = DuckDBBackend(tmp_path, clock=clock, compact_interval=3600)
    try:
        lt = REGISTRY["flows"]
        for day, end in (("old", 1767139200 + 3600), ("new", 1767225600 + 3600)):  # Dec 31 and Jan 1
            body = b"\n".join(orjson.dumps({"start_time": end - 300, "end_time": end, "action": "allow",
                                            "reporter": "src", "bytes_in": i, "host": f"{day}-{i}"})
                              for i in range(2000))
            backend.ingest(lt, "c", body, key=None, now=clock.now(), respond=lambda conv: {"ok": True})
        before = _dir_bytes(tmp_path / "store")
        clock.set(datetime(2026, 1, 8, tzinfo=UTC))  # Dec 31 began 8 days ago
        gone = RetentionScheduler(backend, clock=clock).run_once()
        assert [p.day for p in gone] == ["20251231"]
        assert [p.day for p in backend.partitions()] == ["20260101"]
        after = _dir_bytes(tmp_path / "store")
        assert after < before and before - after >= gone[0].bytes
    finally:
        backend.close()


def test_disk_guard_answers_507_and_counts(tmp_path: Path) -> None:
    m = Margay(Settings(data_dir=tmp_path / "data", min_free_bytes=10 * 2**30))
    free = {"bytes": 100 * 2**30}
    m.disk = DiskGuard(tmp_path, m.settings.min_free_bytes, free=lambda _p: free["bytes"], metrics=m.metrics)
    line = b'{"start_time":1767225600,"end_time":1767225900,"action":"allow","reporter":"src"}'
    with ServerThread(create_app(m.settings, margay=m)) as s:
        url = s.url + "/api/v1/flows/logs/bulk"
        headers = {"content-type": "application/x-ndjson"}
        assert httpx.post(url, content=line, headers=headers).status_code == 200
        free["bytes"] = 2**20
        r = httpx.post(url, content=line, headers=headers)
        assert r.status_code == 507
        err = r.json()["error"]
        assert err["type"] == "insufficient_storage" and "min_free_bytes" in err["message"]
        assert m.metrics.get("margay_disk_refused_batches_total") == 1
        assert "margay_disk_free_bytes" in httpx.get(s.url + "/-/metrics").text
        # What was acknowledged before is still there.
        assert sum(p.docs for p in m.backend.partitions()) == 1


def test_free_bytes_is_the_volumes_free_space_for_the_path_or_its_nearest_existing_parent(tmp_path: Path) -> None:
    """What the disk guard asks on every ingest request: one statvfs of the data directory (no resolve), and
    for a path not made yet (a data directory before start-up) its nearest existing parent's volume."""
    import os
    import shutil

    from margay.retention import free_bytes

    link = tmp_path / "link"
    os.symlink(tmp_path, link)
    for path in (tmp_path, link, tmp_path / "not" / "made" / "yet"):
        # The volume is shared with other writers: free space may move a little between the two looks.
        assert abs(free_bytes(path) - shutil.disk_usage(tmp_path).free) < 256 * 2**20
    assert not (tmp_path / "not").exists()


def test_disk_guard_reuses_a_reading_far_above_the_floor_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's guard asks the volume at most every REUSE_SECONDS while it has REUSE_MARGIN to spare; near
    the floor it asks on every request, and below it every request is refused."""
    from margay.errors import InsufficientStorage
    from margay.retention import disk

    now = [1000.0]
    monkeypatch.setattr(disk.time, "monotonic", lambda: now[0])
    free = {"bytes": 10 * disk.REUSE_MARGIN}
    asked: list[int] = []

    def ask(_p: Path) -> int:
        asked.append(free["bytes"])
        return free["bytes"]

    guard = DiskGuard(Path("/data"), disk.REUSE_MARGIN, free=ask, reuse_for=disk.REUSE_SECONDS)
    for _ in range(5):
        guard.check()
    assert len(asked) == 1  # far above the floor: one reading answers the next tenth of a second
    now[0] += disk.REUSE_SECONDS
    free["bytes"] = disk.REUSE_MARGIN + disk.REUSE_MARGIN // 2  # within REUSE_MARGIN of the floor
    for _ in range(3):
        guard.check()
    assert len(asked) == 4  # asked again once the reading was old, then on every request
    free["bytes"] = disk.REUSE_MARGIN - 1
    for _ in range(2):
        with pytest.raises(InsufficientStorage):
            guard.check()
    assert len(asked) == 6
    plain = DiskGuard(Path("/data"), disk.REUSE_MARGIN, free=ask)  # reuse_for=0: every request asks
    free["bytes"] = 10 * disk.REUSE_MARGIN
    plain.check()
    plain.check()
    assert len(asked) == 8
