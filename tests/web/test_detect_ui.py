"""The detector's pages in the rig's Chromium at 1280 and 1440 px: Alerts (list with status, create from a
template after a dry-run preview, disable and enable) and Threat feeds (entries, last sync, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Site
from .test_ui import open_ui, shot

pytestmark = pytest.mark.rig
API = "/apis/projectcalico.org/v3"


@pytest.fixture(params=[1280, 1440])
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    try:
        p = context.new_page()
        p.width = request.param
        yield p
    finally:
        context.close()


def call(site: Site, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, site.url + path, json=body, timeout=30,
                         headers={"authorization": f"Bearer {site.token}", "x-cluster-id": "cluster"})


def on_screen(page: Any, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.width, (selector, box)


def test_alerts_page_creates_from_a_template_with_a_dry_run_and_toggles(page: Any, site: Site) -> None:
    name = f"spikes-{page.width}"
    call(site, "DELETE", f"{API}/globalalerts/{name}")
    errors = open_ui(page, site, "#/alerts", wait="alerts")
    page.select_option("#a-template", "margay.denied-flow-spike")
    assert "flows" in page.inner_text("#a-about")
    page.fill("#a-name", name)
    page.fill("#a-threshold", "1")
    page.click("#a-dry-run")
    page.wait_for_selector("#a-preview-count", timeout=30_000)
    previewed = int(page.get_attribute("#a-preview-count", "data-events"))
    # the same dry run through the API: the page shows what the server computed
    template = call(site, "GET", f"{API}/globalalerttemplates/margay.denied-flow-spike").json()
    alert = {"metadata": {"name": name}, "spec": {**template["spec"], "threshold": 1}}
    assert call(site, "POST", f"{API}/globalalerts/-/dry-run",
                {"alert": alert, "from": "now-24h", "to": "now"}).json()["events"] == previewed
    assert previewed > 0  # the simulated workload has denied flows
    page.click("#a-save")
    page.wait_for_selector(f"#alerts tr[data-name='{name}']", timeout=15_000)
    row = page.locator(f"#alerts tr[data-name='{name}']")
    assert row.get_attribute("data-state") in ("pending", "healthy")
    stored = call(site, "GET", f"{API}/globalalerts/{name}").json()
    assert stored["spec"]["threshold"] == 1 and stored["metadata"]["annotations"]["margay.io/template"] == \
        "margay.denied-flow-spike"
    on_screen(page, f"#alerts tr[data-name='{name}'] button.toggle")
    row.locator("button.toggle").click()
    page.wait_for_selector(f"#alerts tr[data-name='{name}'][data-state='disabled']", timeout=15_000)
    assert call(site, "GET", f"{API}/globalalerts/{name}/status").json()["active"] is False
    page.locator(f"#alerts tr[data-name='{name}'] button.toggle").click()
    page.wait_for_selector(f"#alerts tr[data-name='{name}']:not([data-state='disabled'])", timeout=15_000)
    assert call(site, "GET", f"{API}/globalalerts/{name}/status").json()["active"] is True
    # a bad name is refused with the server's message, on the page
    page.fill("#a-name", "Not A Name!")
    page.click("#a-save")
    page.wait_for_selector("#a-preview .error", timeout=15_000)
    assert "name" in page.inner_text("#a-preview .error")
    assert not [e for e in errors if "status of 4" not in e], errors
    if page.width == 1280:
        shot(page, "alerts")
    call(site, "DELETE", f"{API}/globalalerts/{name}")


def test_threat_feeds_page_lists_entries_sync_and_errors(page: Any, site: Site) -> None:
    pushed = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": "pushed-ips"},
              "spec": {"content": "IPSet", "description": "pushed by a partner"}}
    pulled = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": "tor-exits"},
              "spec": {"content": "DomainNameSet", "mode": "Disabled",
                       "pull": {"period": "1h", "http": {"url": "https://feeds.example/tor.txt"}}}}
    for doc in (pushed, pulled):
        assert call(site, "PUT", f"{API}/globalthreatfeeds/{doc['metadata']['name']}", doc).status_code in (200, 201)
    errors = open_ui(page, site, "#/feeds", wait="feeds")
    rows = {r.get_attribute("data-name"): r for r in page.locator("#feeds tbody tr").all()}
    assert {"pushed-ips", "tor-exits"} <= set(rows)
    cells = rows["tor-exits"].locator("td").all_inner_texts()
    assert cells[:4] == ["tor-exits", "DomainNameSet", "Disabled", "https://feeds.example/tor.txt"]
    push_cells = rows["pushed-ips"].locator("td").all_inner_texts()
    assert push_cells[3] == "push"
    status = call(site, "GET", f"{API}/globalthreatfeeds/pushed-ips/status").json()
    assert push_cells[4] == (str(status["entries"]) if "entries" in status else "—")
    assert push_cells[5] == ("never" if not status.get("lastSuccessfulSync") else push_cells[5])
    assert push_cells[7] == ("—" if not status.get("errorConditions") else push_cells[7])
    on_screen(page, "#feeds tbody tr td.errors")
    assert not errors, errors
    if page.width == 1280:
        shot(page, "feeds")
