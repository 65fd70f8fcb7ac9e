"""A real margay (tokens + local RBAC) loaded with two hours of a simulated two-cluster workload, for the UI tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.simulate import Topology, post_to_server
from margay.testing.server import ServerThread

CLUSTERS = ("cluster", "app-cluster-1")
SEED = 7
HOURS = 2
RESTRICTED = "tok-olga-only-app-cluster-1-0123456789"  # olga may read every log type of app-cluster-1 only
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "app-cluster-1-logs"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["app-cluster-1"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "olga"},
     "subjects": [{"kind": "User", "name": "olga"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "app-cluster-1-logs"}},
]


@dataclass
class Site:
    url: str
    token: str
    topo: Topology
    start: datetime
    end: datetime


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory, {})


@pytest.fixture
def wide(browser: Any) -> Iterator[Any]:
    """A page of the rig's Chromium in a 1440 x 900 window of its own."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def make_site(tmp_path_factory: pytest.TempPathFactory, engine: dict[str, Any]) -> Iterator[Site]:
    """A server over the simulated topology's last HOURS, on the engine the settings name."""
    base = tmp_path_factory.mktemp("web")
    (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": RESTRICTED, "user": "olga"}]))
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    settings = Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml", admin_token=True,
                        **engine)
    app = create_app(settings)
    token = app.state.margay.access.admin_token
    topo = Topology.build(SEED, clusters=CLUSTERS)
    now = datetime.now(UTC)
    end = now - timedelta(seconds=now.timestamp() % 300)
    start = end - timedelta(hours=HOURS)
    with ServerThread(app) as server:
        post_to_server(server.url, topo, start, end, token=token)
        yield Site(server.url, token, topo, start, end)
