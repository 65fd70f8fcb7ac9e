"""margay's Calico configuration and compliance resources, live from the API server (`serve --kubeconfig`).

One ResourceWatcher lists and watches the Calico configuration kinds and the compliance kinds of spec §12.2.
Each create, change and delete of a configuration kind is handed on at once, without a restart:

    GlobalAlert, GlobalThreatFeed  -> the detector (detect/service.py: cluster_put / cluster_delete)
    GlobalReport                   -> the report jobs (reports/service.py: put / remove)
    LogStorage `tigera-secure`     -> retention days (spec.retention), replacing --config's while it exists
    LogCollector                   -> watched and shown in status only (forwarders come from --config)

The compliance kinds feed the daily snapshots (`snapshot()`): the watcher's cache, refused while any kind
cannot be listed (an API-server outage), so a snapshot is never stale. During an outage the resources last
seen keep working; the watcher retries with back-off and, on recovery, lists again and hands on whatever
changed meanwhile.

Status: GlobalThreatFeed's CRD has a `status` subresource, so each feed's status (lastSuccessfulSync,
lastSuccessfulSearch, errorConditions) is written back there, as Calico does. GlobalAlert's and
GlobalReport's CRDs have none (a write would be an update of the whole object, fighting `kubectl apply`), so
their status is served by margay's API: /apis/projectcalico.org/v3/globalalerts/<name>/status and
/apis/projectcalico.org/v3/globalreports/<name>/status.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ..errors import ConfigError, MargayError
from .resources import CALICO_CONFIG, COMPLIANCE
from .watch import ResourceWatcher, Snapshot

if TYPE_CHECKING:
    from ..detect.service import DetectionService
    from ..reports.resources import Resources
    from ..reports.service import ReportService
    from ..retention import RetentionScheduler
    from ..retention.policy import RetentionPolicy

log = logging.getLogger("margay.kube")

CONFIG_KINDS = ("GlobalAlert", "GlobalThreatFeed", "GlobalReport", "LogStorage", "LogCollector")
_V3 = "projectcalico.org/v3"


def as_v3(obj: dict[str, Any]) -> dict[str, Any]:
    """A Calico object as its projectcalico.org/v3 document (the CRD form, crd.projectcalico.org/v1, has
    the same spec): name and labels kept, server-set metadata and status dropped."""
    meta = obj.get("metadata") or {}
    out_meta = {k: meta[k] for k in ("name", "labels", "annotations") if k in meta}
    return {"apiVersion": _V3, "kind": obj.get("kind"), "metadata": out_meta, "spec": obj.get("spec") or {}}


class ClusterSource:
    """Hands the API server's Calico configuration to the detector, report jobs and retention; snapshots."""

    def __init__(self, watcher: ResourceWatcher, *, detection: DetectionService | None = None,
                 reports: ReportService | None = None, retention: RetentionScheduler | None = None,
                 status_interval: float = 30.0) -> None:
        self.watcher = watcher
        self.detection, self.reports, self.retention = detection, reports, retention
        self.base_policy: RetentionPolicy | None = retention.policy if retention is not None else None
        self.log_storage_error = ""
        self.status_interval = status_interval
        self._written: dict[str, dict[str, Any]] = {}  # feed -> the status last written to the API server
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        watcher.on_change = self.on_change

    @classmethod
    def connect(cls, conn: Any, *, snapshots: bool = True, **kw: Any) -> ClusterSource:
        kinds = CALICO_CONFIG + (COMPLIANCE if snapshots else ())
        return cls(ResourceWatcher(conn, kinds), **kw)

    # -- changes -----------------------------------------------------------------------------------------------
    def on_change(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """Called by the watcher's threads for every ADDED / MODIFIED / DELETED object."""
        if kind not in CONFIG_KINDS:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        with self._lock:
            try:
                if kind in ("GlobalAlert", "GlobalThreatFeed") and self.detection is not None:
                    if event == "DELETED":
                        self.detection.cluster_delete(kind, name)
                        self._written.pop(name, None)
                    else:
                        self.detection.cluster_put(as_v3(obj))
                elif kind == "GlobalReport" and self.reports is not None:
                    if event == "DELETED":
                        self.reports.remove(name)
                    else:
                        self.reports.put(as_v3(obj))
                elif kind == "LogStorage":
                    self._log_storage(event, obj)
            except MargayError as exc:  # already recorded where it shows; never kill the watch thread
                log.warning("%s %s from the API server: %s", kind, name, exc.message)
        log.info("%s %s %s from the API server", kind, name, event.lower())

    def _log_storage(self, event: str, obj: dict[str, Any]) -> None:
        from ..retention.policy import NAME, RetentionPolicy

        if self.retention is None or (obj.get("metadata") or {}).get("name") != NAME:
            return
        if event == "DELETED":
            if self.base_policy is not None:
                self.retention.policy = self.base_policy
            self.log_storage_error = ""
            return
        try:
            self.retention.policy = RetentionPolicy.from_log_storage(obj)
            self.log_storage_error = ""
        except ConfigError as exc:  # the previous days stay
            self.log_storage_error = exc.message
            raise

    # -- snapshots ---------------------------------------------------------------------------------------------
    def snapshot(self) -> Resources:
        """The compliance kinds as snapshot Resources; ConfigError while the API server cannot be listed."""
        from ..reports.resources import load_dump

        status = self.watcher.status()
        failing = {k: v["last_error"] for k, v in status.items() if k in COMPLIANCE
                   and ((not v["synced"] and v["last_error"] != "not served") or
                        (v["last_error"] and v["last_error"] != "not served"))}
        if failing:
            kind, why = next(iter(failing.items()))
            raise ConfigError(f"API server {self.watcher.conn.server}: cannot list {', '.join(failing)} "
                              f"({kind}: {why or 'not listed yet'}); the snapshot is retried")
        snap: Snapshot = self.watcher.snapshot()
        lists = [doc for kind, doc in snap.lists.items() if kind in COMPLIANCE]
        if not lists:
            return {}
        return load_dump(b"\n---\n".join(orjson.dumps(d) for d in lists), "API server")

    # -- status written back -------------------------------------------------------------------------------------
    def write_feed_status(self) -> int:
        """Write each cluster feed's status to its `status` subresource when it changed; returns writes."""
        if self.detection is None:
            return 0
        n = 0
        for kind, name in sorted(self.detection.from_cluster):
            if kind != "GlobalThreatFeed":
                continue
            full = self.detection.status(kind, name)
            st = {k: full[k] for k in ("lastSuccessfulSync", "lastSuccessfulSearch", "errorConditions")
                  if full.get(k) is not None}
            st["errorConditions"] = [{"type": e["type"], "message": e["message"]}
                                     for e in st.get("errorConditions", [])]
            if self._written.get(name) == st:
                continue
            if self.watcher.get(kind, name) is None:
                continue
            try:
                r = self.watcher.patch_status(kind, name, st)
            except (httpx.HTTPError, ConfigError) as exc:
                log.warning("status of GlobalThreatFeed %s not written: %s", name, exc)
                continue
            if r.status_code == 200:
                self._written[name] = st
                n += 1
            else:
                log.warning("status of GlobalThreatFeed %s not written: HTTP %s %s", name, r.status_code,
                            r.text[:200])
        return n

    def status(self) -> dict[str, Any]:
        return {"server": self.watcher.conn.server, "kinds": self.watcher.status(),
                "logStorage": {"error": self.log_storage_error} if self.log_storage_error else {}}

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.watcher.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="margay-kube-status", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.status_interval):
            try:
                self.write_feed_status()
            except Exception:
                log.exception("writing GlobalThreatFeed status failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.watcher.stop()
