"""Each built-in template fires on its scenario, and only there, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from margay.app import _backend
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect.alerts import evaluate
from margay.detect.resources import ResourceError, parse_resource
from margay.detect.scenarios import SCENARIOS
from margay.detect.templates import alert_from_template, templates
from margay.logtypes import REGISTRY

from .test_matching import settle

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
EXPECTED = {  # template -> the events' descriptions
    "margay.port-scan": ["Possible port scan from 10.66.6.6 (25 denied connections)"],
    "margay.threat-set-traffic": ["shop/shop-app-* sent traffic to threat network set threatfeed.tor"],
    "margay.dns-failure-flood": ["dev/miner-* got 60 NXDOMAIN/SERVFAIL answers in 10 minutes"],
    "margay.lateral-movement": ["dev reached protected namespace payments (1 flows allowed)"],
    "margay.pod-exec": ["mallory@example.com opened a shell in pod payments/api-0"],
    "margay.secret-read": ["mallory@example.com read secret payments/db-password"],
    "margay.policy-change": ["alice@example.com patch globalnetworkpolicies security.allow-all"],
    "margay.denied-flow-spike": ["120 denied flows from namespace batch in 10 minutes"],
}


@pytest.fixture(scope="module")
def scenario_store(module_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Every scenario, each in its own cluster, so a template can be checked against its own and the others."""
    backend = _backend(Settings(data_dir=tmp_path_factory.mktemp("tpl"), **module_engine), FakeClock(NOW))
    for i, (name, scenario) in enumerate(SCENARIOS.items()):
        for lt, records in scenario(T).items():
            resp, _ = backend.ingest(REGISTRY[lt], f"s{i}", b"\n".join(orjson.dumps(r) for r in records), key=None,
                                     now=NOW, respond=lambda c: {"failed": c.failed_lines})
            assert resp == {"failed": 0}, (name, lt)
    settle(backend)
    yield backend
    backend.close()


def test_every_template_has_a_scenario():
    assert set(templates()) == set(SCENARIOS) == set(EXPECTED)


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_template_fires_on_its_scenario_only(scenario_store, template):
    alert = parse_resource(alert_from_template(template, "t"))
    found = evaluate(scenario_store, alert, NOW)
    own = f"s{list(SCENARIOS).index(template)}"
    assert sorted(found) == [own], f"{template} fired in {sorted(found)}"
    assert sorted(e["description"] for e in found[own]) == EXPECTED[template]
    assert all(e["type"] == "global_alert" and e["origin"] == "t" for e in found[own])


def test_template_overrides_are_checked():
    doc = alert_from_template("margay.port-scan", "scan", threshold=5)
    assert doc["kind"] == "GlobalAlert" and doc["spec"]["threshold"] == 5
    with pytest.raises(ResourceError, match="^spec.period"):
        alert_from_template("margay.port-scan", "scan", period="10s")
    with pytest.raises(ResourceError, match="no built-in template"):
        alert_from_template("nope", "x")
