"""CIS benchmarks: kube-bench JSON results per node, stored like Calico's `benchmark_results`, and the
cis-benchmark report rating each node by the share of tests it passes (spec §12.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import BackendError, ParseError
from ..logtypes.compliance import BENCHMARKS
from ..query.model import Query, SortKey
from ..store.backend import Backend
from .csvout import render, render_csv

_STATUS = {"PASS": "PASS", "FAIL": "FAIL", "WARN": "INFO", "INFO": "INFO"}
_PAGE = 5000  # OpenSearch answers nothing for a page of 10,000 (size + 1 passes its result window)


def from_kube_bench(data: bytes, node: str, kubernetes_version: str, at: datetime, source: str = "kube-bench"
                    ) -> dict[str, Any]:
    """A benchmark_results document from `kube-bench --json` output ({"Controls": [...]} or a list of
    controls); malformed input raises naming the field."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"{source}: not JSON: {e}") from None
    controls = doc.get("Controls") if isinstance(doc, dict) else doc
    if not isinstance(controls, list) or not controls:
        raise ParseError(f"{source}.Controls: expected a non-empty list of kube-bench controls")
    if not isinstance(node, str) or not node:
        raise ParseError(f"{source}: give the node the results are from")
    tests: list[dict[str, Any]] = []
    version = ""
    for c, control in enumerate(controls):
        where = f"{source}.Controls[{c}]"
        if not isinstance(control, dict):
            raise ParseError(f"{where}: expected an object")
        version = version or str(control.get("version") or "")
        groups = control.get("tests")
        if not isinstance(groups, list):
            raise ParseError(f"{where}.tests: expected a list of sections")
        for g, group in enumerate(groups):
            gwhere = f"{where}.tests[{g}]"
            if not isinstance(group, dict) or not isinstance(group.get("section"), str):
                raise ParseError(f"{gwhere}.section: expected a section number such as \"4.1\"")
            results = group.get("results")
            if not isinstance(results, list):
                raise ParseError(f"{gwhere}.results: expected a list of test results")
            for r, res in enumerate(results):
                rwhere = f"{gwhere}.results[{r}]"
                if not isinstance(res, dict):
                    raise ParseError(f"{rwhere}: expected an object")
                if not isinstance(res.get("test_number"), str) or not res["test_number"]:
                    raise ParseError(f"{rwhere}.test_number: expected a test number such as \"4.1.1\"")
                status = res.get("status")
                if status not in _STATUS:
                    raise ParseError(f"{rwhere}.status: expected PASS, FAIL, WARN or INFO, got {status!r}")
                if not isinstance(res.get("scored", False), bool):
                    raise ParseError(f"{rwhere}.scored: expected true or false")
                tests.append({"section": group["section"], "section_desc": str(group.get("desc") or ""),
                              "test_number": res["test_number"], "test_desc": str(res.get("test_desc") or ""),
                              "test_info": str(res.get("remediation") or res.get("test_info") or ""),
                              "status": _STATUS[status], "scored": bool(res.get("scored", False))})
    return {"version": version, "kubernetesVersion": kubernetes_version, "type": "kube", "node_name": node,
            "timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "tests": tests}


def store(backend: Backend, cluster: str, docs: list[dict[str, Any]], now: datetime) -> None:
    body = b"\n".join(orjson.dumps(d) for d in docs)
    resp, _ = backend.ingest(BENCHMARKS, cluster, body, key=None, now=now,
                             respond=lambda c: {"errors": [e.as_dict() for e in c.errors]})
    if resp["errors"]:
        raise BackendError(f"benchmarks not stored: {resp['errors'][0]}")


def latest_per_node(backend: Backend, cluster: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The newest result of every node benchmarked in [start, end), by node name."""
    seen: dict[str, dict[str, Any]] = {}
    q = Query(BENCHMARKS, [cluster], start=start, end=end, sort=[SortKey("timestamp", descending=True)],
              size=_PAGE, total_hits=False)
    for d in backend.search(q).items:
        seen.setdefault(d["node_name"], d)
    return [seen[n] for n in sorted(seen)]


def _threshold(cis: dict[str, Any], key: str, default: int, where: str) -> int:
    v = cis.get(key, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
        raise ParseError(f"{where}.{key}: expected a percentage from 0 to 100")
    return v


def compute(backend: Backend, cluster: str, report_spec: dict[str, Any], start: datetime, end: datetime
            ) -> dict[str, Any]:
    """cisBenchmark (per node: results by section, a summary rated HIGH/MED/LOW) and cisBenchmarkSummary."""
    cis = report_spec.get("cis") or {}
    if not isinstance(cis, dict):
        raise ParseError("spec.cis: expected an object")
    high = _threshold(cis, "highThreshold", 100, "spec.cis")
    med = _threshold(cis, "medThreshold", 50, "spec.cis")
    unscored = bool(cis.get("includeUnscoredTests", False))
    nodes = []
    counts = {"HIGH": 0, "MED": 0, "LOW": 0}
    for d in latest_per_node(backend, cluster, start, end):
        tests = d.get("tests") or []
        if isinstance(tests, str):
            tests = orjson.loads(tests)
        counted = [t for t in tests if unscored or t.get("scored")]
        passing = sum(t["status"] == "PASS" for t in counted)
        failing = sum(t["status"] == "FAIL" for t in counted)
        info = sum(t["status"] == "INFO" for t in counted)
        pct = 100 * passing / len(counted) if counted else 0
        status = "HIGH" if pct >= high else "MED" if pct > med else "LOW"
        counts[status] += 1
        sections: dict[str, dict[str, Any]] = {}
        for t in counted:
            sec = sections.setdefault(t["section"], {"section": t["section"], "sectionDesc": t["section_desc"],
                                                     "results": []})
            sec["results"].append({"testNumber": t["test_number"], "testDesc": t["test_desc"],
                                   "testInfo": t["test_info"], "status": t["status"], "scored": t["scored"]})
        nodes.append({"nodeName": d["node_name"], "kubernetesVersion": d.get("kubernetesVersion") or "",
                      "benchmarksVersion": d.get("version") or "",
                      "summary": {"status": status, "totalPass": passing, "totalFail": failing, "totalInfo": info,
                                  "total": len(counted)},
                      "results": list(sections.values())})
    return {"cisBenchmark": nodes, "cisBenchmarkSummary": {
        "type": "kube", "highCount": counts["HIGH"], "medCount": counts["MED"], "lowCount": counts["LOW"],
        "highThreshold": high, "medThreshold": med}}


def downloads(report: dict[str, Any]) -> dict[str, str]:
    """total-summary.csv, node-summary.csv, failed-tests.csv and all-tests.csv, laid out as Calico's
    templates render them (remediation always quoted; the per-node files end with an empty line), written
    by csvout: node names and test texts come from the clusters' writer tokens, so they are quoted as
    needed and a leading formula character is neutralised."""
    s = report["cisBenchmarkSummary"]
    total = render_csv(["startTime", "endTime", "type", "hiPercentThreshold", "medPercentThreshold", "hiNodeCount",
                        "medNodeCount", "lowNodeCount"],
                       [{"startTime": report["startTime"], "endTime": report["endTime"], "type": s["type"],
                         "hiPercentThreshold": s["highThreshold"], "medPercentThreshold": s["medThreshold"],
                         "hiNodeCount": s["highCount"], "medNodeCount": s["medCount"],
                         "lowNodeCount": s["lowCount"]}], single=True)
    nodes = report.get("cisBenchmark") or []
    summary = render(["node", "version", "status", "testsPassing", "testsFailing", "testsUnknown", "testsTotal"],
                     ([n["nodeName"], n["kubernetesVersion"], n["summary"]["status"], n["summary"]["totalPass"],
                       n["summary"]["totalFail"], n["summary"]["totalInfo"], n["summary"]["total"]] for n in nodes),
                     blank_line=True)

    def tests(only_failed: bool) -> str:
        rows = ([n["nodeName"], t["testNumber"], t["testDesc"], t["status"], bool(t["scored"]), t["testInfo"]]
                for n in nodes for sec in n["results"] for t in sec["results"]
                if not only_failed or t["status"] == "FAIL")
        return render(["nodeName", "testIndex", "testDescription", "status", "scored", "remediation"], rows,
                      blank_line=True, quote_last=True)

    return {"total-summary.csv": total, "node-summary.csv": summary, "failed-tests.csv": tests(True),
            "all-tests.csv": tests(False)}
