"""Report history (beyond Calico): the stored runs of a GlobalReport, the difference between two of them —
what became unprotected or protected, which endpoints and policies appeared, changed or vanished — and a
printable HTML summary an auditor can file."""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from typing import Any

from ..logtypes.compliance import REPORTS
from ..query.model import Query, SortKey
from ..query.selector import parse_selector
from ..store.backend import Backend
from . import policy_audit, ui_summary
from .reporter import check_name, stored

log = logging.getLogger(__name__)
# What rendering a stored report raises when a writer stored fields of other shapes than a report's.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)
_SUMMARIES = ("endpointsSummary", "namespacesSummary", "servicesSummary", "auditSummary", "cisBenchmarkSummary")


def runs(backend: Backend, cluster: str, name: str, *, since: datetime, until: datetime, limit: int = 500
         ) -> list[dict[str, Any]]:
    """The stored runs of a GlobalReport ending in [since, until], newest first: id, interval, summaries."""
    check_name(name)
    q = Query(REPORTS, [cluster], start=since, end=until + timedelta(seconds=1),
              selector=parse_selector(f'reportName = "{name}"'), sort=[SortKey("endTime", descending=True)],
              size=limit, total_hits=False)
    out = []
    for d in backend.search(q).items:
        doc = stored(backend, cluster, name, _end(d["endTime"]))
        try:
            summary: Any = ui_summary.render(doc)
        except MALFORMED as exc:  # a writer's malformed record must not fail the list for everyone
            log.warning("report %s ending %s: no UI summary (%s: %s)", name, doc.get("endTime"),
                        type(exc).__name__, exc)
            summary = None
        out.append({"id": doc.get("id"), "reportTypeName": doc["reportTypeName"], "startTime": doc["startTime"],
                    "endTime": doc["endTime"], "generationTime": doc.get("generationTime"),
                    **{k: doc[k] for k in _SUMMARIES if doc.get(k)}, "uiSummary": summary})
    return out


def names(backend: Backend, clusters: list[str], *, since: datetime | None = None,
          until: datetime | None = None) -> list[tuple[str, str]]:
    """The (reportName, reportTypeName) pairs of the stored reports of `clusters`, sorted (one aggregation)."""
    if not clusters:
        return []
    q = Query(REPORTS, list(clusters), start=since, end=until, size=0, total_hits=False)
    aggs = {"n": {"terms": {"field": "reportName", "size": 10000},
                  "aggs": {"t": {"terms": {"field": "reportTypeName", "size": 10}}}}}
    result = backend.aggregate(q, aggs).result
    return sorted({(str(b["key"]), str(t["key"])) for b in (result.get("n") or {}).get("buckets") or []
                   for t in (b.get("t") or {}).get("buckets") or []})


def _end(value: Any) -> datetime:
    from datetime import UTC

    from ..query.model import parse_time

    return value if isinstance(value, datetime) else parse_time(value, datetime.now(UTC), what="endTime")


def _flags(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["endpoint"]: e for e in doc.get("endpoints") or []}


def compare(backend: Backend, cluster: str, older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """What changed from one run of a GlobalReport to a later one."""
    a, b = _flags(older), _flags(newer)
    both = sorted(set(a) & set(b))

    def turned(key: str, value: bool) -> list[str]:
        return [e for e in both if a[e].get(key) is not value and b[e].get(key) is value]

    pol_a = {p for e in a.values() for p in e.get("appliedPolicies") or []}
    pol_b = {p for e in b.values() for p in e.get("appliedPolicies") or []}
    written = policy_audit.events(backend, cluster, _end(older["endTime"]), _end(newer["endTime"]))
    modified = {policy_audit.policy_id(e) for e in written if e.get("verb") in ("update", "patch")}
    return {
        "from": {"id": older["id"], "startTime": older["startTime"], "endTime": older["endTime"]},
        "to": {"id": newer["id"], "startTime": newer["startTime"], "endTime": newer["endTime"]},
        "endpointsAppeared": sorted(set(b) - set(a)),
        "endpointsVanished": sorted(set(a) - set(b)),
        "becameIngressUnprotected": turned("ingressProtected", False),
        "becameEgressUnprotected": turned("egressProtected", False),
        "becameIngressProtected": turned("ingressProtected", True),
        "becameEgressProtected": turned("egressProtected", True),
        "policiesAppeared": sorted(pol_b - pol_a),
        "policiesVanished": sorted(pol_a - pol_b),
        "policiesChanged": sorted(p for p in (pol_a & pol_b) if p in modified),
        "summaries": {k: {"from": older.get(k), "to": newer.get(k)} for k in _SUMMARIES
                      if older.get(k) or newer.get(k)},
    }


def summary_html(doc: dict[str, Any]) -> str:
    """A self-contained printable page: the report's interval, scope, summary figures and endpoint table."""
    esc = html.escape
    spec = doc.get("reportSpec") or {}
    rows = []
    for key in _SUMMARIES:
        for k, v in (doc.get(key) or {}).items():
            rows.append(f"<tr><th>{esc(key)}.{esc(k)}</th><td>{esc(str(v))}</td></tr>")
    eps = doc.get("endpoints") or []
    ep_rows = "".join(
        "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in (
            e["endpoint"], "yes" if e.get("ingressProtected") else "NO", "yes" if e.get("egressProtected") else "NO",
            "; ".join(e.get("appliedPolicies") or []))) + "</tr>" for e in eps)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(doc['reportName'])} {esc(doc['endTime'])}</title>
<style>body{{font:12px sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:2px 6px;text-align:left}}@media print{{body{{margin:0}}}}</style></head>
<body><h1>Compliance report {esc(doc['reportName'])} ({esc(doc['reportTypeName'])})</h1>
<p>Interval {esc(doc['startTime'])} to {esc(doc['endTime'])}; generated {esc(str(doc.get('generationTime')))}.</p>
<p>Scope: {esc(str(spec.get('endpoints') or 'every endpoint'))}</p>
<table>{''.join(rows)}</table>
{'<table><tr><th>endpoint</th><th>ingress protected</th><th>egress protected</th><th>policies</th></tr>'
 + ep_rows + '</table>' if eps else ''}
</body></html>
"""
