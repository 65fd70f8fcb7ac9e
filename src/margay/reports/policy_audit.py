"""The policy-audit report (spec §12.3): the audit events that created, modified or deleted network
policies during the interval; with an endpoint scope, only policies applied to in-scope endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import yaml

from ..logtypes import REGISTRY
from ..query.model import Query, SortKey, parse_time
from ..query.selector import parse_selector
from ..store.backend import Backend
from .csvout import render_csv
from .inventory import scope_columns

AUDIT_EE, AUDIT_KUBE = REGISTRY["audit_ee"], REGISTRY["audit_kube"]
# The report type's auditEventsSelection: these resources, in any API group (Calico's and Kubernetes').
RESOURCES = ("globalnetworkpolicies", "networkpolicies")
EVENT_KEYS = ("kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser",
              "sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
              "requestReceivedTimestamp", "stageTimestamp", "annotations")
_PAGE = 5000


def policy_id(event: dict[str, Any]) -> str | None:
    """The policy an event wrote, named as inventory's appliedPolicies names it."""
    ref = event.get("objectRef") or {}
    name, ns, group = ref.get("name"), ref.get("namespace") or "", ref.get("apiGroup") or ""
    if not name:
        return None
    if ref.get("resource") == "globalnetworkpolicies":
        return f"GlobalNetworkPolicy({name})"
    if group == "networking.k8s.io":
        return f"NetworkPolicy.networking.k8s.io/v1({ns}/{name})"
    return f"NetworkPolicy({ns}/{name})"


def _clean(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    out = {k: event[k] for k in EVENT_KEYS if event.get(k) is not None}
    for k in ("requestReceivedTimestamp", "stageTimestamp"):
        if k in out:
            t = out[k] if isinstance(out[k], datetime) else parse_time(out[k], now, what=k)
            out[k] = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def events(backend: Backend, cluster: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Successful policy writes in [start, end), oldest first (a refused write changed no policy)."""
    sel = parse_selector(
        "objectRef.resource IN {" + ", ".join(f'"{r}"' for r in RESOURCES) + '} AND '
        'verb IN {"create", "update", "patch", "delete"} AND stage = "ResponseComplete" AND '
        "responseStatus.code >= 200 AND responseStatus.code < 300")
    out: list[dict[str, Any]] = []
    after: dict[str, Any] | None = None
    while True:
        q = Query(AUDIT_EE, [cluster], also=[AUDIT_KUBE], start=start, end=end, selector=sel,
                  sort=[SortKey("requestReceivedTimestamp")], size=_PAGE, after_key=after, total_hits=False)
        res = backend.search(q)
        out += [_clean(e, end) for e in res.items]
        if len(res.items) < _PAGE or res.after_key is None:
            break
        after = res.after_key
    out.sort(key=lambda e: (e["requestReceivedTimestamp"], e.get("auditID", "")))
    return out


def compute(backend: Backend, cluster: str, report_spec: dict[str, Any], start: datetime, end: datetime,
            in_scope_policies: set[str] | None) -> dict[str, Any]:
    """auditEvents and auditSummary; `in_scope_policies` None when the report has no endpoint scope."""
    evs = [e for e in events(backend, cluster, start, end)
           if in_scope_policies is None or policy_id(e) in in_scope_policies]
    verbs = [e.get("verb") for e in evs]
    return {"auditEvents": evs, "auditSummary": {
        "numTotal": len(evs), "numCreate": verbs.count("create"),
        "numModify": verbs.count("update") + verbs.count("patch"), "numDelete": verbs.count("delete")}}


SUMMARY_COLUMNS = ["startTime", "endTime", "endpointSelector", "namespaceNames", "namespaceSelector",
                   "serviceAccountNames", "serviceAccountSelectors", "numCreatedPolicies", "numModifiedPolicies",
                   "numDeletedPolicies"]


def downloads(report: dict[str, Any]) -> dict[str, str]:
    """summary.csv, events.json and events.yaml of a policy-audit report document."""
    s = report["auditSummary"]
    row = {**scope_columns(report), "numCreatedPolicies": s["numCreate"], "numModifiedPolicies": s["numModify"],
           "numDeletedPolicies": s["numDelete"]}
    evs = report.get("auditEvents") or []
    return {"summary.csv": render_csv(SUMMARY_COLUMNS, [row], single=True),
            "events.json": orjson.dumps(evs).decode(),
            "events.yaml": yaml.safe_dump(evs, sort_keys=False)}
