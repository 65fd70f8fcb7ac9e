"""The flow graph reads roll-ups when it can, and draws exactly the graph the raw flow logs give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.simulate import Topology, flows, ndjson_batches

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    topo = Topology.build(3, clusters=["east"], namespaces_per_cluster=6, deployments_per_namespace=3)
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("graph") / "data"))
    from margay.testing.server import ServerThread

    with ServerThread(app) as s, httpx.Client(base_url=s.url, timeout=60, headers={"x-cluster-id": "east"}) as http:
        for body in ndjson_batches(flows(topo, "east", START, START + timedelta(hours=3), level=0, denied_level=0), 5000):
            http.post("/api/v1/flows/logs/bulk", content=body,
                      headers={"content-type": "application/x-ndjson"}).raise_for_status()
        yield app, http


QUESTIONS = [
    {"time_range": {"from": START.isoformat(), "to": (START + timedelta(hours=3)).isoformat()}},
    {"time_range": {"from": (START + timedelta(minutes=17)).isoformat(),  # partial hours at both edges
                    "to": (START + timedelta(hours=2, minutes=41)).isoformat()}, "max_nodes": 8},
    {"time_range": {"from": START.isoformat(), "to": (START + timedelta(hours=3)).isoformat()},
     "selector": 'action = "deny" OR dest_type = "net"'},
]


def test_graph_from_rollups_equals_graph_from_raw_logs(server) -> None:  # type: ignore[no-untyped-def]
    app, http = server
    nodes = http.post("/api/v1/flows/graph", json=QUESTIONS[0]).json()["nodes"]
    expand = next(n["namespace"] for n in nodes if n["type"] == "namespace")
    questions = [*QUESTIONS, {**QUESTIONS[1], "expand": [expand]}]
    before = [http.post("/api/v1/flows/graph", json=q) for q in questions]
    assert all(r.headers["x-margay-aggregation-path"] == "raw" for r in before)
    assert app.state.margay.backend.build_rollups(0) >= 1
    after = [http.post("/api/v1/flows/graph", json=q) for q in questions]
    assert all(r.headers["x-margay-aggregation-path"] == "rollup" for r in after)
    for b, a in zip(before, after, strict=True):
        assert a.json() == b.json()
    graph = after[0].json()
    assert {n["type"] for n in graph["nodes"]} >= {"namespace"} and graph["edges"]
    assert any(e["denied_flows"] for e in graph["edges"]) and any(n["type"] in ("domain", "net") for n in graph["nodes"])
    # A selector on a field the roll-up does not keep reads the raw logs.
    host = http.post("/api/v1/flows/graph", json={**QUESTIONS[0], "selector": 'host = "node-1"'})
    assert host.status_code == 200 and host.headers["x-margay-aggregation-path"] == "raw"
