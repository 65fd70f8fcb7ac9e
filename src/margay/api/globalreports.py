"""GlobalReports of `margay serve` and their job status, Kubernetes-style and read-only:
/apis/projectcalico.org/v3/globalreports[/<name>[/status]] (guarded by RBAC on projectcalico.org
`globalreports`, as Calico guards them), plus /api/v1/compliance/status: the daily snapshots' status and,
with --kubeconfig, what the API-server watch sees. GlobalReports are changed where they come from
(`--reports-resources` files, or the API server with kubectl)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from .common import JSONResponse

PREFIX = "/apis/projectcalico.org/v3/globalreports"


def _allow(request: Request, verb: str, resource: str, name: str = "") -> Any:
    m = request.app.state.margay
    m.access.may_manage(m.caller(request), verb, resource, name)
    return m


async def list_reports(request: Request) -> JSONResponse:
    m = _allow(request, "list", "globalreports")
    return JSONResponse({"apiVersion": "projectcalico.org/v3", "kind": "GlobalReportList", "items": m.reports.documents()})


async def get_report(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    m = _allow(request, "get", "globalreports", name)
    return JSONResponse(m.reports.get(name))


async def get_status(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    m = _allow(request, "get", "globalreports/status", name)
    m.reports.get(name)  # 404 when missing
    return JSONResponse(m.reports.status(name))


async def compliance_status(request: Request) -> JSONResponse:
    m = _allow(request, "list", "globalreports")
    return JSONResponse({"cluster": m.reports.cluster, "snapshots": m.reports.snapshot_status(),
                         "apiServer": m.cluster.status() if m.cluster is not None else None})


def routes() -> list[Route]:
    return [
        Route(PREFIX, list_reports, methods=["GET"]),
        Route(f"{PREFIX}/{{name}}", get_report, methods=["GET"]),
        Route(f"{PREFIX}/{{name}}/status", get_status, methods=["GET"]),
        Route("/api/v1/compliance/status", compliance_status, methods=["GET"]),
    ]
