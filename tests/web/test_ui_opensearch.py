"""The UI's store-backed pages in the rig's Chromium on the OpenSearch engine (issue 16's "on `--backend
opensearch` the flow visualizer draws and events can be dismissed"): the same checks as tests/web/test_ui.py,
which runs the whole UI on the embedded store, against a server whose store is the rig's real OpenSearch node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import _engine

from .conftest import Site, make_site
from .test_ui import dismissed_event_disappears, edge_click_lists_its_flows, graph_draws_the_topology

pytestmark = pytest.mark.rig


@pytest.fixture(scope="module")
def os_site(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Site]:
    for settings in _engine(request, "opensearch"):  # the node under a fresh prefix, dropped afterwards
        assert settings["backend"] == "opensearch"
        for site in make_site(tmp_path_factory, settings):
            assert httpx.get(site.url + "/-/health").json()["backend"] == "opensearch"
            yield site


def test_flow_visualizer_draws_the_topology_on_opensearch(wide: Any, os_site: Site) -> None:
    graph_draws_the_topology(wide, os_site)


def test_flow_visualizer_edge_click_lists_its_flows_on_opensearch(wide: Any, os_site: Site) -> None:
    edge_click_lists_its_flows(wide, os_site)


def test_dismissed_event_disappears_on_opensearch(wide: Any, os_site: Site) -> None:
    dismissed_event_disappears(wide, os_site)
