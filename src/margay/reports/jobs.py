"""Report jobs: GlobalReports run on their schedules, one job at a time, failed jobs retried (up to 10
attempts, as Calico), suspend and resume (missed intervals are created on resume), and Calico-shaped status
(`lastSuccessfulReportJobs`, `lastFailedReportJobs`, `activeReportJobs`, `lastScheduledReportJob`) kept
in a JSON file so a restart resumes where it stopped. Time comes from the injected Clock."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..clock import Clock
from ..errors import MargayError
from ..query.model import parse_time
from ..store.backend import Backend
from . import reporter
from .schedule import JOB_START_DELAY, Schedule, due
from .state import Checkpoints

log = logging.getLogger("margay.reports")
MAX_ATTEMPTS = 10
_KEEP = 5  # jobs listed per status list, newest first


def failure_message(exc: Exception) -> str:
    """A failure for the status: margay's own message, else the exception's type and text (no traceback)."""
    return exc.message if isinstance(exc, MargayError) else f"{type(exc).__name__}: {exc}"[:500]


def _t(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Entry:
    report: dict[str, Any]
    schedule: Schedule
    last_end: datetime  # the end of the last interval handled (done or given up)
    attempts: int = 0  # failed attempts of the next interval
    status: dict[str, Any] = field(default_factory=lambda: {
        "lastSuccessfulReportJobs": [], "lastFailedReportJobs": [], "activeReportJobs": [],
        "lastScheduledReportJob": None})


class ReportJobs:
    """The GlobalReports of one cluster and their jobs."""

    def __init__(self, backend: Backend, cluster: str, clock: Clock, *, state_file: Path | None = None,
                 delay: timedelta = JOB_START_DELAY, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.backend, self.cluster, self.clock = backend, cluster, clock
        self.state_file, self.delay, self.max_attempts = state_file, delay, max_attempts
        self.entries: dict[str, _Entry] = {}
        self.checkpoints = Checkpoints()  # incremental replay between consecutive jobs (state.py)
        self._saving = threading.Lock()
        self._saved: dict[str, Any] = {}
        if state_file is not None and state_file.exists():
            self._saved = orjson.loads(state_file.read_bytes())

    def apply(self, report: dict[str, Any]) -> None:
        """Add or replace a GlobalReport (checked, errors naming the field); it needs a schedule."""
        reporter.check_globalreport(report)
        name = report["metadata"]["name"]
        sched = Schedule.parse(report["spec"].get("schedule"), "GlobalReport.spec.schedule")
        old = self.entries.get(name)
        if old is not None:
            old.report, old.schedule = report, sched
            return
        saved = self._saved.get(name)
        if saved:
            now = self.clock.now()
            self.entries[name] = _Entry(report, sched, parse_time(saved["lastEnd"], now, what="lastEnd"),
                                        saved["attempts"], saved["status"])
            return
        # A new report's first interval starts at its first fire time from now.
        now = self.clock.now()
        first = next(sched.fires(now - timedelta(minutes=1), now + timedelta(days=366)), now)
        self.entries[name] = _Entry(report, sched, first)

    def remove(self, name: str) -> bool:
        """Forget a GlobalReport (deleted): no more jobs; its stored reports stay."""
        gone = self.entries.pop(name, None) is not None
        self._saved.pop(name, None)
        self._save()
        return gone

    def status(self, name: str) -> dict[str, Any]:
        return self.entries[name].status

    def tick(self) -> list[dict[str, Any]]:
        """Run every job that is due now, oldest interval first, one at a time; returns what happened."""
        now = self.clock.now()
        done: list[dict[str, Any]] = []
        for name, e in sorted(list(self.entries.items()), key=lambda kv: kv[0]):  # a put may come meanwhile
            if e.report["spec"].get("suspend"):
                continue
            for start, end in due(e.schedule, e.last_end, now, delay=self.delay):
                if start < e.last_end:
                    continue
                job = {"job": f"{name}-{int(end.timestamp())}", "reportStart": _t(start), "reportEnd": _t(end)}
                e.status["lastScheduledReportJob"] = job
                e.status["activeReportJobs"] = [job]
                self.checkpoints.last.pop(self.cluster, None)
                try:
                    reporter.run(self.backend, self.cluster, e.report, start, end, now, self.checkpoints)
                except Exception as exc:  # any failure is a failed attempt: retried, and shown in the status
                    e.attempts += 1
                    if not isinstance(exc, MargayError):
                        log.exception("report job %s failed", job["job"])
                    failed = {**job, "attempt": e.attempts, "error": failure_message(exc), "at": _t(now)}
                    e.status["lastFailedReportJobs"] = [failed, *e.status["lastFailedReportJobs"]][:_KEEP]
                    e.status["activeReportJobs"] = []
                    done.append({"report": name, "result": "failed", **failed})
                    if e.attempts < self.max_attempts:
                        break  # retried at the next tick; later intervals wait for it (one active job)
                    e.attempts, e.last_end = 0, end  # given up: move on
                    continue
                e.attempts, e.last_end = 0, end
                e.status["activeReportJobs"] = []
                e.status["lastSuccessfulReportJobs"] = [{**job, "at": _t(now)},
                                                        *e.status["lastSuccessfulReportJobs"]][:_KEEP]
                base = self.checkpoints.last.pop(self.cluster, None)
                done.append({"report": name, "result": "succeeded", **job,
                             **({"replayedFrom": _t(base[1]), "replayBase": base[0]} if base else {})})
        self._save()
        return done

    def _save(self) -> None:
        if self.state_file is None:
            return
        with self._saving:  # tick() and remove() may run in different threads (margay serve)
            data = {n: {"lastEnd": e.last_end.isoformat(), "attempts": e.attempts, "status": e.status}
                    for n, e in list(self.entries.items())}
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.state_file)
