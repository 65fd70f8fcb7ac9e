"""Wires margay together: settings -> store, parser, metrics -> the ASGI app. Nothing else lives here."""

from __future__ import annotations

import errno
import logging
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from .access.guard import Access
from .access.middleware import AuthMiddleware
from .access.requests import RequestAccess
from .aggregate.ingest import IngestAggregation
from .api import (
    catalog,
    counts,
    detect,
    es,
    events,
    flows,
    globalreports,
    graph,
    ingest,
    linseed_flows,
    logs,
    operator,
    policy_activity,
    processes,
    statistics,
)
from .api.budget import BodyBudget, BodyBudgetMiddleware
from .api.common import error_response, shape_error
from .api.reports import routes as report_routes
from .api.threatfeeds import routes as threatfeed_routes
from .api.throttle import WriteThrottle
from .clock import Clock, SystemClock
from .config import Settings
from .detect.service import DetectionService
from .errors import InsufficientStorage, MargayError
from .forward import Forwarding
from .kube.cluster import ClusterSource
from .metrics import Registry, standard
from .reports.service import ReportService, dumps_source
from .retention import DiskGuard, RetentionPolicy, RetentionScheduler
from .retention.disk import REUSE_SECONDS
from .store.backend import Backend
from .store.duckdb import DuckDBBackend
from .web import pages, session


class Margay(RequestAccess):
    """The running server's parts, reachable from every request as request.app.state.margay."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, backend: Backend | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = standard(Registry())
        self.backend: Backend = backend or _backend(settings, self.clock)
        self.metrics.gauge("margay_store_bytes", lambda: [({}, float(self.backend.stats().get("bytes", 0)))])
        for name, attr in (("margay_compaction_merges_total", "merges"),  # engines that compact say so in stats
                           ("margay_compaction_rollups_total", "rollups_built"),
                           ("margay_compaction_active", "compacting"),
                           ("margay_store_retired_files", "retired_files"),
                           # small batches committed together (the embedded store's group commit)
                           ("margay_ingest_group_commits_total", "group_commits"),
                           ("margay_ingest_grouped_batches_total", "grouped_batches")):
            self.metrics.gauge(name, partial(self._compaction_gauge, attr))
        self.body_budget = BodyBudget(settings.max_inflight_body_bytes)  # request bodies held at once
        self.metrics.gauge("margay_request_body_bytes", lambda: [({}, float(self.body_budget.used))])
        self.metrics.gauge("margay_request_body_refused_total", lambda: [({}, float(self.body_budget.refused))])
        self.access = Access.from_settings(settings)
        # Side paths beside the store: retention, the disk guard, aggregation at ingest (aggregate/, retention/).
        self.retention = RetentionScheduler(self.backend, RetentionPolicy.from_file(settings.config), clock=self.clock,
                                            interval=settings.retention_interval, metrics=self.metrics)
        self.disk = DiskGuard(settings.data_dir, settings.min_free_bytes, metrics=self.metrics,
                              reuse_for=REUSE_SECONDS)
        self.aggregation = IngestAggregation.from_file(settings.config)
        self.throttle = WriteThrottle()  # Linseed's hourly write throttle of policy activity (api/throttle.py)
        # Forwarders (forward/): LogCollector additionalStores, each following the store in its own thread.
        self.forwarding = Forwarding.from_file(settings.config, self.backend, settings.data_dir, self.metrics)
        # Intrusion detection (detect/): threat feeds and GlobalAlerts that raise events through the store.
        self.detection = DetectionService.from_settings(settings, self.backend, self.clock)
        # Calico resources live from the API server (kube/cluster.py) and report jobs + snapshots (reports/).
        self.cluster = _cluster_source(settings, self)
        self.reports = ReportService(
            self.backend, self.clock, data_dir=settings.data_dir, cluster=settings.reports_cluster,
            resources=settings.reports_resources, snapshot_hour=settings.snapshot_hour,
            interval=float(settings.reports_interval),
            snapshot_source=self.cluster.snapshot if self.cluster is not None
            else dumps_source(settings.snapshot_dumps) if settings.snapshot_dumps is not None else None)
        if self.cluster is not None:
            self.cluster.reports = self.reports

    def guard_disk(self) -> None:
        self.disk.check()

    def _compaction_gauge(self, attr: str) -> list[tuple[dict[str, str], float]]:
        value = self.backend.stats().get(attr)
        return [] if value is None else [({}, float(value))]

    def start(self) -> None:
        """Start background work (the retention scheduler); called when the server starts."""
        self.retention.start()
        self.forwarding.start()
        self.detection.start()
        self.reports.start()
        if self.cluster is not None:
            self.cluster.start()

    def close(self) -> None:
        self.retention.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.reports.stop()
        self.detection.stop()
        self.forwarding.stop()
        self.access.close()
        self.backend.close()


def _cluster_source(settings: Settings, m: Margay) -> ClusterSource | None:
    """With --kubeconfig or --in-cluster (and kube_watch): the API server's Calico configuration and
    compliance kinds."""
    if not settings.kube_watch or (settings.kubeconfig is None and settings.auth != "kube"):
        return None
    from .access.kube import from_kubeconfig, in_cluster
    from .kube import ResourceWatcher
    from .kube.resources import CALICO_CONFIG, COMPLIANCE

    conn = from_kubeconfig(settings.kubeconfig) if settings.kubeconfig else in_cluster()
    watcher = ResourceWatcher(conn, CALICO_CONFIG + COMPLIANCE, clock=m.clock)
    return ClusterSource(watcher, detection=m.detection, retention=m.retention)


def _backend(settings: Settings, clock: Clock) -> Backend:
    """The store chosen by settings.backend."""
    if settings.backend == "duckdb":
        return DuckDBBackend(settings.data_dir, clock=clock, memory_bytes=settings.store_memory_bytes)
    if settings.backend == "opensearch":
        from .errors import ConfigError
        from .store.opensearch import OpenSearchBackend

        if not settings.opensearch_url:
            raise ConfigError("backend opensearch needs --opensearch-url")
        return OpenSearchBackend(settings.opensearch_url, username=settings.opensearch_user,
                                 password=settings.opensearch_password, token=settings.opensearch_token,
                                 ca_file=settings.opensearch_ca_file, prefix=settings.opensearch_prefix)
    from .errors import ConfigError

    raise ConfigError(f"unknown backend {settings.backend!r}: use duckdb or opensearch")


async def _margay_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MargayError)
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A full disk is 507 wherever it strikes; anything else is logged, and answered without its details
    (messages of the store and the OS carry server paths)."""
    if _disk_full(exc):
        return error_response(InsufficientStorage("the server's disk is full: the request was not stored; "
                                                  "retry later"))
    shaped = shape_error(exc)
    if shaped is not None:
        return error_response(shaped)
    logging.getLogger("margay").exception("unhandled error on %s", request.url.path)
    return error_response(MargayError(f"internal error ({type(exc).__name__}); the server log has the details"))


