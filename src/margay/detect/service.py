"""The detector inside `margay serve`: resources from --detect-resources plus those made through the API
(kept under <data_dir>/detect/), a Detector ticking in a background thread, status for the API."""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Any

import yaml

from ..clock import Clock
from ..config import Settings
from ..durable import atomic_write
from ..errors import ConfigError, NotFound
from ..store.backend import Backend
from .feeds import FeedPuller, Network
from .load import load_resources
from .resources import Alert, Resource, ThreatFeed, parse_resource
from .scheduler import Detector

log = logging.getLogger("margay.detect")


def allowed_networks(text: str) -> list[Network]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ConfigError(f"feeds_allow_networks: {part!r} is not a CIDR (e.g. 127.0.0.0/8)") from None
    return out


class DetectionService:
    def __init__(self, backend: Backend, clock: Clock, *, data_dir: Path, resources: Path | None = None,
                 allow: list[Network] | None = None, secrets_dir: Path | None = None,
                 interval: float = 30.0) -> None:
        self.dir = data_dir / "detect"
        self.api_dir = self.dir / "resources"
        self.configured: set[tuple[str, str]] = set()
        self.detector = Detector(backend, clock, puller=FeedPuller(allowed=allow or [], secrets_dir=secrets_dir),
                                 state_path=self.dir / "state.json")
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.from_cluster: set[tuple[str, str]] = set()  # read from the API server (kube/cluster.py)
        self.cluster_errors: dict[tuple[str, str], str] = {}
        if resources is not None:
            for res in load_resources(resources):
                self._put(res)
                self.configured.add((_kind(res), res.name))
        if self.api_dir.is_dir():
            for res in load_resources(self.api_dir):
                self._put(res)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, backend: Backend, clock: Clock) -> DetectionService:
        return cls(backend, clock, data_dir=settings.data_dir, resources=settings.detect_resources,
                   allow=allowed_networks(settings.feeds_allow_networks), secrets_dir=settings.feeds_secrets_dir,
                   interval=float(settings.detect_interval))

    # -- resources from the API server (kube/cluster.py) -----------------------------------------------------
    def cluster_put(self, doc: dict[str, Any]) -> str | None:
        """Add or change a GlobalAlert/GlobalThreatFeed read from the API server; returns why it was refused
        (the previous version, if any, keeps running), or None. --detect-resources wins on a name clash."""
        kind, name = str(doc.get("kind")), str((doc.get("metadata") or {}).get("name"))
        if (kind, name) in self.configured:
            why = f"{kind} {name!r} also comes from --detect-resources, which wins"
        else:
            try:
                res = parse_resource(doc)
            except ConfigError as exc:
                why = exc.message
            else:
                self._put(res)
                self.from_cluster.add((kind, name))
                self.cluster_errors.pop((kind, name), None)
                return None
        self.cluster_errors[(kind, name)] = why
        log.warning("%s %s from the API server refused: %s", kind, name, why)
        return why

    def cluster_delete(self, kind: str, name: str) -> None:
        self.cluster_errors.pop((kind, name), None)
        if (kind, name) not in self.from_cluster:
            return
        self.from_cluster.discard((kind, name))
        self.docs.pop((kind, name), None)
        self.detector.delete(kind, name)

    def _put(self, res: Resource) -> None:
        self.detector.put(res)
        self.docs[(_kind(res), res.name)] = dict(res.source)

    # -- the API's operations ----------------------------------------------------------------------------
    def list(self, kind: str) -> list[dict[str, Any]]:
        return [self.get(kind, name) for (k, name) in sorted(self.docs) if k == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        doc = self.docs.get((kind, name))
        if doc is None:
            raise NotFound(f"{kind} {name!r} not found")
        return {**doc, "status": self.status(kind, name)}

    def status(self, kind: str, name: str) -> dict[str, Any]:
        if (kind, name) in self.cluster_errors:
            st = self._status(kind, name)
            return {**st, "errorConditions": [{"type": "Invalid", "message": self.cluster_errors[(kind, name)]},
                                              *st.get("errorConditions", [])]}
        return self._status(kind, name)

    def _status(self, kind: str, name: str) -> dict[str, Any]:
        if kind == "GlobalThreatFeed":
            st = self.detector.feed_status.get(name)
            return st.as_status() if st else {}
        if kind == "GlobalAlert":
            ast = self.detector.alert_status.get(name)
            alert = self.detector.alerts.get(name)
            return ast.as_status(active=alert is None or not alert.disabled) if ast else {}
        return {}

    def apply(self, doc: Any) -> dict[str, Any]:
        """Create or replace a resource (checked first); resources from --detect-resources are read-only."""
        res = parse_resource(doc)
        kind = doc["kind"]
        if (kind, res.name) in self.configured:
            raise ConfigError(f"{kind} {res.name!r} comes from --detect-resources; change it there")
        if (kind, res.name) in self.from_cluster:
            raise ConfigError(f"{kind} {res.name!r} comes from the API server; change it there (kubectl apply)")
        body = {k: v for k, v in doc.items() if k != "status"}
        self.api_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.api_dir / f"{kind}.{res.name}.yaml", yaml.safe_dump(body, sort_keys=False).encode())
        self._put(res)
        return self.get(kind, res.name)

    def delete(self, kind: str, name: str) -> None:
        if (kind, name) in self.configured:
            raise ConfigError(f"{kind} {name!r} comes from --detect-resources; remove it there")
        if (kind, name) in self.from_cluster:
            raise ConfigError(f"{kind} {name!r} comes from the API server; delete it there (kubectl delete)")
        if (kind, name) not in self.docs:
            raise NotFound(f"{kind} {name!r} not found")
        (self.api_dir / f"{kind}.{name}.yaml").unlink(missing_ok=True)
        del self.docs[(kind, name)]
        self.detector.delete(kind, name)

    # -- background ----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="margay-detect", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for job, outcome in self.detector.tick(timeout=self.interval).items():
                    if outcome.startswith("error"):
                        log.warning("detect %s: %s", job, outcome)
            except Exception:
                log.exception("detector tick failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        self.detector.close()


def _kind(res: Resource) -> str:
    return "GlobalThreatFeed" if isinstance(res, ThreatFeed) else res.kind if isinstance(res, Alert) else "?"
