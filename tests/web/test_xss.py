"""Stored XSS: hostile markup in every string field of every log type, every page opened, hovered and clicked
as an admin in the rig's Chromium. No script may run, no element may be made from data, and the
Content-Security-Policy must be on every answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES, Field, Kind, LogType
from margay.testing.server import ServerThread
from margay.web.session import sign_in_page

pytestmark = pytest.mark.rig

# Each payload sets window.__xss if it ever runs; the markers let the DOM check find what was made from data.
PAYLOADS = [
    '<img src=x onerror="window.__xss=(window.__xss||0)+1" data-xss=1>',
    '"><script data-xss=1>window.__xss=(window.__xss||0)+1</script>',
    "'><svg data-xss=1 onload=window.__xss=1>",
    "<a data-xss=1 href=javascript:window.__xss=1>x</a>",
    "{{constructor.constructor('window.__xss=1')()}}",
    '<iframe data-xss=1 srcdoc="<script>parent.__xss=1</script>"></iframe>',
]
PAGES = ["#/overview", "#/explore/flows", "#/explore/dns", "#/explore/audit", "#/explore/bgp",
         "#/explore/events", "#/explore/l7", "#/explore/waf", "#/events", "#/graph", "#/alerts", "#/feeds"]
WAIT = {"#/overview": "overview", "#/events": "events", "#/graph": "graph", "#/alerts": "alerts", "#/feeds": "feeds"}
NOT_MARKUP = "[data-xss], script:not([src]), iframe, img[src='x'], svg[onload], a[href^='javascript']"


def hostile_value(f: Field, sample: Any, n: int) -> Any:
    """The field's value with markup in every string the type lets us put there."""
    p = PAYLOADS[n % len(PAYLOADS)]
    k = f.kind
    if f.allowed or k in (Kind.IP, Kind.IP_LIST, Kind.TIMESTAMP, Kind.EPOCH_S, Kind.LONG, Kind.INTEGER,
                          Kind.DOUBLE, Kind.BOOL, Kind.LONG_LIST):
        return sample
    if k in (Kind.KEYWORD, Kind.TEXT):
        return p
    if k is Kind.KEYWORD_LIST:
        return [p, PAYLOADS[(n + 1) % len(PAYLOADS)]]
    if k is Kind.MAP:
        return {p: PAYLOADS[(n + 2) % len(PAYLOADS)], "app": p}
    if k is Kind.JSON:
        return {p: [p, {"nested": p}]}
    if k is Kind.STRUCT:
        base = sample if isinstance(sample, dict) else {}
        return {c.name: hostile_value(c, base.get(c.name), n + i) for i, c in enumerate(f.children)}
    if k is Kind.STRUCT_LIST:
        items = sample if isinstance(sample, list) and sample else [{}]
        return [{c.name: hostile_value(c, (it or {}).get(c.name), n + i) for i, c in enumerate(f.children)}
                for it in items]
    return sample


