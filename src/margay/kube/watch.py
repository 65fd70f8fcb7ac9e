"""ResourceWatcher: list, then watch, each kind of a Kubernetes API server into a thread-safe cache.

Per kind one thread: find where the kind is served (discovery; a kind not served is looked for again every
`retry_interval`, so a CRD installed later is picked up), LIST it in pages, then WATCH from the list's
resourceVersion with bookmarks. A watch that ends is resumed from the newest resourceVersion seen; `410 Gone`
(the version fell out of the API server's window) means a fresh LIST. Errors back off and retry; they are
counted in `status()`. `managedFields` are dropped from cached objects. `on_change` hears every object of
the first LIST as ADDED, then each watch event, and after a re-LIST (a recovery) what differs from before.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..access.kube import Connection
from ..clock import Clock, SystemClock
from ..errors import ConfigError
from .resources import CALICO_CONFIG, COMPLIANCE, KINDS, Kind, api_kind

log = logging.getLogger("margay.kube")

OnChange = Callable[[str, str, dict[str, Any]], None]  # (kind name, ADDED|MODIFIED|DELETED, object)


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


@dataclass
class _KindState:
    kind: Kind
    api_version: str | None = None
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    resource_version: str = ""
    synced: bool = False
    lists: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass
class Snapshot:
    """Full lists of every kind, in the shape of spec §12.2: per kind `{kind: <Kind>List, apiVersion, metadata:
    {resourceVersion}, items, requestStartedTimestamp, requestCompletedTimestamp}`. Kinds the cluster does
    not serve are absent."""

    lists: dict[str, dict[str, Any]]

    def items(self, kind: str) -> list[dict[str, Any]]:
        doc = self.lists.get(kind)
        return list(doc["items"]) if doc else []


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


class ResourceWatcher:
    """List+watch `kinds` (names of resources.KINDS) of one API server; read with objects() or snapshot()."""

    def __init__(self, conn: Connection, kinds: Iterable[str] = COMPLIANCE + CALICO_CONFIG, *,
                 on_change: OnChange | None = None, clock: Clock | None = None, watch_seconds: int = 300,
                 retry_interval: float = 5.0, page_size: int = 500, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ConfigError(f"unknown kinds {unknown}: use {', '.join(KINDS)}")
        self.conn = conn
        self.on_change = on_change
        self.clock = clock or SystemClock()
        self.watch_seconds = watch_seconds
        self.retry_interval = retry_interval
        self.page_size = page_size
        self.http = httpx.Client(base_url=conn.server, verify=conn.verify, cert=conn.cert, auth=conn.basic,
                                 transport=transport, timeout=httpx.Timeout(timeout, read=watch_seconds + timeout))
        self._states = {name: _KindState(KINDS[name]) for name in dict.fromkeys(kinds)}
        self._lock = threading.RLock()  # re-entrant: wait_for's check may call objects()/get()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: set[httpx.Response] = set()
        self._discovery: dict[str, set[str] | None] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> ResourceWatcher:
        for name in self._states:
            t = threading.Thread(target=self._run, args=(name,), name=f"margay-watch-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            responses = list(self._open)
        for r in responses:  # unblock threads blocked reading a watch stream: shut its socket down
            stream = r.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout)
        self.http.close()

    def __enter__(self) -> ResourceWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_synced(self, timeout: float = 30.0) -> bool:
        """Wait until every served kind has been listed once (kinds found not served count as done)."""
        def done() -> bool:
            return all(s.synced or s.last_error == "not served" for s in self._states.values())
        with self._changed:
            return self._changed.wait_for(done, timeout)

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until `check()` (called under the cache lock after each change) is true."""
        with self._changed:
            return self._changed.wait_for(check, timeout)

    # -- reading -----------------------------------------------------------------------------------------------
    def objects(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._states[kind].objects.values())

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        with self._lock:
            return self._states[kind].objects.get((namespace, name))

    def snapshot(self) -> Snapshot:
        """The cache as full lists, taken at one instant (both timestamps are that instant)."""
        now = self.clock.now().isoformat().replace("+00:00", "Z")
        lists: dict[str, dict[str, Any]] = {}
        with self._lock:
            for name, s in self._states.items():
                if not s.synced or s.api_version is None:
                    continue
                items = sorted(s.objects.values(), key=_key)
                lists[name] = {"kind": api_kind(name) + "List", "apiVersion": s.api_version,
                               "metadata": {"resourceVersion": s.resource_version}, "items": items,
                               "requestStartedTimestamp": now, "requestCompletedTimestamp": now}
        return Snapshot(lists)

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: {"api_version": s.api_version, "synced": s.synced, "objects": len(s.objects),
                           "resource_version": s.resource_version, "lists": s.lists, "errors": s.errors,
                           "last_error": s.last_error} for name, s in self._states.items()}

    def patch_status(self, kind: str, name: str, status: dict[str, Any], namespace: str = "") -> httpx.Response:
        """Merge-patch an object's `status` subresource (where its CRD has one) as the served apiVersion."""
        with self._lock:
            s = self._states[kind]
            api = s.api_version
        if api is None:
            raise ConfigError(f"{kind} is not served by the API server")
        return self.http.patch(s.kind.path(api, namespace) + f"/{name}/status", content=orjson.dumps(
            {"status": status}), headers={**self._headers(), "content-type": "application/merge-patch+json"})

    # -- the per-kind loop --------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        bearer = self.conn.bearer()
        return {"accept": "application/json", **({"authorization": f"Bearer {bearer}"} if bearer else {})}

    def _served(self, api_version: str) -> set[str] | None:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        r = self.http.get(base, headers=self._headers())
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return {str(res.get("name")) for res in r.json().get("resources", [])}

    def _resolve(self, s: _KindState) -> str | None:
        for api in s.kind.api_versions:
            served = self._served(api)
            if served is not None and s.kind.plural in served:
                return api
        return None

    def _run(self, name: str) -> None:
        s = self._states[name]
        failures = 0
        while not self._stop.is_set():
            try:
                if s.api_version is None:
                    api = self._resolve(s)
                    with self._changed:
                        s.api_version = api
                        if api is None:
                            s.last_error = "not served"
                            self._changed.notify_all()
                    if api is None:
                        self._stop.wait(self.retry_interval)
                        continue
                self._list(name, s)
                failures = 0
                while not self._stop.is_set():
                    started = time.monotonic()
                    self._watch(name, s)
                    if time.monotonic() - started < 1.0:  # a watch that ends at once: do not spin
                        self._stop.wait(min(self.retry_interval, 1.0))
            except _Gone:
                log.info("watch of %s: resourceVersion %s expired; listing again", name, s.resource_version)
            except (httpx.HTTPError, ValueError) as exc:
                if self._stop.is_set():
                    return
                failures += 1
                with self._changed:
                    s.errors += 1
                    s.last_error = str(exc)[:300]
                    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 404:
                        s.api_version = None  # the CRD was removed: look for it again
                        s.synced = False
                    self._changed.notify_all()
                log.warning("list/watch of %s failed (%s); retrying", name, exc)
                self._stop.wait(min(self.retry_interval * failures, 60.0))

    def _list(self, name: str, s: _KindState) -> None:
        assert s.api_version is not None
        path = s.kind.path(s.api_version)
        items: dict[tuple[str, str], dict[str, Any]] = {}
        params: dict[str, Any] = {"limit": self.page_size}
        while True:
            r = self.http.get(path, params=params, headers=self._headers())
            r.raise_for_status()
            doc = orjson.loads(r.content)
            for obj in doc.get("items") or []:
                obj.setdefault("kind", api_kind(name))
                obj.setdefault("apiVersion", s.api_version)
                items[_key(obj)] = _clean(obj)
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                rv = str((doc.get("metadata") or {}).get("resourceVersion") or "")
                break
            params = {"limit": self.page_size, "continue": cont}
        with self._changed:
            old = s.objects
            s.objects, s.resource_version, s.synced = items, rv, True
            s.lists += 1
            s.last_error = ""
            self._changed.notify_all()
        if self.on_change is not None:  # what changed since the previous list (everything on the first)
            if s.lists == 1:
                for obj in items.values():
                    self.on_change(name, "ADDED", obj)
            else:
                for key, obj in items.items():
                    if key not in old:
                        self.on_change(name, "ADDED", obj)
                    elif old[key].get("metadata", {}).get("resourceVersion") != \
                            obj.get("metadata", {}).get("resourceVersion"):
                        self.on_change(name, "MODIFIED", obj)
                for key, obj in old.items():
                    if key not in items:
                        self.on_change(name, "DELETED", obj)

    def _watch(self, name: str, s: _KindState) -> None:
        assert s.api_version is not None
        params = {"watch": "1", "resourceVersion": s.resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(self.watch_seconds)}
        with self.http.stream("GET", s.kind.path(s.api_version), params=params, headers=self._headers()) as r:
            if r.status_code == 410:
                raise _Gone()
            r.raise_for_status()
            with self._lock:
                self._open.add(r)
            try:
                if self._stop.is_set():  # stop() ran before this stream was registered
                    return
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.strip():
                        self._event(name, s, orjson.loads(line))
            except (httpx.StreamClosed, httpx.TransportError):
                if self._stop.is_set():
                    return
                raise
            finally:
                with self._lock:
                    self._open.discard(r)

    def _event(self, name: str, s: _KindState, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise ValueError(f"watch error: {obj.get('message') or obj}")
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            with self._lock:
                s.resource_version = rv or s.resource_version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        obj.setdefault("kind", api_kind(name))
        obj.setdefault("apiVersion", s.api_version)
        _clean(obj)
        with self._changed:
            if kind == "DELETED":
                s.objects.pop(_key(obj), None)
            else:
                s.objects[_key(obj)] = obj
            s.resource_version = rv or s.resource_version
            self._changed.notify_all()
        if self.on_change is not None:
            self.on_change(name, str(kind), obj)
