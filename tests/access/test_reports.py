"""Compliance reports are guarded as Calico's compliance server guards them, on every read path: the
report API (list, run, downloads, diff, run now), Linseed's compliance read and the /es/ API. Each person's
answer is written out by hand from conftest.RBAC, and local RBAC and the real API server must agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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

from .conftest import RBAC, TOKENS, kube_people, token_of, write_tokens

START = datetime(2026, 12, 1, tzinfo=UTC)
SIX, END = START + timedelta(hours=6), START + timedelta(days=1)


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "x"}]}, "status": {"phase": "Running"}}


def gnp(name: str, selector: str) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": {"tier": "default", "selector": selector, "types": ["Ingress"], "ingress": [{"action": "Allow"}]}}


SNAPSHOT = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "web"}}},
    pod("web-1", app="web"), pod("web-2", app="web"), pod("db-1", app="db"),
    gnp("default.web", 'app == "web"'), gnp("default.db", 'app == "db"')]}


def audit(hour: int, verb: str, name: str, obj: dict[str, Any] | None) -> dict[str, Any]:
    at = (START + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"{verb}-{name}",
        "stage": "ResponseComplete", "requestURI": f"/apis/projectcalico.org/v3/globalnetworkpolicies/{name}",
        "verb": verb, "user": {"username": "alice"}, "responseStatus": {"code": 200},
        "objectRef": {"resource": "globalnetworkpolicies", "name": name, "apiGroup": "projectcalico.org",
                      "apiVersion": "v3"},
        "requestReceivedTimestamp": at, "stageTimestamp": at}
    if obj is not None:
        ev["requestObject"] = ev["responseObject"] = obj
    else:
        ev["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
    return ev


# web's policy widened at 09:00 (so still 2 changes after 06:00), db's deleted at 18:00
EE_EVENTS = [audit(3, "create", "default.extra", gnp("default.extra", "all()")),
             audit(9, "patch", "default.web", gnp("default.web", "has(app)")),
             audit(18, "delete", "default.db", None)]


def report(name: str, rtype: str = "inventory") -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": name},
            "spec": {"reportType": rtype, "schedule": "0 0 * * *"}}

RUNS = {"daily-inventory": "inventory", "weekly-audit": "policy-audit", "secret-report": "network-access"}
WIDE = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-03T00:00:00Z"}
DAILY = "/api/v1/reports/daily-inventory/runs/2026-12-02T00:00:00Z"


class Reports:
    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.tokens = tokens

    def call(self, who: str, method: str, path: str, cluster: str = "west", **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}", "x-cluster-id": cluster}
        return self.http.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module", params=["local", pytest.param("kube", marks=pytest.mark.rig)])
def reports(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    base = tmp_path_factory.mktemp("reports-access")
    tokens_file = base / "tokens.yaml"
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    if request.param == "local":
        write_tokens(tokens_file, TOKENS)
        people = {n: token_of(n) for n in TOKENS}
        settings = Settings(data_dir=base / "data", tokens=tokens_file, rbac=base / "rbac.yaml", admin_token=True)
    else:
        kube = request.getfixturevalue("kube")
        people = kube_people(kube)
        write_tokens(tokens_file, {n: e for n, e in TOKENS.items() if "cluster" in e})
        people["writer-east"] = token_of("writer-east")
        settings = Settings(data_dir=base / "data", tokens=tokens_file, admin_token=True,
                            kubeconfig=kube.kubeconfig_for("margay", base / "kubeconfig"))
    app = create_app(settings)
    m = app.state.margay
    people["admin"] = m.access.admin_token
    b = m.backend
    for cluster in ("west", "east"):
        snapshots.take(b, cluster, load_dump(yaml.safe_dump(SNAPSHOT).encode(), "snapshot.yaml"),
                       started=START - timedelta(hours=1), completed=START - timedelta(hours=1))
        resp, _ = b.ingest(REGISTRY["audit_ee"], cluster, b"\n".join(orjson.dumps(e) for e in EE_EVENTS), key=None,
                           now=END, respond=lambda c: c.succeeded)
        assert resp == len(EE_EVENTS)
        for name, rtype in RUNS.items():
            reporter.run(b, cluster, report(name, rtype), SIX, END, END)
        reporter.run(b, cluster, report("daily-inventory"), START, SIX, SIX)
    with ServerThread(app) as server:
        r = Reports(server.url, people)
        yield r
        r.http.close()


def listing(r: Reports, who: str, cluster: str = "west") -> httpx.Response:
    return r.call(who, "GET", "/api/v1/reports", cluster, params=WIDE)


def test_full_readers_see_every_report_and_may_run_them(reports: Reports) -> None:
    for who in ("admin", "carol"):
        got = listing(reports, who)
        assert got.status_code == 200, got.text
        rows = {x["name"]: x for x in got.json()["reports"]}
        assert {n: x["reportTypeName"] for n, x in rows.items()} == RUNS
        assert all(x["canView"] and x["canRun"] for x in rows.values())
        daily = rows["daily-inventory"]["runs"]
        assert [x["endTime"] for x in daily] == ["2026-12-02T00:00:00Z", "2026-12-01T06:00:00Z"]
        assert daily[0]["downloads"][:4] == ["summary.csv", "endpoints.csv", "namespaces.csv", "services.csv"]
        assert daily[0]["uiSummary"]["widgets"][0]["summary"]["total"] == 3
        csv = reports.call(who, "GET", DAILY + "/download/endpoints.csv")
        assert csv.status_code == 200 and csv.text.startswith("endpoint,") and "Pod.v1(shop/web-1)" in csv.text
        assert "attachment" in csv.headers["content-disposition"]
    # carol's grant on compliance reports is west's alone
    refused = listing(reports, "carol", "east")
    assert refused.status_code == 403 and "compliance_reports" in refused.text


def test_a_reader_of_named_reports_sees_those_only_and_downloads_only_their_types(reports: Reports) -> None:
    got = listing(reports, "ivy")
    assert got.status_code == 200, got.text
    rows = {x["name"]: x for x in got.json()["reports"]}
    assert sorted(rows) == ["daily-inventory", "weekly-audit"]  # secret-report: no get on it
    assert rows["daily-inventory"]["canView"] and not rows["daily-inventory"]["canRun"]
    assert all("downloads" in x for x in rows["daily-inventory"]["runs"])
    audit = rows["weekly-audit"]
    assert not audit["canView"] and all("downloads" not in x for x in audit["runs"])
    assert audit["runs"][0]["auditSummary"] == {"numTotal": 2, "numCreate": 0, "numModify": 1, "numDelete": 1}
    assert reports.call("ivy", "GET", DAILY + "/download/summary.html").status_code == 200
    weekly = reports.call("ivy", "GET", "/api/v1/reports/weekly-audit/runs/2026-12-02T00:00:00Z/download/events.json")
    assert weekly.status_code == 403 and "globalreporttypes/policy-audit" in weekly.text
    assert "auditID" not in weekly.text
    secret = reports.call("ivy", "GET", "/api/v1/reports/secret-report/runs/2026-12-02T00:00:00Z")
    assert secret.status_code == 403 and "globalreports/secret-report" in secret.text
    d = reports.call("ivy", "GET", "/api/v1/reports/daily-inventory/diff",
                     params={"from": "2026-12-01T06:00:00Z", "to": "2026-12-02T00:00:00Z"})
    assert d.status_code == 200 and d.json()["endpointsAppeared"] == []
    assert reports.call("ivy", "GET", "/api/v1/reports/secret-report/diff",
                        params={"from": "2026-12-01T06:00:00Z", "to": "2026-12-02T00:00:00Z"}).status_code == 403
    run = reports.call("ivy", "POST", "/api/v1/reports/daily-inventory/run",
                       json={"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T12:00:00Z"})
    assert run.status_code == 403 and "update globalreports/daily-inventory" in run.text


def test_linseed_and_es_reads_of_reports_follow_the_same_rights(reports: Reports) -> None:
    body = {"time_range": {"from": "2026-11-01T00:00:00Z", "to": "2026-12-03T00:00:00Z"}, "max_page_size": 100}
    for who, want in (("carol", sorted(RUNS)), ("admin", sorted(RUNS)), ("ivy", ["daily-inventory"])):
        got = reports.call(who, "POST", "/api/v1/compliance/reports", json=body)
        assert got.status_code == 200, got.text
        assert sorted({x["reportName"] for x in got.json()["items"]}) == want, who
        agg = reports.call(who, "POST", "/api/v1/compliance/reports/aggregation",
                           json={**body, "aggregations": {"n": {"terms": {"field": "reportName"}}}})
        assert sorted(b["key"] for b in agg.json()["n"]["buckets"]) == want, who
        es = reports.call(who, "POST", "/es/tigera_secure_ee_compliance_reports.west*/_search",
                          json={"size": 100, "query": {"match_all": {}}})
        assert es.status_code == 200, es.text
        assert sorted({h["_source"]["reportName"] for h in es.json()["hits"]["hits"]}) == want, who
    for who in ("alice", "bob", "eve", "mallory", "writer-east"):
        got = reports.call(who, "POST", "/api/v1/compliance/reports", json=body)
        assert got.status_code == 403 and "Pod.v1" not in got.text, who


@pytest.mark.parametrize("who", ["alice", "bob", "eve", "mallory", "hank", "writer-east"])
def test_no_grant_on_the_clusters_reports_is_403_everywhere(reports: Reports, who: str) -> None:
    """eve holds get on every projectcalico.org resource but no lma grant: the cluster's grant comes first."""
    for method, path, kw in (("GET", "/api/v1/reports", {"params": WIDE}), ("GET", DAILY, {}),
                             ("GET", DAILY + "/download/summary.csv", {}),
                             ("GET", "/api/v1/reports/daily-inventory/diff",
                              {"params": {"from": "2026-12-01T06:00:00Z", "to": "2026-12-02T00:00:00Z"}}),
                             ("POST", "/api/v1/reports/daily-inventory/run",
                              {"json": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T12:00:00Z"}})):
        got = reports.call(who, method, path, **kw)
        assert got.status_code == 403, (who, path, got.text)
        assert set(got.json()) == {"error"} and "Pod.v1" not in got.text


def test_run_now_stores_a_run_that_the_history_lists(reports: Reports) -> None:
    got = reports.call("carol", "POST", "/api/v1/reports/weekly-audit/run",
                       json={"start": "2026-12-01T12:00:00Z", "end": "2026-12-01T20:00:00Z"})
    assert got.status_code == 201, got.text
    assert got.json()["id"] == "weekly-audit_2026-12-01T20:00:00Z"
    rows = {x["name"]: x for x in listing(reports, "carol").json()["reports"]}
    ends = [x["endTime"] for x in rows["weekly-audit"]["runs"]]
    assert "2026-12-01T20:00:00Z" in ends
    events = reports.call("carol", "GET", "/api/v1/reports/weekly-audit/runs/2026-12-01T20:00:00Z/download/events.json")
    assert [(e["verb"], e["objectRef"]["name"]) for e in events.json()] == [("delete", "default.db")]