def hostile_records(lt: LogType, now: datetime, count: int = 12) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        sample = SAMPLES[lt.name][i % len(SAMPLES[lt.name])]
        doc = orjson.loads(sample) if sample.startswith("{") else {"ip_version": "IPv4"}  # BGP samples are BIRD lines
        at = now - timedelta(minutes=5 + i * 7)
        for j, f in enumerate(lt.fields):
            if f.name in lt.derived:
                continue
            if f.kind is Kind.EPOCH_S:
                doc[f.name] = int(at.timestamp())
            elif f.kind is Kind.TIMESTAMP:
                doc[f.name] = at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            else:
                doc[f.name] = hostile_value(f, doc.get(f.name), i + j)
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    base = tmp_path_factory.mktemp("xss")
    app = create_app(Settings(data_dir=base / "data", admin_token=True))
    token = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        now = datetime.now(UTC)
        stored = 0
        for lt in REGISTRY.values():
            records = hostile_records(lt, now)
            r = httpx.post(server.url + "/api/v1" + lt.bulk_path, timeout=30,
                           content=b"\n".join(orjson.dumps(d) for d in records),
                           headers={"content-type": "application/x-ndjson", "authorization": f"Bearer {token}"})
            assert r.status_code == 200, (lt.name, r.text[:2000])
            stored += r.json()["succeeded"]
        # the detector's pages: resources whose free text is markup
        for i, (resource, doc) in enumerate([
            ("globalalerts", {"kind": "GlobalAlert", "metadata": {"name": "hostile"},
                              "spec": {"description": PAYLOADS[0], "summary": PAYLOADS[1], "severity": 50,
                                       "dataSet": "flows", "query": f'source_namespace = "{PAYLOADS[3]}"'}}),
            ("globalthreatfeeds", {"kind": "GlobalThreatFeed", "metadata": {"name": "hostile"},
                                   "spec": {"content": "IPSet", "description": PAYLOADS[2],
                                            "pull": {"http": {"url": "https://x.example/" + PAYLOADS[4]}}}})]):
            r = httpx.put(f"{server.url}/apis/projectcalico.org/v3/{resource}/hostile", timeout=30,
                          json={"apiVersion": "projectcalico.org/v3", **doc},
                          headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 201, (i, r.text[:2000])
        yield server.url, token, stored


@pytest.fixture
def admin_page(browser: Any, hostile_site: tuple[str, str, int]) -> Iterator[tuple[Any, dict[str, Any]]]:
    url, token, _ = hostile_site
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    seen: dict[str, Any] = {"dialogs": [], "errors": [], "csp": []}
    try:
        page = context.new_page()
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on("console", lambda m: seen["csp"].append(m.text) if "Content Security Policy" in m.text else None)
        sign_in_page(page, url, token)
        page.add_init_script("localStorage.setItem('margay.range', JSON.stringify({from: 'now-3h', to: 'now'}));"
                             "window.__violations = [];"
                             "document.addEventListener('securitypolicyviolation',"
                             " (e) => window.__violations.push(e.violatedDirective + ' ' + e.sample));")
        yield page, seen
    finally:
        context.close()


def assert_clean(page: Any, seen: dict[str, Any], where: str) -> None:
    assert page.evaluate("window.__xss") is None, f"{where}: a payload ran"
    made = page.evaluate(f"[...document.querySelectorAll({json.dumps(NOT_MARKUP)})].map((e) => e.outerHTML)")
    assert made == [], f"{where}: elements made from data: {made[:3]}"
    assert page.evaluate("window.__violations") == [], f"{where}: markup tried to run"
    assert not seen["dialogs"] and not seen["csp"], (where, seen)


def hover_everything(page: Any) -> int:
    """Move the mouse over a grid of points on every chart and the graph; returns how many tooltips showed."""
    shown = 0
    for box in [c.bounding_box() for c in page.locator(".chart, #cy, #histogram").all()]:
        if not box or box["width"] < 20:
            continue
        for fx in (0.2, 0.4, 0.5, 0.6, 0.8):
            for fy in (0.15, 0.35, 0.5, 0.65, 0.85):
                page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                page.wait_for_timeout(15)
                shown += page.locator("div[style*='z-index: 9999999']:visible").count()
    return shown


def test_hostile_records_are_stored(hostile_site: tuple[str, str, int]) -> None:
    url, token, stored = hostile_site
    assert stored == 12 * len(REGISTRY)
    r = httpx.post(url + "/api/v1/flows/logs", json={"max_page_size": 5}, timeout=30,
                   headers={"authorization": f"Bearer {token}"})
    assert any("<img src=x" in json.dumps(it) for it in r.json()["items"])  # the data really is hostile


def test_csp_and_security_headers_on_every_answer(hostile_site: tuple[str, str, int]) -> None:
    url, token, _ = hostile_site
    for path, headers in [("/ui/", {}), ("/ui/static/app.js", {}), ("/api/v1/whoami", {}),
                          ("/api/v1/whoami", {"authorization": f"Bearer {token}"}), ("/es/", {}), ("/nope", {})]:
        r = httpx.get(url + path, headers=headers, timeout=30)
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in \
            csp.split("script-src")[1].split(";")[0], (path, csp)
        assert r.headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("frag", PAGES)
def test_no_script_runs_on_any_page(admin_page: tuple[Any, dict[str, Any]], hostile_site: tuple[str, str, int],
                                    frag: str) -> None:
    page, seen = admin_page
    response = page.goto(hostile_site[0] + "/ui/" + frag)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    wait = WAIT.get(frag, "explore")
    page.wait_for_function(f"() => window.__margayRendered && window.__margayRendered[{json.dumps(wait)}]",
                           timeout=30_000)
    page.wait_for_timeout(300)
    assert page.locator(".error").count() == 0, page.locator(".error").all_inner_texts()
    body = page.inner_text("main")
    if frag.startswith("#/explore"):
        assert "<img src=x" in body or "<script" in body or "<svg" in body, "the hostile data is not on the page"
    assert_clean(page, seen, frag + " loaded")
    hover_everything(page)
    assert_clean(page, seen, frag + " hovered")
    if frag.startswith("#/explore") or frag == "#/events":
        rows = page.locator("#results tbody tr, #events tbody tr[data-id]")  # events: not the group rows
        for i in range(min(rows.count(), 4)):
            rows.nth(i).locator("td").nth(2 if frag == "#/events" else 1).click()  # events lead with their actions
            page.wait_for_selector("#drawer:not([hidden])")
            assert_clean(page, seen, f"{frag} drawer {i}")
    if frag.startswith("#/explore"):
        suggested = []
        for key in ("source_namespace", "qname", "host", "verb", "type", "method", "description"):
            page.fill("#query", "")
            page.click("#query")
            page.keyboard.type(f"{key} = ")
            page.wait_for_timeout(700)  # the value hints arrive 150 ms after the last key stroke
            for item in page.locator(".suggest:not([hidden]) div").all()[:3]:
                item.hover()
                suggested.append(item.inner_text())
            assert_clean(page, seen, f"{frag} autocomplete {key}")
        assert any("<" in t for t in suggested), f"{frag}: no hostile value was offered by autocomplete"
    if frag == "#/graph":
        nodes = page.evaluate("window.__margayGraph.cy.nodes().map((n) => n.renderedPosition())")
        box = page.locator("#cy").bounding_box()
        for pos in nodes[:8]:
            page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
            page.wait_for_timeout(100)
            assert_clean(page, seen, "graph node click")
    if frag == "#/overview":
        # A bar click goes to the explorer with the hostile value in the query: still text.
        for chart in page.locator(".chart").all()[3:6]:
            box = chart.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + 14)
            page.wait_for_timeout(300)
            assert_clean(page, seen, "overview click")
    assert not seen["errors"], seen["errors"]
