"""Running a GlobalReport over one interval: validate the resource, rebuild the cluster's states, compute
the report type's data and store the document in `compliance_reports` through the Backend."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..errors import BackendError, NotFound, ParseError
from ..logtypes.compliance import REPORTS
from ..query.model import Query, SortKey, parse_time
from ..store.backend import Backend
from . import cis, inventory, network_access, policy_audit
from .evaluate import Scope
from .schedule import Schedule
from .state import Checkpoints, timeline

REPORT_TYPES = ("inventory", "network-access", "policy-audit", "cis-benchmark")
IMPLEMENTED = REPORT_TYPES


def _t(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_globalreport(obj: Any, where: str = "GlobalReport") -> dict[str, Any]:
    """A GlobalReport (projectcalico.org/v3) checked; errors name the field."""
    if not isinstance(obj, dict):
        raise ParseError(f"{where}: expected an object")
    if obj.get("kind") not in (None, "GlobalReport"):
        raise ParseError(f"{where}.kind: expected GlobalReport, got {obj.get('kind')!r}")
    name = (obj.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise ParseError(f"{where}.metadata.name: a GlobalReport needs a name")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise ParseError(f"{where}.spec: expected an object")
    if spec.get("reportType") not in REPORT_TYPES:
        raise ParseError(f"{where}.spec.reportType: expected one of {', '.join(REPORT_TYPES)}, "
                         f"got {spec.get('reportType')!r}")
    Scope.from_spec(spec.get("endpoints"), f"{where}.spec.endpoints")
    if spec.get("schedule") is not None:
        Schedule.parse(spec["schedule"], f"{where}.spec.schedule")
    check_name(name, f"{where}.metadata.name")
    return obj


def valid_name(name: str) -> bool:
    """Whether `name` is a Kubernetes name (a GlobalReport's)."""
    return re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name) is not None


def check_name(name: str, what: str = "report name") -> str:
    if not valid_name(name):
        raise ParseError(f"{what}: {name!r} is not a Kubernetes name (lower-case letters, digits, - and .)")
    return name


def run(backend: Backend, cluster: str, report: dict[str, Any], start: datetime, end: datetime,
        now: datetime, checkpoints: Checkpoints | None = None) -> dict[str, Any]:
    """Generate one report of a GlobalReport for [start, end) and store it; returns the document."""
    check_globalreport(report)
    spec = report["spec"]
    rtype = spec["reportType"]
    if rtype not in IMPLEMENTED:
        raise NotFound(f"report type {rtype!r} is not implemented yet; available: {', '.join(IMPLEMENTED)}")
    name = report["metadata"]["name"]
    doc: dict[str, Any] = {
        "id": f"{name}_{_t(end)}", "reportName": name, "reportTypeName": rtype, "reportSpec": spec,
        "reportTypeSpec": {}, "startTime": _t(start), "endTime": _t(end), "generationTime": _t(now)}
    if rtype in ("inventory", "network-access") or spec.get("endpoints") is not None:
        endpoint_data = inventory.compute(spec, timeline(backend, cluster, start, end, checkpoints))
    if rtype == "inventory":
        doc.update(endpoint_data)
    elif rtype == "network-access":
        network_access.traffic(endpoint_data["endpoints"], network_access.endpoint_pairs(backend, cluster, start, end))
        doc.update(endpoint_data)
    elif rtype == "policy-audit":
        scoped = ({p for e in endpoint_data["endpoints"] for p in e["appliedPolicies"]}
                  if spec.get("endpoints") is not None else None)
        doc.update(policy_audit.compute(backend, cluster, spec, start, end, scoped))
    else:
        doc.update(cis.compute(backend, cluster, spec, start, end))
    resp, _ = backend.ingest(REPORTS, cluster, orjson.dumps(doc), key=f"report-{doc['id']}", now=now,
                             respond=lambda c: {"errors": [e.as_dict() for e in c.errors]})
    if resp["errors"]:
        raise BackendError(f"report not stored: {resp['errors'][0]}")
    return doc


def downloads(report: dict[str, Any]) -> dict[str, str]:
    """Every download of a stored report's type (file name -> content), plus the full JSON (report.json)."""
    render = {"inventory": inventory.downloads, "network-access": network_access.downloads,
              "policy-audit": policy_audit.downloads, "cis-benchmark": cis.downloads}[report["reportTypeName"]]
    files = render(report)
    files["report.json"] = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    from .history import summary_html

    files["summary.html"] = summary_html(report)
    return files


def stored(backend: Backend, cluster: str, name: str, end: datetime) -> dict[str, Any]:
    """A stored report of a GlobalReport by its end time, as the store gives it back."""
    from ..query.selector import parse_selector

    check_name(name)
    q = Query(REPORTS, [cluster], start=end - timedelta(seconds=1), end=end + timedelta(seconds=1),
              selector=parse_selector(f'reportName = "{name}"'), sort=[SortKey("endTime", descending=True)],
              size=1)
    items = backend.search(q).items
    if not items:
        raise NotFound(f"no report of {name!r} ending {_t(end)}")
    doc = dict(items[0])
    for k, v in doc.items():
        if isinstance(v, str) and v[:1] in ("[", "{"):
            try:
                doc[k] = orjson.loads(v)
            except orjson.JSONDecodeError:
                pass  # a text that merely starts like JSON (a writer's record): kept as sent
    for k in ("startTime", "endTime", "generationTime"):
        v = doc.get(k)
        if v is not None:
            doc[k] = _t(v if isinstance(v, datetime) else parse_time(v, end, what=k))
    return doc
