"""The flow graph reads roll-ups when it can, and draws exactly the graph the raw flow logs give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.query.graph import WITHHELD
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


def _scoped_and_by_cluster(backend, expand: str):  # type: ignore[no-untyped-def]
    """The graphs of a reader scoped to two namespaces, and by cluster, straight from the engine."""
    from margay.logtypes import get
    from margay.query.graph import GraphSpec
    from margay.query.model import Query
    from margay.query.restriction import Restriction

    nss = [expand]
    window = {"start": START + timedelta(minutes=17), "end": START + timedelta(hours=2, minutes=41)}
    out = []
    for restriction in (Restriction({"east": frozenset(nss)}), Restriction()):
        for spec in (GraphSpec((expand,), 60), GraphSpec((expand,), 60, by_cluster=True), GraphSpec((), 5)):
            out.append(backend.flow_graph(Query(get("flows"), ["east"], restriction=restriction, **window), spec))
    return out


def test_graph_from_rollups_equals_graph_from_raw_logs(server) -> None:  # type: ignore[no-untyped-def]
    app, http = server
    nodes = http.post("/api/v1/flows/graph", json=QUESTIONS[0]).json()["nodes"]
    expand = next(n["namespace"] for n in nodes if n["type"] == "namespace")
    questions = [*QUESTIONS, {**QUESTIONS[1], "expand": [expand]}, {**QUESTIONS[0], "by_cluster": True}]
    before = [http.post("/api/v1/flows/graph", json=q) for q in questions]
    assert all(r.headers["x-margay-aggregation-path"] == "raw" for r in before)
    backend = app.state.margay.backend
    engine_before = _scoped_and_by_cluster(backend, expand)
    assert all(g.path == "raw" for g in engine_before)
    assert backend.build_rollups(0) >= 1
    after = [http.post("/api/v1/flows/graph", json=q) for q in questions]
    assert all(r.headers["x-margay-aggregation-path"] == "rollup" for r in after)
    for b, a in zip(before, after, strict=True):
        assert a.json() == b.json()
    # A namespace-scoped reader's graph (withheld nodes), by cluster, and capped: the same from roll-ups.
    engine_after = _scoped_and_by_cluster(backend, expand)
    assert all(g.path == "rollup" for g in engine_after)
    assert [(g.edges, g.hidden) for g in engine_after] == [(g.edges, g.hidden) for g in engine_before]
    assert any(WITHHELD in (e.source, e.target) for e in engine_after[0].edges)
    graph = after[0].json()
    assert {n["type"] for n in graph["nodes"]} >= {"namespace"} and graph["edges"]
    assert any(e["denied_flows"] for e in graph["edges"]) and any(n["type"] in ("domain", "net") for n in graph["nodes"])
    # A selector on a field the roll-up does not keep reads the raw logs.
    host = http.post("/api/v1/flows/graph", json={**QUESTIONS[0], "selector": 'host = "node-1"'})
    assert host.status_code == 200 and host.headers["x-margay-aggregation-path"] == "raw"
