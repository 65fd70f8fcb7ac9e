"""The detector's resources over HTTP, Kubernetes-style: /apis/projectcalico.org/v3/<resource>[/<name>[/status]]
(GlobalThreatFeed, GlobalAlert, GlobalAlertTemplate), guarded by RBAC on projectcalico.org with Calico's
resource names and verbs; plus a dry run of an alert over a past window."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.routing import Route

from ..detect.alerts import evaluate
from ..detect.resources import Alert, parse_resource
from ..detect.templates import template_documents
from ..errors import Forbidden, ParseError, QueryError
from ..query.model import parse_time
from .common import JSONResponse, read_body

PREFIX = "/apis/projectcalico.org/v3"
KINDS = {"globalthreatfeeds": "GlobalThreatFeed", "globalalerts": "GlobalAlert",
         "globalalerttemplates": "GlobalAlertTemplate"}
MAX_BODY = 1024 * 1024
MAX_DRY_RUN = timedelta(days=31)


def _kind(request: Request) -> tuple[str, str]:
    resource = request.path_params["resource"]
    if resource not in KINDS:
        raise QueryError(f"unknown resource {resource!r}: use one of {', '.join(KINDS)}", status=404)
    return resource, KINDS[resource]


def _allow(request: Request, verb: str, resource: str, name: str = "") -> None:
    m = request.app.state.margay
    m.access.may_manage(m.caller(request), verb, resource, name)


async def _document(request: Request) -> Any:
    """The body as JSON or YAML: read up to MAX_BODY bytes (413 past it, never buffered whole), and a 400 for
    one nested too deep to parse (YAML's parser recurses per level)."""
    raw = await read_body(request, MAX_BODY)
    try:
        return orjson.loads(raw) if raw.lstrip()[:1] in (b"{", b"[") else yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ParseError(f"body is neither JSON nor YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ParseError("body nests too deep: a resource document is a few levels of mappings") from None


async def list_resources(request: Request) -> JSONResponse:
    resource, kind = _kind(request)
    _allow(request, "list", resource)
    items = request.app.state.margay.detection.list(kind)
    if kind == "GlobalAlertTemplate":
        items = [*({**d, "metadata": {**d["metadata"], "labels": {"margay.io/builtin": "true"}}}
                   for d in template_documents().values()), *items]
    return JSONResponse({"apiVersion": "projectcalico.org/v3", "kind": f"{kind}List", "items": items})


async def get_resource(request: Request) -> JSONResponse:
    resource, kind = _kind(request)
    name = request.path_params["name"]
    _allow(request, "get", resource, name)
    if kind == "GlobalAlertTemplate" and name in template_documents():
        return JSONResponse(template_documents()[name])
    return JSONResponse(request.app.state.margay.detection.get(kind, name))


async def get_status(request: Request) -> JSONResponse:
    resource, kind = _kind(request)
    name = request.path_params["name"]
    _allow(request, "get", f"{resource}/status", name)
    detection = request.app.state.margay.detection
    detection.get(kind, name)  # 404 when missing
    return JSONResponse(detection.status(kind, name))


async def put_resource(request: Request) -> JSONResponse:
    resource, kind = _kind(request)
    name = request.path_params["name"]
    detection = request.app.state.margay.detection
    exists = (kind, name) in detection.docs
    _allow(request, "update" if exists else "create", resource, name)  # before the body is read or parsed
    doc = await _document(request)
    if not isinstance(doc, dict):
        raise QueryError("body: expected one resource document (apiVersion, kind, metadata, spec)")
    doc.setdefault("apiVersion", "projectcalico.org/v3")
    doc.setdefault("kind", kind)
    if doc.get("kind") != kind:
        raise QueryError(f"kind: expected {kind} at {request.url.path}, got {doc.get('kind')!r}")
    meta = doc.setdefault("metadata", {})
    if not isinstance(meta, dict) or meta.setdefault("name", name) != name:
        raise QueryError(f"metadata.name: {meta.get('name') if isinstance(meta, dict) else meta!r} does not "
                         f"match the name in the path ({name!r})")
    if kind == "GlobalAlert":
        _may_read_data_set(request, doc)
    return JSONResponse(detection.apply(doc), status_code=200 if exists else 201)


def _may_read_data_set(request: Request, doc: dict[str, Any]) -> None:
    """A saved GlobalAlert runs over its data set in every cluster and copies what it finds into events (a
    whole record each, without a metric): its author must read that data set in full in every cluster, present
    and future, the read a dry run asks for. Checked at every create and update, whoever made the alert first."""
    alert = parse_resource(doc)  # a 400 naming the field for an invalid alert
    assert isinstance(alert, Alert)
    m = request.app.state.margay
    who = m.caller(request)
    missing = m.access.unreadable_everywhere(who, alert.logtypes)
    if missing:
        names = "/".join(dict.fromkeys(lt.rbac[0] for lt in missing))
        raise Forbidden(f"{who.describe()} may not read {names} logs of every cluster in full, which a GlobalAlert "
                        f"on dataSet {alert.data_set} reads (needs get on lma.tigera.io resource * "
                        f"resourceName {names}, cluster-wide)",
                        details={"apiGroup": "lma.tigera.io", "resource": "*", "verb": "get"})


async def delete_resource(request: Request) -> JSONResponse:
    resource, kind = _kind(request)
    name = request.path_params["name"]
    _allow(request, "delete", resource, name)
    request.app.state.margay.detection.delete(kind, name)
    return JSONResponse({"kind": "Status", "status": "Success", "details": {"name": name, "kind": resource}})


async def dry_run(request: Request) -> JSONResponse:
    """POST .../globalalerts/-/dry-run {alert, from?, to?}: the events an alert would have raised, unsaved."""
    _allow(request, "create", "globalalerts")
    body = await _document(request)
    if not isinstance(body, dict) or not isinstance(body.get("alert"), dict):
        raise QueryError("body: expected {\"alert\": <GlobalAlert>, \"from\": TIME, \"to\": TIME}")
    m = request.app.state.margay
    doc = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", **body["alert"]}
    alert = parse_resource(doc)
    assert isinstance(alert, Alert)
    now = m.clock.now()
    end = parse_time(body.get("to", "now"), now, what="to")
    start = parse_time(body["from"], now, what="from") if "from" in body else end - alert.lookback
    if start >= end or end - start > MAX_DRY_RUN:
        raise QueryError(f"from/to: expected a window of at most {MAX_DRY_RUN.days} days with from before to")
    clusters = m.authorize_read(request, alert.logtypes, sorted({c for lt in alert.logtypes
                                                                  for c in m.backend.clusters(lt)}), named=False)
    scoped = sorted(request.state.read_plan.scoped)
    if scoped:  # the alert reads whole clusters: its events would show records of namespaces the caller may not read
        raise Forbidden(f"a dry run reads whole clusters, as the alert will; {m.caller(request).describe()} may read only "
                        f"some namespaces of {', '.join(scoped[:5])}", details={"apiGroup": "lma.tigera.io", "verb": "get"})
    found = await asyncio.to_thread(evaluate, m.backend, alert, end, start=start, clusters=clusters)
    events = [e for evs in found.values() for e in evs]
    return JSONResponse({"events": len(events), "by_cluster": {c: len(v) for c, v in found.items()},
                         "from": start.isoformat(), "to": end.isoformat(), "sample": events[:20]})


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/globalalerts/-/dry-run", dry_run, methods=["POST"]),
        Route(f"{PREFIX}/{{resource}}", list_resources, methods=["GET"]),
        Route(f"{PREFIX}/{{resource}}/{{name}}", get_resource, methods=["GET"]),
        Route(f"{PREFIX}/{{resource}}/{{name}}", put_resource, methods=["PUT"]),
        Route(f"{PREFIX}/{{resource}}/{{name}}", delete_resource, methods=["DELETE"]),
        Route(f"{PREFIX}/{{resource}}/{{name}}/status", get_status, methods=["GET"]),
    ]
