"""Report jobs on a fake clock, on both engines: due intervals run, a failed job is retried and shows in the
status, suspend and resume, status survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from margay.app import Margay
from margay.clock import FakeClock
from margay.config import Settings
from margay.reports import snapshots
from margay.reports.jobs import ReportJobs
from margay.reports.resources import load_dump

DAY1 = datetime(2026, 12, 1, tzinfo=UTC)
DUMP = yaml.safe_dump({"kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": {}}]}).encode()
REPORT = {"kind": "GlobalReport", "metadata": {"name": "daily"},
          "spec": {"reportType": "inventory", "schedule": "0 0 * * *"}}


@pytest.fixture
def store(engine: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Any, FakeClock]]:
    clock = FakeClock(DAY1 - timedelta(hours=1))
    m = Margay(Settings(data_dir=tmp_path / "data", **engine), clock=clock)
    yield m.backend, clock
    m.close()


def test_failed_job_is_retried_and_shown(store: tuple[Any, FakeClock], tmp_path: Path) -> None:
    backend, clock = store
    jobs = ReportJobs(backend, "c1", clock, state_file=tmp_path / "jobs.json", max_attempts=3)
    jobs.apply(REPORT)  # created at 23:00: the first interval is [Dec 1, Dec 2)
    clock.set(DAY1 + timedelta(days=1, minutes=29))
    assert jobs.tick() == []  # the job starts 30 minutes after the interval ends
    clock.advance(timedelta(minutes=1))
    got = jobs.tick()  # no snapshot yet: the job fails
    assert [(g["result"], g["attempt"]) for g in got] == [("failed", 1)]
    assert "no snapshot of cluster 'c1'" in got[0]["error"]
    st = jobs.status("daily")
    assert st["lastFailedReportJobs"][0]["reportEnd"] == "2026-12-02T00:00:00Z"
    assert st["lastSuccessfulReportJobs"] == [] and st["activeReportJobs"] == []
    snapshots.take(backend, "c1", load_dump(DUMP), started=DAY1 - timedelta(minutes=5),
                   completed=DAY1 - timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    got = jobs.tick()  # retried: now it succeeds
    assert [(g["result"], g["reportStart"], g["reportEnd"]) for g in got] == [
        ("succeeded", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")]
    st = jobs.status("daily")
    assert [j["reportEnd"] for j in st["lastSuccessfulReportJobs"]] == ["2026-12-02T00:00:00Z"]
    assert st["lastScheduledReportJob"]["job"] == "daily-" + str(int((DAY1 + timedelta(days=1)).timestamp()))
    assert jobs.tick() == []  # nothing more is due today

    # a restart keeps the status and the position
    again = ReportJobs(backend, "c1", clock, state_file=tmp_path / "jobs.json", max_attempts=3)
    again.apply(REPORT)
    assert again.status("daily") == st and again.tick() == []


def test_gives_up_after_the_last_attempt(store: tuple[Any, FakeClock]) -> None:
    backend, clock = store
    jobs = ReportJobs(backend, "c1", clock, max_attempts=2)
    jobs.apply(REPORT)
    clock.set(DAY1 + timedelta(days=2, minutes=31))  # two intervals due, no snapshot at all
    assert [(g["reportEnd"], g["attempt"]) for g in jobs.tick()] == [("2026-12-02T00:00:00Z", 1)]
    got = jobs.tick()  # second attempt of the first interval fails: given up; the next one fails once
    assert [(g["reportEnd"], g["attempt"]) for g in got] == [("2026-12-02T00:00:00Z", 2),
                                                             ("2026-12-03T00:00:00Z", 1)]
    assert len(jobs.status("daily")["lastFailedReportJobs"]) == 3


def test_suspend_and_resume_creates_missed_jobs(store: tuple[Any, FakeClock]) -> None:
    backend, clock = store
    snapshots.take(backend, "c1", load_dump(DUMP), started=DAY1 - timedelta(minutes=5),
                   completed=DAY1 - timedelta(minutes=5))
    jobs = ReportJobs(backend, "c1", clock)
    jobs.apply({**REPORT, "spec": {**REPORT["spec"], "suspend": True}})
    clock.set(DAY1 + timedelta(days=3, hours=1))
    assert jobs.tick() == []
    jobs.apply(REPORT)  # resumed
    assert [g["reportEnd"] for g in jobs.tick()] == ["2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z",
                                                     "2026-12-04T00:00:00Z"]
