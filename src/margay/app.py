"""Wires margay together: settings -> store, parser, metrics -> the ASGI app. Nothing else lives here."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from .access.guard import Access, ReadPlan, type_of_path
from .access.identity import NO_AUTH, Identity
from .access.middleware import AuthMiddleware
from .aggregate.ingest import IngestAggregation
from .api import catalog, counts, es, events, flows, graph, ingest, logs, operator, statistics
from .api.common import error_response
from .clock import Clock, SystemClock
from .config import Settings
from .errors import MargayError
from .forward import Forwarding
from .logtypes import LogType
from .metrics import Registry, standard
from .query.restriction import Restriction, agg_fields, selector_keys
from .retention import DiskGuard, RetentionPolicy, RetentionScheduler
from .store.backend import Partition
from .store.duckdb import DuckDBBackend
from .web import pages

access = logging.getLogger("margay.access")


class Margay:
    """The running server's parts, reachable from every request as request.app.state.margay."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, backend: Any = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = standard(Registry())
        self.backend = backend or _backend(settings, self.clock)
        self.metrics.gauge("margay_store_bytes", lambda: [({}, float(self.backend.stats().get("bytes", 0)))])
        for name, attr in (("margay_compaction_merges_total", "merges"),  # engines that compact say so in stats
                           ("margay_compaction_rollups_total", "rollups_built"),
                           ("margay_compaction_active", "compacting")):
            self.metrics.gauge(name, partial(self._compaction_gauge, attr))
        self.access = Access.from_settings(settings)
        # Side paths beside the store: retention, the disk guard, aggregation at ingest (aggregate/, retention/).
        self.retention = RetentionScheduler(self.backend, RetentionPolicy.from_file(settings.config), clock=self.clock,
                                            interval=settings.retention_interval, metrics=self.metrics)
        self.disk = DiskGuard(settings.data_dir, settings.min_free_bytes, metrics=self.metrics)
        self.aggregation = IngestAggregation.from_file(settings.config)
        # Forwarders (forward/): LogCollector additionalStores, each following the store in its own thread.
        self.forwarding = Forwarding.from_file(settings.config, self.backend, settings.data_dir, self.metrics)

    # Seams that access control (RBAC, access/) and the disk guard plug into.
    @staticmethod
    def caller(request: Request) -> Identity:
        """Who is asking (set by AuthMiddleware); the no-auth administrator when authentication is off."""
        who = getattr(request.state, "identity", None)
        return who if who is not None else NO_AUTH

    def write_cluster(self, request: Request, cluster: str) -> str:
        return self.access.may_write(self.caller(request), type_of_path(request.url.path),
                                     request.headers.get("x-cluster-id"), cluster)

    def authorize_read(self, request: Request, types: list[LogType], clusters: list[str]) -> list[str]:
        plan = self.access.plan_read(self.caller(request), types, clusters)
        request.state.read_plan = plan
        return plan.clusters

    def restrict_query(self, request: Request, query: Any, body: dict[str, Any]) -> None:
        """After authorize_read: drop unreadable types, and filter namespace-scoped clusters in the query."""
        plan: ReadPlan | None = getattr(request.state, "read_plan", None)
        if plan is None:
            return
        if plan.types and [t.name for t in query.logtypes] != [t.name for t in plan.types]:
            query.logtype, query.also = plan.types[0], plan.types[1:]
        if plan.scoped:
            keys = selector_keys(query.selector) | {k.key for k in query.sort} | agg_fields(
                body.get("aggregations") or body.get("aggs"))
            if "field" in request.path_params:
                keys.add(request.path_params["field"])
            scoped = {c: ns for c, ns in plan.scoped.items() if c in query.clusters}
            query.restriction = Restriction(scoped).naming(query.logtype, keys)

    def visible_partitions(self, request: Request, parts: list[Partition]) -> list[Partition]:
        who = self.caller(request)
        if not self.access.enabled:
            return parts
        from dataclasses import replace

        from .logtypes import get as get_type

        out = []
        for p in parts:
            g = self.access.grant(who, get_type(p.log_type), p.cluster)
            if g.full:
                out.append(p)
            elif g:
                out.append(replace(p, docs=None, bytes=None))  # type: ignore[arg-type]  # counts include withheld rows
        return out

    def guard_disk(self) -> None:
        self.disk.check()

    def access_log(self, request: Request, lt: LogType, query: Any, returned: int | None) -> None:
        who = self.caller(request)
        plan: ReadPlan | None = getattr(request.state, "read_plan", None)
        line: dict[str, Any] = {"event": "read", "user": who.describe(), "groups": list(who.groups),
                                "path": request.url.path, "types": [t.name for t in query.logtypes],
                                "clusters": query.clusters, "returned": returned}
        if plan is not None and plan.scoped:
            line["namespaces"] = {c: sorted(ns) for c, ns in plan.scoped.items()}
        access.info(orjson.dumps(line).decode())

    def _compaction_gauge(self, attr: str) -> list[tuple[dict[str, str], float]]:
        value = self.backend.stats().get(attr)
        return [] if value is None else [({}, float(value))]

    def start(self) -> None:
        """Start background work (the retention scheduler); called when the server starts."""
        self.retention.start()
        self.forwarding.start()

    def close(self) -> None:
        self.retention.stop()
        self.forwarding.stop()
        self.access.close()
        self.backend.close()


def _backend(settings: Settings, clock: Clock) -> Any:
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
    logging.getLogger("margay").exception("unhandled error on %s", request.url.path)
    return error_response(MargayError(f"internal error: {type(exc).__name__}: {exc}"))


def create_app(settings: Settings | None = None, *, margay: Margay | None = None,
               clock: Clock | None = None) -> Starlette:
    settings = settings or Settings()
    m = margay or Margay(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        m.start()
        yield
        m.close()

    routes = [*operator.routes(), *ingest.routes(), *logs.routes(), *counts.routes(), *statistics.routes(),
              *flows.routes(), *graph.routes(),
              *events.routes(), *catalog.routes(), *es.routes(), *pages.routes()]
    middleware = [Middleware(AuthMiddleware, access=m.access)] if m.access.enabled else []
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={MargayError: _margay_error, Exception: _unexpected})
    app.state.margay = m
    return app