def _disk_full(exc: BaseException) -> bool:
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def create_app(settings: Settings | None = None, *, margay: Margay | None = None,
               clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    sessions = session.Sessions(cookie_secure=settings.cookie_secure)  # the UI's cookie sessions (web/session.py)
    m = margay or Margay(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        m.start()
        yield
        m.close()

    routes = [*operator.routes(), *ingest.routes(), *logs.routes(), *counts.routes(), *statistics.routes(),
              *flows.routes(), *linseed_flows.routes(), *processes.routes(), *policy_activity.routes(),
              *graph.routes(), *events.routes(),
              *catalog.routes(), *es.routes(), *globalreports.routes(), *detect.routes(), *report_routes(), *threatfeed_routes(),
              *session.routes(), *pages.routes()]
    # Outermost: every request's body bytes are counted until its response is sent (api/budget.py).
    middleware = [Middleware(BodyBudgetMiddleware, budget=m.body_budget), Middleware(session.SecurityHeaders)]
    if m.access.enabled:
        middleware.append(Middleware(AuthMiddleware, access=m.access, sessions=sessions))
    middleware.append(Middleware(ingest.BulkRoutes))  # bulk POSTs past the router (api/ingest.py)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={MargayError: _margay_error, Exception: _unexpected})
    app.state.margay = m
    app.state.sessions = sessions
    return app
