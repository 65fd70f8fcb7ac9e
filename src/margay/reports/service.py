"""Compliance inside `margay serve`: GlobalReport jobs ticked on the injected clock, and daily snapshots.

GlobalReports come from `--reports-resources` (YAML files, read-only) and, with `--kubeconfig`, from the API
server (kube/cluster.py calls `put`/`remove` as they are created, changed and deleted). A background thread
calls `tick()` every `interval` seconds: first a snapshot when one is due, then every due report job
(reports/jobs.py: start delay, retries, suspend, status).

Snapshots are taken daily at `snapshot_hour` (UTC, Calico's TIGERA_COMPLIANCE_SNAPSHOT_HOUR), and at once
when the last one is older than the newest such hour (a new server snapshots on its first tick). The source
is the live API server's list+watch cache when connected, else the dumps folder (`kubectl get -o yaml`
output, re-read each time so an operator can drop new dumps in). A snapshot that fails (the API server
unreachable, a malformed dump) is retried at every tick and shows in `snapshot_status()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from ..clock import Clock
from ..durable import atomic_write
from ..errors import ConfigError, MargayError, NotFound, ParseError
from ..names import CLUSTER_RULE, is_cluster_name
from ..query.model import parse_time
from ..store.backend import Backend
from . import reporter, snapshots
from .jobs import ReportJobs, failure_message
from .resources import Resources, load_dump

log = logging.getLogger("margay.reports")

SnapshotSource = Callable[[], Resources]  # raises MargayError when no snapshot can be taken now
_KEEP_ERRORS = 5


def _t(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def dumps_source(folder: Path) -> SnapshotSource:
    """Resources from every *.yaml/*.yml/*.json dump in a folder (or one file), read at each call."""
    def take() -> Resources:
        if not folder.exists():
            raise ConfigError(f"snapshot dumps {folder}: no such file or folder")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")) \
            if folder.is_dir() else [folder]
        merged: Resources = {}
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                raise ConfigError(f"snapshot dump {f}: {exc.strerror}") from None
            for kind, items in load_dump(data, str(f)).items():
                merged.setdefault(kind, {}).update(items)
        return merged
    return take


def load_globalreports(path: Path) -> list[dict[str, Any]]:
    """Every GlobalReport in a YAML file or folder (other kinds are skipped); errors name file and field."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for f in files:
        try:
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{f}: not readable YAML: {str(exc).splitlines()[0]}") from None
        for i, doc in enumerate(docs):
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for j, item in enumerate(items or []):
                if isinstance(item, dict) and item.get("kind") == "GlobalReport":
                    where = f"{f} document {i + 1}" + (f" item {j + 1}" if doc is not item else "")
                    out.append(reporter.check_globalreport(item, where))
    return out


class ReportService:
    """The GlobalReports of one cluster, their jobs, and the daily snapshots they start from."""

    def __init__(self, backend: Backend, clock: Clock, *, data_dir: Path, cluster: str = "cluster",
                 resources: Path | None = None, snapshot_source: SnapshotSource | None = None,
                 snapshot_hour: int = 0, interval: float = 60.0) -> None:
        if not 0 <= snapshot_hour <= 23:
            raise ConfigError(f"snapshot_hour: expected 0-23, got {snapshot_hour}")
        if not is_cluster_name(cluster):
            raise ConfigError(f"reports_cluster: {cluster!r} is not a cluster name ({CLUSTER_RULE})")
        self.backend, self.clock, self.cluster = backend, clock, cluster
        self.dir = data_dir / "reports"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jobs = ReportJobs(backend, cluster, clock, state_file=self.dir / "jobs.json")
        self.snapshot_source = snapshot_source
        self.snapshot_hour, self.interval = snapshot_hour, interval
        self.origin: dict[str, str] = {}  # report name -> "file" | "cluster"
        self.errors: dict[str, str] = {}  # report name -> why the cluster's version was refused
        self._lock = threading.RLock()
        self._ticking = threading.Lock()
        self._snap_file = self.dir / "snapshots.json"
        self._snap: dict[str, Any] = {"last": None, "attempts": 0, "errors": []}
        if self._snap_file.exists():
            self._snap = orjson.loads(self._snap_file.read_bytes())
        if resources is not None:
            for report in load_globalreports(resources):
                self.jobs.apply(report)
                self.origin[report["metadata"]["name"]] = "file"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- GlobalReports ---------------------------------------------------------------------------------------
    def put(self, report: dict[str, Any], origin: str = "cluster") -> None:
        """Add or change a GlobalReport; one from --reports-resources is not replaced by the cluster's."""
        name = str((report.get("metadata") or {}).get("name") or "")
        with self._lock:
            if self.origin.get(name) == "file" and origin != "file":
                self.errors[name] = "a GlobalReport of this name comes from --reports-resources, which wins"
                return
            try:
                self.jobs.apply(report)
            except MargayError as exc:
                self.errors[name] = exc.message
                log.warning("GlobalReport %s refused: %s", name, exc.message)
                return  # a previous good version, if any, stays scheduled
            self.errors.pop(name, None)
            self.origin[name] = origin

    def remove(self, name: str, origin: str = "cluster") -> None:
        with self._lock:
            self.errors.pop(name, None)
            if self.origin.get(name) != origin:
                return
            self.jobs.remove(name)
            del self.origin[name]

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.get(name) for name in sorted(self.jobs.entries)]

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            e = self.jobs.entries.get(name)
            if e is None:
                raise NotFound(f"GlobalReport {name!r} not found")
            meta = {k: v for k, v in (e.report.get("metadata") or {}).items() if k in ("name", "labels")}
            return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": meta,
                    "spec": e.report.get("spec"), "status": self.status(name)}

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            st = dict(self.jobs.status(name))
            st["source"] = self.origin.get(name, "")
            if name in self.errors:
                st["errorConditions"] = [{"type": "Invalid", "message": self.errors[name]}]
            return st

    # -- snapshots -------------------------------------------------------------------------------------------
    def snapshot_due(self, now: datetime) -> datetime | None:
        """The snapshot time that is due now (the newest `snapshot_hour` at or before now), or None."""
        if self.snapshot_source is None:
            return None
        fire = now.replace(hour=self.snapshot_hour, minute=0, second=0, microsecond=0)
        if fire > now:
            fire -= timedelta(days=1)
        last = self._snap.get("last")
        if last is not None and parse_time(last, now, what="last snapshot") >= fire:
            return None
        return fire

    def take_snapshot(self, now: datetime) -> int:
        """One snapshot now from the source, stored through the Backend; returns the number of resources."""
        if self.snapshot_source is None:
            raise ConfigError("no snapshot source: give --kubeconfig or --snapshot-dumps")
        resources = self.snapshot_source()
        return snapshots.take(self.backend, self.cluster, resources, started=now, completed=now)

    def snapshot_status(self) -> dict[str, Any]:
        return {"lastSuccessfulSnapshot": self._snap.get("last"), "failedAttempts": self._snap.get("attempts", 0),
                "errorConditions": list(self._snap.get("errors", [])), "snapshotHour": self.snapshot_hour,
                "resources": self._snap.get("resources")}

    def _snapshot_tick(self, now: datetime) -> dict[str, Any] | None:
        if self.snapshot_due(now) is None:
            return None
        try:
            n = self.take_snapshot(now)
        except Exception as exc:  # any failure: retried at the next tick, and shown in the status
            if not isinstance(exc, MargayError):
                log.exception("snapshot failed")
            message = failure_message(exc)
            self._snap["attempts"] = int(self._snap.get("attempts", 0)) + 1
            self._snap["errors"] = [{"type": "SnapshotFailed", "message": message, "at": _t(now)},
                                    *self._snap.get("errors", [])][:_KEEP_ERRORS]
            self._save_snap()
            return {"snapshot": "failed", "attempt": self._snap["attempts"], "error": message}
        self._snap = {"last": _t(now), "attempts": 0, "errors": [], "resources": n}
        self._save_snap()
        return {"snapshot": "taken", "at": _t(now), "resources": n}

    def _save_snap(self) -> None:
        atomic_write(self._snap_file, orjson.dumps(self._snap, option=orjson.OPT_INDENT_2))

    # -- ticking ---------------------------------------------------------------------------------------------
    def tick(self) -> list[dict[str, Any]]:
        """A due snapshot, then every due report job; returns what happened (for logs and tests)."""
        now = self.clock.now()
        with self._ticking:  # one tick at a time; `_lock` is only held briefly, so puts and status reads
            out = []         # (the API, the watcher's threads) never wait for a long report job
            snap = self._snapshot_tick(now)
            if snap is not None:
                out.append(snap)
            out.extend(self.jobs.tick())
            return out

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="margay-reports", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for what in self.tick():
                    level = logging.WARNING if "failed" in what.values() else logging.INFO
                    log.log(level, "reports: %s", what)
            except (MargayError, OSError, ParseError) as exc:
                log.warning("reports tick failed: %s", exc)
            except Exception:
                log.exception("reports tick failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)
