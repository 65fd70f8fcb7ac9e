"""Operator endpoints: /-/metrics names every cluster and its counts, so it needs a grant of its own."""

from __future__ import annotations

import pytest

from .conftest import Rig


@pytest.mark.parametrize("who,status", [("admin", 200), ("dave", 200), ("alice", 403), ("carol", 403),
                                        ("frank", 403), ("mallory", 403), ("writer-east", 403)])
def test_metrics_need_the_operator_grant(rig: Rig, who: str, status: int) -> None:
    r = rig.get(who, "/-/metrics")
    assert r.status_code == status, r.text
    if status == 200:
        assert "margay_records_accepted_total" in r.text and 'cluster="east"' in r.text
    else:
        assert "margay_records_accepted_total" not in r.text and "west" not in r.text  # no metric, no cluster
        assert r.json()["error"]["details"]["resource"] == "operator"


def test_health_stays_open(rig: Rig) -> None:
    assert rig.http.get("/-/health").status_code == 200
