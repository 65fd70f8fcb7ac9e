"""Compliance reports over HTTP, the Reports page's JSON twin: the GlobalReports of a cluster with their stored
runs, a run's full document and downloads, the difference between two runs, and running a report now.

Every read is guarded as Calico's compliance server guards it (access/reports.py) on top of the cluster's
`lma.tigera.io` grant for compliance_reports: listing needs `list globalreports`; a run's summary needs
`get globalreports/<name>`; its contents, downloads and diffs also `get globalreporttypes/<type>`; running
one now also `update globalreports/<name>`. "Run now" calls the report functions directly (reports/reporter.py),
not the server's job runner: the run is stored like a scheduled one and appears in the history.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..access.reports import ReportRights
from ..errors import NotFound, QueryError
from ..logtypes.compliance import REPORTS
from ..query.model import parse_time
from ..reports import history, reporter
from .common import JSONResponse, header_cluster, json_body, valid_cluster

DEFAULT_WINDOW = timedelta(days=90)
MAX_INTERVAL = timedelta(days=31)
MAX_RUNS = 500
_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "yaml": "application/yaml",
          "html": "text/html; charset=utf-8"}


def _cluster(request: Request) -> str:
    """x-cluster-id, or `?cluster=` for links the browser follows (downloads)."""
    named = request.query_params.get("cluster")
    if named is not None:
        return valid_cluster(named, where="cluster query parameter")
    return valid_cluster(header_cluster(request), where="x-cluster-id")


def _rights(request: Request, cluster: str) -> ReportRights:
    """The caller's report rights, after the cluster's own grant (403 without it)."""
    m = request.app.state.margay
    who = m.caller(request)
    m.access.plan_read(who, [REPORTS], [cluster])
    return ReportRights(m.access, who)


def _time(value: str | None, now: datetime, what: str, default: datetime) -> datetime:
    return default if value in (None, "") else parse_time(value, now, what=what)


def _name(request: Request) -> str:
    return reporter.check_name(request.path_params["name"], "report name in the path")


async def list_reports(request: Request) -> JSONResponse:
    """GET /api/v1/reports: the GlobalReports with runs in [from, to] (default the last 90 days) the caller may
    see, each run with its summary figures and UI summary; downloads only where the caller may view them."""
    m = request.app.state.margay
    cluster = _cluster(request)
    rights = _rights(request, cluster)
    rights.require_list()
    now = m.clock.now()
    until = _time(request.query_params.get("to"), now, "to", now)
    since = _time(request.query_params.get("from"), now, "from", until - DEFAULT_WINDOW)
    if since > until:
        raise QueryError("from is after to")
    only = request.query_params.get("reportName")
    if only:
        reporter.check_name(only, "reportName")

    def work() -> list[dict[str, Any]]:
        out = []
        for name, rtype in history.names(m.backend, [cluster], since=since, until=until + timedelta(seconds=1)):
            if not reporter.valid_name(name):
                continue  # a record no GlobalReport wrote (a writer's): never listed, never addressable
            if (only and name != only) or not rights.may_summarize(name):
                continue
            view = rights.may_view(rtype, name)
            runs = [r for r in history.runs(m.backend, cluster, name, since=since, until=until, limit=MAX_RUNS)
                    if r["reportTypeName"] == rtype]
            for r in runs:
                if view:
                    r["downloads"] = _download_names(rtype)
            out.append({"name": name, "reportTypeName": rtype, "canView": view,
                        "canRun": rights.may_run(rtype, name), "runs": runs})
        return out

    return JSONResponse({"cluster": cluster, "from": since.isoformat(), "to": until.isoformat(),
                         "reports": await asyncio.to_thread(work)})


def _download_names(rtype: str) -> list[str]:
    """The report type's download templates, then the full JSON and the printable summary."""
    return {"inventory": ["summary.csv", "endpoints.csv", "namespaces.csv", "services.csv"],
            "network-access": ["summary.csv", "endpoints.csv"],
            "policy-audit": ["summary.csv", "events.json", "events.yaml"],
            "cis-benchmark": ["total-summary.csv", "node-summary.csv", "failed-tests.csv", "all-tests.csv"],
            }.get(rtype, []) + ["report.json", "summary.html"]


async def _stored(request: Request, cluster: str, name: str, end_text: str, what: str) -> dict[str, Any]:
    m = request.app.state.margay
    end = parse_time(end_text, m.clock.now(), what=what)
    return await asyncio.to_thread(reporter.stored, m.backend, cluster, name, end)


async def get_run(request: Request) -> JSONResponse:
    """GET /api/v1/reports/{name}/runs/{end}: the stored report document (needs to view the report)."""
    cluster = _cluster(request)
    rights = _rights(request, cluster)
    name = _name(request)
    if not rights.may_summarize(name):
        rights.require_view("*", name)  # the refusal names globalreports
    doc = await _stored(request, cluster, name, request.path_params["end"], "end time in the path")
    rights.require_view(doc["reportTypeName"], name)
    return JSONResponse(doc)


