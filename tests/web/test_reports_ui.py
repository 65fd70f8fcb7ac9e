"""The Reports page in the rig's Chromium at 1280 and 1440 px: the list of GlobalReports, the UI summary charts
of each report type, downloads, run now, and the diff of two runs; a summary-only reader and a reader without
a grant see what RBAC allows them and no more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY
from margay.reports import cis, reporter, snapshots
from margay.reports.resources import load_dump
from margay.testing.server import ServerThread
from margay.web.session import sign_in_page as sign_in

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.rig

NOW = datetime.now(UTC)
START = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC) - timedelta(days=2)
VERA = "tok-vera-summaries-only-0123456789"  # daily-inventory's summaries only (no globalreporttypes)
NOBODY = "tok-nobody-no-reports-0123456789"


def at(hours: int) -> datetime:
    return START + timedelta(hours=hours)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "x"}]}, "status": {"phase": "Running"}}


def gnp(name: str, selector: str, types: list[str]) -> dict[str, Any]:
    rules = {t.lower(): [{"action": "Allow"}] for t in types}
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": {"tier": "default", "selector": selector, "types": types, **rules}}


SNAPSHOT = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    pod("web-1", "web"), pod("db-1", "db"),
    gnp("default.web", 'app == "web"', ["Ingress"]), gnp("default.db", 'app == "db"', ["Ingress", "Egress"])]}


def audit(hour: int, verb: str, name: str, obj: dict[str, Any] | None) -> dict[str, Any]:
    t = stamp(at(hour))
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"{verb}-{name}",
        "stage": "ResponseComplete", "requestURI": f"/apis/projectcalico.org/v3/globalnetworkpolicies/{name}",
        "verb": verb, "user": {"username": "alice"}, "responseStatus": {"code": 200},
        "objectRef": {"resource": "globalnetworkpolicies", "name": name, "apiGroup": "projectcalico.org",
                      "apiVersion": "v3"}, "requestReceivedTimestamp": t, "stageTimestamp": t}
    if obj is not None:
        ev["requestObject"] = ev["responseObject"] = obj
    else:
        ev["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
    return ev


# db's policy deleted at 09:00 (db-1 left unprotected on ingress); an all-egress policy created at 10:00.
EVENTS = [audit(9, "delete", "default.db", None),
          audit(10, "create", "default.all-egress", gnp("default.all-egress", "all()", ["Egress"]))]
KUBE_BENCH = (b'{"Controls": [{"version": "cis-1.6", "tests": [{"section": "4.1", "desc": "Worker files", "results": ['
              b'{"test_number": "4.1.1", "test_desc": "kubelet service file permissions", "status": "FAIL", "scored": true,'
              b' "remediation": "chmod 644"}, {"test_number": "4.1.2", "test_desc": "kubelet ownership", "status": "PASS",'
              b' "scored": true, "remediation": "chown"}]}]}]}')
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "summaries"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["cluster"], "resourceNames": ["compliance_reports"],
                "verbs": ["get"]},
               {"apiGroups": ["projectcalico.org"], "resources": ["globalreports"], "verbs": ["list"]},
               {"apiGroups": ["projectcalico.org"], "resources": ["globalreports"], "resourceNames": ["daily-inventory"],
                "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "vera"},
     "subjects": [{"kind": "User", "name": "vera"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "summaries"}},
]


def report(name: str, rtype: str) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalReport", "metadata": {"name": name},
            "spec": {"reportType": rtype, "schedule": "0 */6 * * *"}}


@dataclass
class ReportSite:
    url: str
    token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportSite]:
    base = tmp_path_factory.mktemp("reports-ui")
    (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": VERA, "user": "vera"},
                                                      {"token": NOBODY, "user": "nobody"}]))
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True))
    b = app.state.margay.backend
    snapshots.take(b, "cluster", load_dump(yaml.safe_dump(SNAPSHOT).encode(), "s.yaml"),
                   started=at(-1), completed=at(-1))
    ok, _ = b.ingest(REGISTRY["audit_ee"], "cluster", b"\n".join(orjson.dumps(e) for e in EVENTS), key=None,
                     now=at(24), respond=lambda c: c.succeeded)
    assert ok == len(EVENTS)
    cis.store(b, "cluster", [cis.from_kube_bench(KUBE_BENCH, "node-1", "v1.30.2", at(2))], at(2))
    reporter.run(b, "cluster", report("daily-inventory", "inventory"), at(0), at(6), at(6))
    reporter.run(b, "cluster", report("daily-inventory", "inventory"), at(12), at(18), at(18))
    reporter.run(b, "cluster", report("policy-changes", "policy-audit"), at(0), at(24), at(24))
    reporter.run(b, "cluster", report("cis-nodes", "cis-benchmark"), at(0), at(24), at(24))
    with ServerThread(app) as server:
        yield ReportSite(server.url, app.state.margay.access.admin_token)


@pytest.fixture(params=[1280, 1440], ids=["1280px", "1440px"])
def page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": request.param, "height": 900}, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_reports(page: Any, site: ReportSite, token: str, frag: str = "#/reports") -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, site.url, token)
    page.goto(site.url + "/ui/" + frag)
    page.wait_for_function("() => window.__margayRendered && window.__margayRendered.reports", timeout=30_000)
    return errors


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_list_summary_charts_downloads_and_diff(page: Any, site: ReportSite) -> None:
    errors = open_reports(page, site, site.token, "#/reports/daily-inventory?c=cluster")
    rows = page.locator("#reports tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.report)")) == [
        "cis-nodes", "daily-inventory", "policy-changes"]
    # the inventory type's UI summary: four radial bar charts, figures of the latest run (12:00-18:00)
    widgets = page.locator("#ui-summary .widget")
    assert widgets.evaluate_all("ws => ws.map(w => w.dataset.heading)") == [
        "Endpoints", "Namespaces", "Endpoints", "Namespaces"]
    assert page.locator("#ui-summary .caption").all_inner_texts() == [
        "Protected ingress: 1 of 2", "Protected ingress: 0 of 1", "Protected egress: 2 of 2", "Protected egress: 1 of 1"]
    assert page.locator("#ui-summary canvas").count() == 4  # drawn
    # downloads of the type, the full JSON and the printable summary
    first = page.locator(f'#runs tr[data-end="{stamp(at(18))}"]')
    assert first.locator("a.download").evaluate_all("as => as.map(a => a.dataset.file)") == [
        "summary.csv", "endpoints.csv", "namespaces.csv", "services.csv", "report.json", "summary.html"]
    with page.expect_download() as dl:
        first.locator('a.download[data-file="endpoints.csv"]').click()
    text = open(dl.value.path()).read()
    assert text.splitlines()[0] == "endpoint,ingressProtected,egressProtected,envoyEnabled,appliedPolicies,services"
    assert "Pod.v1(shop/db-1),false,true" in text
    # diff of the two runs
    for end in (at(6), at(18)):
        page.locator(f'#runs tr[data-end="{stamp(end)}"] input.compare').check()
    page.click("#compare")
    page.wait_for_selector("#diff .diffcol")
    col = page.locator('#diff .diffcol[data-key="becameIngressUnprotected"] li')
    assert col.all_inner_texts() == ["Pod.v1(shop/db-1)"]
    assert page.locator('#diff .diffcol[data-key="policiesAppeared"] li').all_inner_texts() == [
        "GlobalNetworkPolicy(default.all-egress)"]
    assert page.locator('#diff .diffcol[data-key="policiesVanished"] li').all_inner_texts() == [
        "GlobalNetworkPolicy(default.db)"]
    assert page.locator('#diff .diffcol[data-key="becameEgressProtected"] li').all_inner_texts() == ["Pod.v1(shop/web-1)"]
    assert fits(page)
    if page.viewport_size["width"] == 1440:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(150)
        page.screenshot(path=str(SCREENSHOTS / "reports.png"))
        page.locator("#diff").screenshot(path=str(SCREENSHOTS / "reports-diff.png"))
    assert not errors, errors


def test_policy_audit_and_cis_summaries(page: Any, site: ReportSite) -> None:
    errors = open_reports(page, site, site.token, "#/reports/policy-changes?c=cluster")
    assert page.locator("#ui-summary .caption").all_inner_texts() == [
        "Created: 1 of 2", "Modified: 0 of 2", "Deleted: 1 of 2"]
    page.click('#reports tr[data-report="cis-nodes"] a')
    page.wait_for_selector('#ui-summary .widget[data-type="cis-benchmark-tests"]')
    assert page.locator('#ui-summary .widget[data-type="cis-benchmark-nodes"] .caption').inner_text() == \
        "1 nodes: HIGH 0, MED 0, LOW 1"
    assert page.locator('#ui-summary .widget[data-type="cis-benchmark-tests"] tbody tr').all_inner_texts() == [
        "4.1.1\tkubelet service file permissions\t1 nodes"]
    assert fits(page)
    assert not errors, errors


def test_run_now_adds_a_run(page: Any, site: ReportSite) -> None:
    errors = open_reports(page, site, site.token, "#/reports/policy-changes?c=cluster")
    before = page.locator("#runs tbody tr").count()
    # an interval ending a few minutes ago, different per viewport (a run of the same end replaces the last one)
    minutes = page.viewport_size["width"] // 100
    page.evaluate("""m => { const local = (d) => new Date(d - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        document.getElementById('run-end').value = local(Date.now() - m * 60000); }""", minutes)
    page.click("#run-now button[type=submit]")
    page.wait_for_function("() => /^Stored run policy-changes_/.test(document.getElementById('run-result').textContent)")
    assert page.locator("#runs tbody tr").count() == before + 1
    assert not errors, errors


def test_a_summary_only_reader_and_a_reader_without_a_grant(page: Any, site: ReportSite) -> None:
    errors = open_reports(page, site, VERA, "#/reports?c=cluster")
    assert page.locator("#reports tbody tr").evaluate_all("rs => rs.map(r => r.dataset.report)") == ["daily-inventory"]
    assert page.locator('[data-testid="summary-only"]').count() == 1
    assert page.locator("a.download").count() == 0 and page.locator("#compare").count() == 0
    assert page.locator("#run-now").count() == 0
    assert "null" not in page.locator("#report-detail").inner_text().split()
    assert page.locator("#ui-summary .caption").count() == 4  # summaries stay visible
    assert not errors, errors
    page.context.clear_cookies()
    page.goto("about:blank")  # a fresh load as the other reader
    open_reports(page, site, NOBODY, "#/reports?c=cluster")
    text = page.locator('[data-testid="forbidden"]').inner_text()
    assert "nobody may not read compliance_reports" in text and "globalreports" in text
    assert json.dumps(page.locator("main").inner_text()).count("Pod.v1") == 0
