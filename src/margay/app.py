"""Wires margay together: settings -> store, parser, metrics -> the ASGI app. Nothing else lives here."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from .api import flows, ingest, logs, operator
from .api.common import error_response
from .clock import Clock, SystemClock
from .config import Settings
from .errors import MargayError
from .logtypes import LogType
from .metrics import Registry, standard
from .store.backend import Partition
from .store.duckdb import DuckDBBackend

access = logging.getLogger("margay.access")


class Margay:
    """The running server's parts, reachable from every request as request.app.state.margay."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, backend: Any = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = standard(Registry())
        self.backend = backend or DuckDBBackend(settings.data_dir, clock=self.clock)
        self.metrics.gauge("margay_store_bytes", lambda: [({}, float(self.backend.stats().get("bytes", 0)))])

    # Seams that access control (RBAC) and the disk guard plug into.
    def write_cluster(self, request: Request, cluster: str) -> str:
        return cluster

    def authorize_read(self, request: Request, types: list[LogType], clusters: list[str]) -> list[str]:
        return clusters

    def visible_partitions(self, request: Request, parts: list[Partition]) -> list[Partition]:
        return parts

    def guard_disk(self) -> None:
        return None

    def default_window(self, lt: LogType) -> timedelta | None:
        return timedelta(minutes=5) if lt.name == "bgp" else None

    def access_log(self, request: Request, lt: LogType, query: Any, returned: int | None) -> None:
        access.info(orjson.dumps({"path": request.url.path, "type": lt.name, "clusters": query.clusters,
                                  "returned": returned}).decode())

    def close(self) -> None:
        self.backend.close()


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
        yield
        m.close()

    routes = [*operator.routes(), *ingest.routes(), *logs.routes(), *flows.routes()]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={MargayError: _margay_error, Exception: _unexpected})
    app.state.margay = m
    return app