async def download(request: Request) -> Response:
    """GET /api/v1/reports/{name}/runs/{end}/download/{file}: one download of a stored run, as an attachment."""
    cluster = _cluster(request)
    rights = _rights(request, cluster)
    name = _name(request)
    file = request.path_params["file"]
    if not rights.may_summarize(name):
        rights.require_view("*", name)
    doc = await _stored(request, cluster, name, request.path_params["end"], "end time in the path")
    rights.require_view(doc["reportTypeName"], name)
    try:
        files = await asyncio.to_thread(reporter.downloads, doc)
    except history.MALFORMED as exc:
        raise QueryError(f"the stored run of {name!r} ending {doc.get('endTime')} is malformed and cannot be "
                         f"rendered ({type(exc).__name__}: {str(exc)[:120]})", status=422) from None
    if file not in files:
        raise NotFound(f"no download {file!r} for a {doc['reportTypeName']} report; "
                       f"available: {', '.join(sorted(files))}")
    stamp = doc["endTime"].replace(":", "")
    return Response(files[file], media_type=_MEDIA.get(file.rsplit(".", 1)[-1], "text/plain"),
                    headers={"content-disposition": f'attachment; filename="{name}_{stamp}_{file}"',
                             "cache-control": "no-store"})


async def diff(request: Request) -> JSONResponse:
    """GET /api/v1/reports/{name}/diff?from=<end>&to=<end>: what changed from one run to a later one."""
    m = request.app.state.margay
    cluster = _cluster(request)
    rights = _rights(request, cluster)
    name = _name(request)
    older_t, newer_t = request.query_params.get("from"), request.query_params.get("to")
    if not older_t or not newer_t:
        raise QueryError("give the end times of the two runs to compare: ?from=<end>&to=<end>")
    if not rights.may_summarize(name):
        rights.require_view("*", name)
    older = await _stored(request, cluster, name, older_t, "from")
    newer = await _stored(request, cluster, name, newer_t, "to")
    for doc in (older, newer):
        rights.require_view(doc["reportTypeName"], name)
    if older["endTime"] > newer["endTime"]:
        older, newer = newer, older
    return JSONResponse(await asyncio.to_thread(history.compare, m.backend, cluster, older, newer))


async def run_now(request: Request) -> JSONResponse:
    """POST /api/v1/reports/{name}/run {start, end, report?}: generate and store a run of a GlobalReport over
    [start, end) now. Without `report`, the GlobalReport as its latest stored run recorded it."""
    m = request.app.state.margay
    body = await json_body(request, 1024 * 1024)  # bounded, read first (an oversized body is a 413 whatever else)
    cluster = _cluster(request)
    rights = _rights(request, cluster)
    name = _name(request)
    now = m.clock.now()
    for key in ("start", "end"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise QueryError(f"{key}: give the interval's {key} (RFC 3339 or now-1d)",
                             details={"field": key})
    start, end = parse_time(body["start"], now, what="start"), parse_time(body["end"], now, what="end")
    if end <= start:
        raise QueryError("end: must be after start", details={"field": "end"})
    if end - start > MAX_INTERVAL:
        raise QueryError("end: the interval is longer than 31 days; report on a shorter one",
                         details={"field": "end"})
    if end > now:
        raise QueryError("end: the interval must have ended (end is in the future)", details={"field": "end"})
    report = body.get("report")
    if report is None:
        report = await asyncio.to_thread(_latest_definition, m.backend, cluster, name, now)
    report = reporter.check_globalreport(report, "report")
    if report["metadata"]["name"] != name:
        raise QueryError(f"report.metadata.name: {report['metadata']['name']!r} is not {name!r} (the path's)",
                         details={"field": "report.metadata.name"})
    rights.require_run(report["spec"]["reportType"], name)
    doc = await asyncio.to_thread(reporter.run, m.backend, cluster, report, start, end, now)
    return JSONResponse({"id": doc["id"], "reportName": name, "reportTypeName": doc["reportTypeName"],
                         "startTime": doc["startTime"], "endTime": doc["endTime"]}, status_code=201)


def _latest_definition(backend: Any, cluster: str, name: str, now: datetime) -> dict[str, Any]:
    runs = history.runs(backend, cluster, name, since=datetime(1970, 1, 1, tzinfo=now.tzinfo), until=now, limit=1)
    if not runs:
        raise NotFound(f"no stored run of {name!r} in cluster {cluster!r} to take the GlobalReport from; "
                       "send it as `report` in the body")
    doc = reporter.stored(backend, cluster, name, parse_time(runs[0]["endTime"], now, what="endTime"))
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": name},
            "spec": doc.get("reportSpec") or {"reportType": doc["reportTypeName"]}}


def routes() -> list[Route]:
    return [Route("/api/v1/reports", list_reports, methods=["GET"]),
            Route("/api/v1/reports/{name}/runs/{end}", get_run, methods=["GET"]),
            Route("/api/v1/reports/{name}/runs/{end}/download/{file}", download, methods=["GET"]),
            Route("/api/v1/reports/{name}/diff", diff, methods=["GET"]),
            Route("/api/v1/reports/{name}/run", run_now, methods=["POST"])]


__all__ = ["routes"]
