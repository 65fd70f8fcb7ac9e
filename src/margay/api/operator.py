"""Operator endpoints under the reserved /-/ prefix: health, metrics, version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from .. import __version__
from ..errors import Forbidden
from .common import JSONResponse


async def health(request: Request) -> JSONResponse:
    m = request.app.state.margay
    stats = m.backend.stats()
    return JSONResponse({"status": "ok", "backend": stats.get("backend")})


async def metrics(request: Request) -> PlainTextResponse:
    m = request.app.state.margay
    who = m.caller(request)
    if not m.access.may_operate(who):
        raise Forbidden(f"{who.describe()} may not read the server's metrics (they name every cluster): needs verb get "
                        "on lma.tigera.io resource operator, resourceName metrics",
                        details={"apiGroup": "lma.tigera.io", "resource": "operator", "name": "metrics"})
    return PlainTextResponse(m.metrics.render(), media_type="text/plain; version=0.0.4")


async def version(request: Request) -> JSONResponse:
    m = request.app.state.margay
    return JSONResponse({"name": "margay", "version": __version__, "backend": m.backend.stats().get("backend")})


def routes() -> list[Route]:
    return [Route("/-/health", health, methods=["GET"]), Route("/-/metrics", metrics, methods=["GET"]),
            Route("/-/version", version, methods=["GET"]), Route("/version", version, methods=["GET"])]
