"""The UI summary of each report type is the JSON Calico's default uiSummaryTemplate renders: the templates
(tests/data/calico-report-types) are filled in from the report document and compared with margay's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.reports import ui_summary

TEMPLATES = Path(__file__).parent.parent / "data" / "calico-report-types"
SUMMARIES = {
    "endpointsSummary": {"numTotal": 12, "numIngressProtected": 9, "numEgressProtected": 4},
    "namespacesSummary": {"numTotal": 3, "numIngressProtected": 2, "numEgressProtected": 1},
    "auditSummary": {"numTotal": 7, "numCreate": 3, "numModify": 2, "numDelete": 2},
}


def fill(template: str, doc: dict[str, Any]) -> Any:
    """The simple templates: "@@@{{ .A.B }}@@@" becomes the number doc[a][b] (Calico strips the quotes)."""
    def value(m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        return str(doc[a[0].lower() + a[1:]][b[0].lower() + b[1:]])
    return orjson.loads(re.sub(r'"@@@\{\{ \.(\w+)\.(\w+) \}\}@@@"', value, template))


@pytest.mark.parametrize("rtype", ["inventory", "network-access", "policy-audit"])
def test_the_simple_types_render_as_their_templates(rtype: str) -> None:
    doc = {"reportTypeName": rtype, **SUMMARIES}
    want = fill((TEMPLATES / rtype / "ui-summary.json").read_text(), doc)
    assert ui_summary.render(doc) == want
    assert want["widgets"][0]["summary"]["total"] in (12, 7)  # the template was really filled in


def node(name: str, statuses: dict[str, str]) -> dict[str, Any]:
    return {"nodeName": name, "results": [{"section": "1.1", "results": [
        {"testNumber": n, "testDesc": f"test {n}", "testInfo": "fix it", "status": s, "scored": True}
        for n, s in statuses.items()]}]}


def test_cis_benchmark_worked_by_hand() -> None:
    doc = {"reportTypeName": "cis-benchmark", "reportSpec": {"cis": {"highThreshold": 90, "numFailedTests": 2}},
           "cisBenchmarkSummary": {"highCount": 1, "medCount": 0, "lowCount": 2},
           "cisBenchmark": [node("n1", {"1.1.2": "FAIL", "1.1.10": "FAIL", "1.1.3": "PASS"}),
                            node("n2", {"1.1.2": "FAIL", "1.1.10": "FAIL", "1.1.3": "FAIL"}),
                            node("n3", {"1.1.2": "PASS", "1.1.10": "PASS", "1.1.3": "PASS"})]}
    got = ui_summary.render(doc)
    assert got["type"] == "row" and got["heading"] == "Kubernetes CIS Benchmark"
    nodes, tests = got["widgets"]
    assert nodes["summary"] == {"label": "Total", "total": 3}
    assert nodes["data"] == [
        {"label": "HIGH", "value": 1, "desc": "Nodes with 90% or more tests passing"},
        {"label": "MED", "value": 0, "desc": "Nodes with 50% or more tests passing"},
        {"label": "LOW", "value": 2, "desc": "Nodes with less than 50% tests passing"}]
    # 1.1.2 and 1.1.10 failed on two nodes, 1.1.3 on one; ties in test-number order (1.1.2 before 1.1.10)
    assert tests["topFailedTests"]["tests"] == [
        {"index": "1.1.2", "description": "test 1.1.2", "failedCount": "2"},
        {"index": "1.1.10", "description": "test 1.1.10", "failedCount": "2"}]
    empty = ui_summary.render({"reportTypeName": "cis-benchmark", "cisBenchmarkSummary": {}})
    assert [w["type"] for w in empty["widgets"]] == ["cis-benchmark-nodes"]
    assert empty["widgets"][0]["data"][0]["desc"] == "Nodes with 100% tests passing"
