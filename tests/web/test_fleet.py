"""The UI over a fleet of 300 clusters in the rig's Chromium: the cluster picker searches on the server, selects
all or none, applies once when it closes, keeps the selection in the URL and asks for all_clusters instead of
naming every cluster; the overview's per-cluster panel ranks clusters and narrows the picker; a scoped reader
sees only their clusters in both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread
from margay.web.session import sign_in_page as sign_in

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.rig

N = 300
FLEET = [f"fleet-{i:03d}" for i in range(N)]
SAM = "tok-sam-three-clusters-0123456789"
SAM_READS = ["fleet-010", "fleet-011", "fleet-012"]
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "three"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": SAM_READS, "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "sam"},
     "subjects": [{"kind": "User", "name": "sam"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "three"}},
]


def flows_of(i: int) -> int:
    return i + 1  # allowed flows of fleet-<i>: fleet-299 carries the most


def denied_of(i: int) -> int:
    return (i * 37) % 101  # denied flows: a different order


def events_of(i: int) -> int:
    return i // 50 + 1 if i % 50 == 0 else 0


def ranked(clusters: list[int], key: Any) -> list[str]:
    """The panel's order: by the column, then by flows, then by name."""
    return [FLEET[i] for i in sorted(clusters, key=lambda i: (-key(i), -(flows_of(i) + denied_of(i)), i))[:10]]


@dataclass
class Fleet:
    url: str
    token: str


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """300 clusters of two flow records each (one allowed, one denied) and events on every 50th cluster."""
    base = tmp_path_factory.mktemp("fleet")
    (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": SAM, "user": "sam"}]))
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True))
    token = app.state.margay.access.admin_token
    flow, event = orjson.loads(SAMPLES["flows"][0]), orjson.loads(SAMPLES["events"][0])
    t = int((datetime.now(UTC) - timedelta(minutes=40)).timestamp())
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60,
                                                   headers={"authorization": f"Bearer {token}"}) as http:
        for i, c in enumerate(FLEET):
            lines = [dict(flow, start_time=t, end_time=t + 300, num_flows=flows_of(i), action="allow"),
                     dict(flow, start_time=t, end_time=t + 300, num_flows=denied_of(i), action="deny")]
            r = http.post("/api/v1/flows/logs/bulk", content=b"\n".join(map(orjson.dumps, lines)),
                          headers={"content-type": "application/x-ndjson", "x-cluster-id": c})
            assert r.status_code == 200 and r.json()["failed"] == 0, r.text
            if events_of(i):
                evs = [dict(event, id=f"ev-{c}-{k}", time=t + k) for k in range(events_of(i))]
                r = http.post("/api/v1/events/bulk", content=b"\n".join(map(orjson.dumps, evs)),
                              headers={"content-type": "application/x-ndjson", "x-cluster-id": c})
                assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        yield Fleet(server.url, token)


@pytest.fixture
def page(wide: Any) -> Any:
    """The web tests' 1440 x 900 page (conftest.wide), under this module's name for it."""
    return wide


ROUTES = {"flows": "flows/logs", "dns": "dns/logs", "audit": "audit/logs", "bgp": "bgp/logs", "l7": "l7/logs",
          "events": "events"}


class Calls:
    """The data requests a page sends (POSTs under /api/v1/), and the picker's searches."""

    def __init__(self, page: Any) -> None:
        self.data: list[dict[str, Any]] = []
        self.searches: list[str] = []
        page.on("request", self._seen)

    def _seen(self, req: Any) -> None:
        path = req.url.split("/", 3)[3]
        if path.startswith("api/v1/clusters"):
            self.searches.append(req.url)
        elif req.method == "POST" and path == "api/v1/aggregations":
            # The overview's batch: each item as the request its type's aggregation route would have had
            # (its clusters in x-cluster-id when it names one, else _MULTI_ with the list or all_clusters).
            for item in json.loads(req.post_data)["requests"]:
                body = {k: v for k, v in item.items() if k != "log_type"}
                named = body.get("clusters") or []
                self.data.append({"path": f"api/v1/{ROUTES[item['log_type']]}/aggregation", "batched": True,
                                  "cluster": named[0] if len(named) == 1 else "_MULTI_", "body": body})
        elif req.method == "POST" and path.startswith("api/v1/"):
            self.data.append({"path": path, "cluster": req.headers.get("x-cluster-id"),
                              "body": json.loads(req.post_data or "{}")})

    def clear(self) -> None:
        self.data.clear()
        self.searches.clear()


