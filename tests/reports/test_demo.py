"""`make demo`'s compliance week, on both engines: seven daily snapshots, the story's audited changes, and 21
report runs whose summaries move exactly as the story says; a second run adds nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from margay.app import Margay
from margay.clock import FakeClock
from margay.config import Settings
from margay.logtypes import REGISTRY
from margay.query.model import Query
from margay.reports import demo, reporter, snapshots
from margay.simulate.topology import Topology

TODAY = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_week_of_compliance_history(engine: dict[str, Any], tmp_path: Path) -> None:
    m = Margay(Settings(data_dir=tmp_path / "data", **engine), clock=FakeClock(TODAY))
    try:
        topo = Topology.build(1, clusters=["cluster", "app-cluster-1"])
        stopped = threading.Event()
        stopped.set()  # Ctrl-C before the week was written: the next run completes it, nothing twice
        assert demo.write_history(m.backend, topo, "cluster", TODAY, stop=stopped) == 0
        assert demo.write_history(m.backend, topo, "cluster", TODAY, dumps=tmp_path / "dumps") == 21
        audit = m.backend.count(Query(REGISTRY["audit_ee"], ["cluster"], start=TODAY - timedelta(days=8), end=TODAY))
        assert audit == 2  # the GlobalNetworkPolicy created and the Calico NetworkPolicy deleted, once each
        day0 = TODAY - timedelta(days=7)
        assert [snapshots.latest(m.backend, "cluster", day0 + timedelta(days=d))[0] for d in range(7)] == [
            day0 + timedelta(days=d) for d in range(7)]
        inv = [reporter.stored(m.backend, "cluster", "daily-inventory", day0 + timedelta(days=d + 1))["endpointsSummary"]
               for d in range(7)]
        ct = topo.cluster("cluster")
        pods = sum(len(w.members) for w in ct.workloads)
        payments = sum(len(w.members) for w in ct.workloads if w.namespace == "payments")
        assert [s["numTotal"] for s in inv] == [pods] * 5 + [pods + 1] * 2  # the debug pod from day 5
        ingress = [s["numIngressProtected"] for s in inv]
        assert ingress[1] == ingress[0] - 1  # day 1: a shop pod loses its label
        assert ingress[4] == ingress[3] - payments  # day 4: payments' policy deleted
        egress = [s["numEgressProtected"] for s in inv]
        assert egress[2] < pods and egress[3:5] == [pods] * 2 and egress[5:] == [pods + 1] * 2  # day 2: the GNP
        audit = [reporter.stored(m.backend, "cluster", "daily-policy-audit", day0 + timedelta(days=d + 1))["auditSummary"]
                 for d in range(7)]
        assert [(a["numCreate"], a["numModify"], a["numDelete"]) for a in audit] == [
            (0, 0, 0), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0), (0, 0, 0)]
        assert reporter.stored(m.backend, "cluster", "daily-network-access", TODAY)["reportTypeName"] == "network-access"
        dumped = (tmp_path / "dumps" / "cluster.yaml").read_text()
        assert "debug-shell" in dumped and "default.allow-payments" not in dumped
        assert demo.write_history(m.backend, topo, "cluster", TODAY) == 0  # a re-run keeps the stored week
    finally:
        m.close()
