"""A stored report's UI summary: the JSON its GlobalReportType's `uiSummaryTemplate` renders (Calico's default
types, compliance/report-types/default), computed from the report document. The Reports page draws it: a
panel or row of widgets, each a radial bar chart (a total and one value) or the CIS node/test widgets."""

from __future__ import annotations

from collections import Counter
from typing import Any

TOP_FAILED_TESTS = 5  # Calico's default for spec.cis.numFailedTests


def _radial(heading: str, total: Any, label: str, value: Any) -> dict[str, Any]:
    return {"type": "radialbarchart", "heading": heading, "summary": {"label": "Total", "total": total},
            "data": [{"label": label, "value": value}]}


def _protection(doc: dict[str, Any]) -> dict[str, Any]:
    es, ns = doc.get("endpointsSummary") or {}, doc.get("namespacesSummary") or {}
    widgets = []
    for direction, key in (("ingress", "numIngressProtected"), ("egress", "numEgressProtected")):
        widgets.append(_radial("Endpoints", es.get("numTotal", 0), f"Protected {direction}", es.get(key, 0)))
        widgets.append(_radial("Namespaces", ns.get("numTotal", 0), f"Protected {direction}", ns.get(key, 0)))
    return {"type": "panel", "heading": "Inscope vs Protected", "widgets": widgets}


def _audit(doc: dict[str, Any]) -> dict[str, Any]:
    s = doc.get("auditSummary") or {}
    return {"type": "panel", "heading": "Network Policy Configuration Changes", "widgets": [
        _radial("Network Policies", s.get("numTotal", 0), label, s.get(key, 0))
        for label, key in (("Created", "numCreate"), ("Modified", "numModify"), ("Deleted", "numDelete"))]}


def top_failed_tests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Calico's cisTopFailedTests: failed results counted over nodes, most frequent first (ties by test
    number, where Calico's order is unspecified), cut at spec.cis.numFailedTests (default 5)."""
    counts: Counter[tuple[str, str]] = Counter()
    for node in doc.get("cisBenchmark") or []:
        for section in node.get("results") or []:
            for t in section.get("results") or []:
                if t.get("status") == "FAIL":
                    counts[(str(t.get("testNumber")), str(t.get("testDesc")))] += 1
    cis = (doc.get("reportSpec") or {}).get("cis") or {}
    n = cis.get("numFailedTests", TOP_FAILED_TESTS) if isinstance(cis, dict) else TOP_FAILED_TESTS
    n = n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else TOP_FAILED_TESTS
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _test_order(kv[0][0])))
    return [{"index": num, "description": desc, "failedCount": str(c)} for (num, desc), c in ranked[:n]]


def _test_order(number: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (1 << 30, p) for p in number.split("."))


def _cis(doc: dict[str, Any]) -> dict[str, Any]:
    s = doc.get("cisBenchmarkSummary") or {}
    cis = (doc.get("reportSpec") or {}).get("cis") or {}
    high = cis.get("highThreshold") if isinstance(cis, dict) else None
    med = (cis.get("medThreshold") if isinstance(cis, dict) else None) or 50
    high_desc = "100%" if not high or high == 100 else f"{high}% or more"
    nodes = doc.get("cisBenchmark") or []
    widgets: list[dict[str, Any]] = [{
        "heading": "Node Failure Summary", "type": "cis-benchmark-nodes",
        "summary": {"label": "Total", "total": len(nodes)},
        "data": [{"label": "HIGH", "value": s.get("highCount", 0), "desc": f"Nodes with {high_desc} tests passing"},
                 {"label": "MED", "value": s.get("medCount", 0), "desc": f"Nodes with {med}% or more tests passing"},
                 {"label": "LOW", "value": s.get("lowCount", 0), "desc": f"Nodes with less than {med}% tests passing"}]}]
    if nodes:
        widgets.append({"heading": "Top Failed Tests", "type": "cis-benchmark-tests",
                        "topFailedTests": {"tests": top_failed_tests(doc)}})
    return {"heading": "Kubernetes CIS Benchmark", "type": "row", "widgets": widgets}


def render(doc: dict[str, Any]) -> dict[str, Any]:
    """The UI summary of a stored report document (by its reportTypeName)."""
    rtype = doc.get("reportTypeName")
    if rtype in ("inventory", "network-access"):
        return _protection(doc)
    if rtype == "policy-audit":
        return _audit(doc)
    if rtype == "cis-benchmark":
        return _cis(doc)
    return {"type": "panel", "heading": str(rtype), "widgets": []}