def open_overview(page: Any, fleet: Fleet, frag: str = "#/overview", token: str | None = None) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, fleet.url, token or fleet.token)
    page.add_init_script("localStorage.setItem('margay.range', JSON.stringify({from: 'now-3h', to: 'now'}));")
    page.goto(fleet.url + "/ui/" + frag)
    rendered(page)
    return errors


def rendered(page: Any) -> None:
    page.wait_for_function("() => window.__margayRendered && window.__margayRendered.overview", timeout=60_000)


def rerendered(page: Any, action: Any) -> None:
    """Run `action` and wait for the overview it causes to be drawn."""
    page.evaluate("window.__margayRendered = {}")
    action()
    rendered(page)


def listed(page: Any) -> list[str]:
    return list(page.locator("#cluster-list input").evaluate_all("els => els.map(e => e.value)"))


def test_the_picker_searches_on_the_server_a_page_at_a_time(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    errors = open_overview(page, fleet)
    assert page.inner_text("#cluster-button") == f"All {N} clusters"
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    assert listed(page) == FLEET[:50]  # one page, not 300 boxes
    assert page.inner_text("#cluster-count") == f"{N} of {N} clusters"
    assert page.locator("#cluster-list input:checked").count() == 50
    assert "null" not in page.inner_text("#cluster-menu")
    page.click("#cluster-next")
    page.wait_for_function("() => document.querySelectorAll('#cluster-list input').length === 100")
    assert "200 more" in page.inner_text("#cluster-more")
    menu = page.locator("#cluster-menu").bounding_box()
    assert menu["height"] < 600  # the list scrolls; the menu is not thousands of pixels tall
    page.fill("#cluster-search", "fleet-01")
    page.wait_for_function("() => document.querySelectorAll('#cluster-list input').length === 10")
    assert listed(page) == [f"fleet-01{d}" for d in range(10)]
    assert "10 matches" in page.inner_text("#cluster-more")
    assert any("q=fleet-01" in u for u in calls.searches)
    page.fill("#cluster-search", "no-such")
    page.wait_for_selector("#cluster-list >> text=No cluster matches")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.fill("#cluster-search", "fleet-2")
    page.wait_for_function("() => document.querySelectorAll('#cluster-list input').length === 50")
    page.screenshot(path=str(SCREENSHOTS / "cluster-picker.png"))
    assert not errors, errors


def test_all_selected_asks_for_all_clusters_by_name_never(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    open_overview(page, fleet)
    assert len(calls.data) >= 10
    for call in calls.data:  # every cluster: no list of 300 names in any request
        assert call["cluster"] == "_MULTI_" and call["body"].get("all_clusters") is True, call
        assert "clusters" not in call["body"], call["path"]
    assert "clusters=*" in page.url.replace("%2A", "*")


def test_ticks_apply_once_when_the_menu_closes_and_stay_in_the_url(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    errors = open_overview(page, fleet)
    one_load = len(calls.data)
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    calls.clear()
    page.click("#cluster-none")
    assert page.inner_text("#cluster-count").startswith(f"0 of {N} clusters")
    assert page.locator("#cluster-list input:checked").count() == 0
    for c in FLEET[:5]:
        page.check(f"#cluster-list input[value='{c}']")
    assert page.inner_text("#cluster-count") == f"5 of {N} clusters"
    assert calls.data == []  # ticking loads nothing
    rerendered(page, lambda: page.keyboard.press("Escape"))
    page.wait_for_timeout(300)
    assert len(calls.data) == one_load  # one reload of the overview, not one per tick
    assert {tuple(c["body"]["clusters"]) for c in calls.data} == {tuple(FLEET[:5])}
    assert page.inner_text("#cluster-button") == f"5 of {N} clusters"
    assert "clusters=" + "%2C".join(FLEET[:5]) in page.url
    # The URL carries the selection: a reload, and another browser with the same link, see the same view.
    rerendered(page, page.reload)
    assert page.inner_text("#cluster-button") == f"5 of {N} clusters"
    # Unticking one and ticking it again is no change: closing reloads nothing.
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    calls.clear()
    page.uncheck(f"#cluster-list input[value='{FLEET[0]}']")
    page.check(f"#cluster-list input[value='{FLEET[0]}']")
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator("main h2").bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + 5)  # a click outside closes the menu
    page.wait_for_timeout(500)
    assert calls.data == [] and not page.locator("#cluster-picker.open").count()
    # All, from the menu: back to all_clusters; back/forward step through the selections.
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    page.click("#cluster-all")
    assert page.inner_text("#cluster-count") == f"{N} of {N} clusters"
    rerendered(page, lambda: page.click("#cluster-button"))
    assert page.inner_text("#cluster-button") == f"All {N} clusters"
    rerendered(page, page.go_back)
    assert page.inner_text("#cluster-button") == f"5 of {N} clusters"
    assert not errors, errors


def test_the_per_cluster_panel_ranks_clusters_and_narrows_the_picker(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    errors = open_overview(page, fleet)
    panel = page.locator("section[data-panel^='Clusters: top']")
    rows = lambda: panel.locator("tbody tr").evaluate_all("els => els.map(e => e.dataset.cluster)")  # noqa: E731
    assert rows() == ranked(list(range(N)), lambda i: flows_of(i) + denied_of(i))
    top = int(rows()[0].split("-")[1])
    first = panel.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first == [FLEET[top], str(flows_of(top) + denied_of(top)), str(denied_of(top)), str(events_of(top))]
    panel.locator("th[data-sort=denied]").click()
    assert rows() == ranked(list(range(N)), denied_of)
    assert panel.locator("tbody tr").first.locator("td").nth(2).inner_text() == "100"
    panel.locator("th[data-sort=events]").click()
    assert rows()[:6] == ["fleet-250", "fleet-200", "fleet-150", "fleet-100", "fleet-050", "fleet-000"]
    assert panel.locator("tr[data-cluster='fleet-250'] td").nth(3).inner_text() == "6"
    # One request per log type for the panel, not one per cluster.
    by_cluster = [c for c in calls.data if '"cluster"' in json.dumps(c["body"].get("aggregations"))]
    assert sorted(c["path"] for c in by_cluster) == ["api/v1/events/aggregation", "api/v1/flows/logs/aggregation"]
    calls.clear()
    rerendered(page, lambda: panel.locator("a", has_text="fleet-250").click())
    assert page.inner_text("#cluster-button") == "Cluster: fleet-250"
    assert "clusters=fleet-250" in page.url
    assert calls.data and {c["cluster"] for c in calls.data} == {"fleet-250"}
    assert page.locator("section[data-panel^='Clusters: top']").count() == 0  # one cluster: nothing to rank
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    assert page.inner_text("#cluster-count") == f"1 of {N} clusters"
    assert page.locator("#cluster-list input:checked").evaluate_all("els => els.map(e => e.value)") == []  # not on page 1
    page.fill("#cluster-search", "fleet-25")
    page.wait_for_selector("#cluster-list input[value='fleet-250']")
    assert page.locator("#cluster-list input:checked").evaluate_all("els => els.map(e => e.value)") == ["fleet-250"]
    assert not errors, errors


def test_a_scoped_reader_sees_only_their_clusters(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    errors = open_overview(page, fleet, token=SAM)
    assert page.inner_text("#cluster-button") == "All 3 clusters"
    page.click("#cluster-button")
    page.wait_for_selector("#cluster-list input")
    assert listed(page) == SAM_READS
    assert "not readable" not in page.inner_text("#cluster-menu")  # not even how many others there are
    page.fill("#cluster-search", "fleet-2")
    page.wait_for_selector("#cluster-list >> text=No cluster matches")
    page.keyboard.press("Escape")
    panel = page.locator("section[data-panel^='Clusters: top']")
    expected = ranked([FLEET.index(c) for c in SAM_READS], lambda i: flows_of(i) + denied_of(i))
    assert panel.locator("tbody tr").evaluate_all("els => els.map(e => e.dataset.cluster)") == expected
    assert all(c["body"].get("all_clusters") is True for c in calls.data)  # all of them: the server narrows it
    assert not errors, errors


def test_the_flow_visualizer_lays_a_fleet_out_in_a_readable_grid(page: Any, fleet: Fleet) -> None:
    calls = Calls(page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, fleet.url, fleet.token)
    page.add_init_script("localStorage.setItem('margay.range', JSON.stringify({from: 'now-3h', to: 'now'}));")
    page.goto(fleet.url + "/ui/#/graph")
    page.wait_for_function("() => window.__margayRendered && window.__margayRendered.graph", timeout=60_000)
    graph = [c for c in calls.data if c["path"] == "api/v1/flows/graph"]
    assert len(graph) == 1 and graph[0]["body"]["all_clusters"] is True and graph[0]["body"]["by_cluster"] is True
    boxes = page.evaluate("window.__margayGraph.cy.nodes('.cluster').map((n) => n.renderedBoundingBox())")
    assert len(boxes) == 59  # 60 nodes at most: 59 clusters' namespaces, the rest folded
    assert min(b["w"] for b in boxes) > 30  # fitted, each box is still big enough to read
    for i, a in enumerate(boxes):  # no two boxes overlap
        for b in boxes[i + 1:]:
            assert a["x2"] <= b["x1"] or b["x2"] <= a["x1"] or a["y2"] <= b["y1"] or b["y2"] <= a["y1"]
    assert not errors, errors
