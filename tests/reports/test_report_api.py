"""The report API (/api/v1/reports: the Reports page's JSON twin) on both engines: runs listed with their
summaries, a run's document and every download, the diff of two runs, run now; hostile input is a 4xx
naming what is wrong, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY
from margay.reports import reporter, snapshots
from margay.reports.resources import load_dump
from margay.testing.server import ServerThread

START = datetime(2026, 12, 1, tzinfo=UTC)
SIX, END = START + timedelta(hours=6), START + timedelta(days=1)
HDR = {"x-cluster-id": "c1"}
NDJSON = {"content-type": "application/x-ndjson"}


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "x"}]}, "status": {"phase": "Running"}}


SNAPSHOT = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    pod("web-1", app="web"), pod("db-1", app="db"),
    {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "default.web"},
     "spec": {"tier": "default", "selector": 'app == "web"', "types": ["Ingress"], "ingress": [{"action": "Allow"}]}}]}
# db-1 relabelled web at 08:00: the later run protects it
RELABEL = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "relabel",
           "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/shop/pods/db-1", "verb": "patch",
           "user": {"username": "alice"}, "responseStatus": {"code": 200},
           "objectRef": {"resource": "pods", "namespace": "shop", "name": "db-1", "apiVersion": "v1"},
           "requestObject": pod("db-1", app="web"), "responseObject": pod("db-1", app="web"),
           "requestReceivedTimestamp": "2026-12-01T08:00:00Z", "stageTimestamp": "2026-12-01T08:00:00Z"}
INVENTORY = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": "inv"},
             "spec": {"reportType": "inventory", "schedule": "0 */6 * * *"}}


@pytest.fixture(scope="module")
def server(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("report-api"), **module_engine))
    b = app.state.margay.backend
    snapshots.take(b, "c1", load_dump(yaml.safe_dump(SNAPSHOT).encode(), "s.yaml"),
                   started=START - timedelta(hours=1), completed=START - timedelta(hours=1))
    resp, _ = b.ingest(REGISTRY["audit_kube"], "c1", orjson.dumps(RELABEL), key=None, now=END,
                       respond=lambda c: c.succeeded)
    assert resp == 1
    reporter.run(b, "c1", INVENTORY, START, SIX, SIX)
    with ServerThread(app) as s:
        yield s.url


def test_list_run_download_and_diff(server: str) -> None:
    # run now: the GlobalReport as the stored run recorded it
    r = httpx.post(server + "/api/v1/reports/inv/run", json={"start": "2026-12-01T12:00:00Z", "end": "2026-12-01T18:00:00Z"},
                   headers=HDR)
    assert r.status_code == 201, r.text
    got = httpx.get(server + "/api/v1/reports", params={"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
                    headers=HDR)
    assert got.status_code == 200, got.text
    (inv,) = got.json()["reports"]
    assert inv["name"] == "inv" and inv["canView"] and inv["canRun"]
    assert [r["endTime"] for r in inv["runs"]] == ["2026-12-01T18:00:00Z", "2026-12-01T06:00:00Z"]
    assert [r["endpointsSummary"]["numIngressProtected"] for r in inv["runs"]] == [2, 1]
    widgets = inv["runs"][0]["uiSummary"]["widgets"]
    assert (widgets[0]["heading"], widgets[0]["summary"]["total"], widgets[0]["data"][0]["value"]) == ("Endpoints", 2, 2)
    base = server + "/api/v1/reports/inv/runs/2026-12-01T18:00:00Z"
    doc = httpx.get(base, headers=HDR).json()
    assert doc["id"] == "inv_2026-12-01T18:00:00Z" and doc["reportSpec"]["schedule"] == "0 */6 * * *"
    for name in inv["runs"][0]["downloads"]:
        f = httpx.get(f"{base}/download/{name}", params={"cluster": "c1"})  # the browser's link form
        assert f.status_code == 200 and f.text, name
    assert httpx.get(base + "/download/endpoints.csv", headers=HDR).text.splitlines() == [
        "endpoint,ingressProtected,egressProtected,envoyEnabled,appliedPolicies,services",
        "Pod.v1(shop/db-1),true,false,false,GlobalNetworkPolicy(default.web),",
        "Pod.v1(shop/web-1),true,false,false,GlobalNetworkPolicy(default.web),"]
    d = httpx.get(server + "/api/v1/reports/inv/diff", params={"from": "2026-12-01T18:00:00Z",
                                                             "to": "2026-12-01T06:00:00Z"}, headers=HDR)
    assert d.status_code == 200, d.text
    assert d.json()["from"]["endTime"] == "2026-12-01T06:00:00Z"  # put in order
    assert d.json()["becameIngressProtected"] == ["Pod.v1(shop/db-1)"]


@pytest.mark.parametrize(("method", "path", "kw", "status", "words"), [
    ("GET", "/api/v1/reports/Bad_Name/runs/2026-12-01T06:00:00Z", {}, 400, "report name in the path"),
    ("GET", "/api/v1/reports/inv/runs/yesterday-ish", {}, 400, "end time in the path"),
    ("GET", "/api/v1/reports/inv/runs/2026-12-01T07:00:00Z", {}, 404, "no report of 'inv'"),
    ("GET", "/api/v1/reports/inv/runs/2026-12-01T06:00:00Z/download/x.exe", {}, 404, "available: endpoints.csv"),
    ("GET", "/api/v1/reports", {"params": {"cluster": "Not A Cluster"}}, 400, "cluster query parameter"),
    ("GET", "/api/v1/reports", {"params": {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}}, 400,
     "from is after to"),
    ("GET", "/api/v1/reports/inv/diff", {"params": {"from": "2026-12-01T06:00:00Z"}}, 400, "?from=<end>&to=<end>"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2026-12-01T00:00:00Z"}}, 400, "end:"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2026-12-01T06:00:00Z", "end": "2026-12-01T00:00:00Z"}},
     400, "after start"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}},
     400, "31 days"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2098-12-31T00:00:00Z", "end": "2099-01-01T00:00:00Z"}}, 400, "future"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z",
                                                  "report": {**INVENTORY, "spec": {"reportType": "nope"}}}},
     400, "report.spec.reportType"),
    ("POST", "/api/v1/reports/inv/run", {"json": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z",
                                                  "report": {**INVENTORY, "metadata": {"name": "other"}}}},
     400, "report.metadata.name"),
    ("POST", "/api/v1/reports/never-ran/run", {"json": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}},
     404, "send it as `report`"),
    ("POST", "/api/v1/reports/inv/run", {"content": b"[1, 2"}, 400, "not valid JSON"),
])
def test_hostile_input_is_a_clear_4xx(server: str, method: str, path: str, kw: dict[str, Any], status: int,
                                      words: str) -> None:
    r = httpx.request(method, server + path, headers=HDR, **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"], r.text


def test_a_run_from_a_given_globalreport(server: str, tmp_path: Path) -> None:
    report = {**INVENTORY, "metadata": {"name": "scoped"},
              "spec": {"reportType": "network-access", "endpoints": {"selector": 'app == "web"'}}}
    r = httpx.post(server + "/api/v1/reports/scoped/run", headers=HDR,
                   json={"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z", "report": report})
    assert r.status_code == 201, r.text
    assert r.json()["reportTypeName"] == "network-access"
    got = httpx.get(server + "/api/v1/reports", headers=HDR, params={"reportName": "scoped", "from": "2026-11-30T00:00:00Z",
                                                                     "to": "2026-12-02T00:00:00Z"}).json()["reports"]
    assert [(x["name"], len(x["runs"])) for x in got] == [("scoped", 1)]
    assert got[0]["runs"][0]["endpointsSummary"]["numTotal"] == 1  # web-1 only (db-1 became web at 08:00)


def test_a_writers_malformed_report_records_never_fail_the_list_or_a_read(server: str) -> None:
    """A cluster's writer may bulk-write report records of any shape (Linseed's reports bulk): one whose name no
    GlobalReport could have is never listed (it blocked the list with a 400), a text that only starts like JSON
    stays text (a 500), and a run whose fields have other shapes lists without a UI summary and answers its
    downloads with a 422 naming the run (500s)."""
    end = "2026-12-01T10:00:00Z"
    run = {"reportTypeName": "inventory", "startTime": "2026-12-01T09:00:00Z", "endTime": end}
    docs = [dict(run, reportName="../../x"), dict(run, reportName="badjson", uiSummary="{not json"),
            dict(run, reportName="shapes", endpoints="x", endpointsSummary=[1, 2], namespaces={"a": 1})]
    r = httpx.post(server + "/api/v1/compliance/reports/bulk", headers={"x-cluster-id": "c2", **NDJSON},
                   content=b"\n".join(orjson.dumps(d) for d in docs))
    assert r.status_code == 200 and r.json()["succeeded"] == 3, r.text
    got = httpx.get(server + "/api/v1/reports", params={"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
                    headers={"x-cluster-id": "c2"})
    assert got.status_code == 200, got.text
    assert sorted(r["name"] for r in got.json()["reports"]) == ["badjson", "shapes"]
    doc = httpx.get(f"{server}/api/v1/reports/badjson/runs/{end}", headers={"x-cluster-id": "c2"})
    assert doc.status_code == 200 and doc.json()["uiSummary"] == "{not json", doc.text
    for name in ("badjson", "shapes"):
        for f in ("summary.csv", "endpoints.csv", "report.json", "summary.html"):
            r = httpx.get(f"{server}/api/v1/reports/{name}/runs/{end}/download/{f}", headers={"x-cluster-id": "c2"})
            assert r.status_code in (200, 422), (name, f, r.status_code, r.text)
            assert r.status_code == 200 or "is malformed" in r.text, r.text
