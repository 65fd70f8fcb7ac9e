"""The peers scenario's systems answer the same questions alike: margay, ClickHouse (chDB), a real
VictoriaLogs and a real OpenSearch on the same small set of flows. A figure compared across systems is only
worth something if each system was asked the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.bench.data import flow_batches, topology
from margay.bench.peers import ClickHouseTarget, MargayPeer, VictoriaLogsTarget, high_cardinality
from margay.bench.peers_check import disagreements, reduce
from margay.bench.peers_opensearch import OpenSearchPeer

pytestmark = pytest.mark.rig


def test_every_system_answers_the_same_questions_alike(tmp_path: Path) -> None:
    """OpenSearch runs on a node of its own: the peer reads its JVM's CPU and the whole node's flow indices."""
    batches = list(flow_batches(topology(), 6_000))
    records = sum(b.records for b in batches)
    answers: dict[str, dict[str, Any]] = {}
    for system in (MargayPeer(tmp_path / "m"), ClickHouseTarget(tmp_path / "ch"),
                   ClickHouseTarget(tmp_path / "chp", projection=True), VictoriaLogsTarget(tmp_path / "vl"),
                   OpenSearchPeer(tmp_path / "os")):
        system.start()
        try:
            n, _, cpu = system.ingest(batches)
            assert n == records and cpu > 0
            if system.name != "margay":  # margay's settle waits out its cold-merge minute; its count is exact
                system.settle()
            assert system.count() == records
            assert system.bytes_per_flow() > 0
            label = system.name + str(getattr(system, "projection", ""))
            answers[label] = {name: reduce(system.name, name, q()) for name, q in system.questions().items()}
            assert system.config()["engine"]
        finally:
            system.stop()
    assert disagreements(answers) == []
    assert len(answers["margay"]["topdest"]) == 10 and answers["margay"]["denied"] > 0
    assert answers["opensearch"]["search"] == answers["margay"]["search"] and sum(answers["margay"]["search"]) > 0
    graph = answers["opensearch"]["flowgraph"]
    assert graph == answers["clickhouseFalse"]["flowgraph"] and {a for _, _, a in graph} == {"allow", "deny"}


def test_the_high_cardinality_variant_spreads_pods_ips_and_ports() -> None:
    plain = [orjson.loads(x) for b in flow_batches(topology(), 5_000) for x in b.body.splitlines()]
    spread = [orjson.loads(x) for b in high_cardinality(flow_batches(topology(), 5_000))
              for x in b.body.splitlines()]
    assert len(spread) == len(plain)
    for field, at_least in (("source_name", 5), ("source_ip", 5), ("source_port", 2)):
        before, after = len({r[field] for r in plain}), len({r[field] for r in spread})
        assert after >= at_least * before or after > 0.5 * len(spread), (field, before, after)
    assert sum(r["bytes_in"] for r in spread) == sum(r["bytes_in"] for r in plain)
