"""The fleet scenario's dealing: the same records over N clusters, none lost or doubled, memory bounded."""

from __future__ import annotations

from collections import Counter

from margay.bench.data import BATCH, Batch
from margay.bench.fleet import by_type, fleet_batches


def test_the_same_records_are_dealt_to_every_cluster_in_bounded_rounds() -> None:
    src = [Batch("flows", "c", "20261124", b"".join(b"f%d\n" % i for i in range(30))),
           Batch("flows", "c", "20261125", b"".join(b"g%d\n" % i for i in range(25_000))),
           Batch("dns", "c", "20261125", b"d1\nd2\n")]
    out = list(fleet_batches(iter(src), 3, held_max=12_000))
    lines = [line for b in out for line in b.body.split()]
    assert Counter(lines) == Counter(line for b in src for line in b.body.split())  # each record once
    assert {b.cluster for b in out} == {"fleet-0001", "fleet-0002", "fleet-0003"}
    assert all(b.records <= BATCH and b.body.endswith(b"\n") for b in out)
    # Each (type, day) is dealt in turn from its first line; a day past held_max lines goes in rounds.
    firsts = [(b.log_type, b.day, b.cluster, b.body.split()[0]) for b in out]
    assert firsts[:3] == [("flows", "20261124", f"fleet-000{i + 1}", b"f%d" % i) for i in range(3)]
    assert sum(1 for b in out if b.day == "20261125" and b.log_type == "flows") == 9  # 12k + 12k + 1k over 3
    assert [(b.cluster, b.body) for b in out if b.log_type == "dns"] == [("fleet-0001", b"d1\n"), ("fleet-0002", b"d2\n")]


def test_dns_and_audit_of_a_day_go_out_once_per_cluster() -> None:
    """The simulator yields a day's DNS and audit cluster by cluster, type after type; dealt as they come, each
    cluster would get a batch per simulated cluster. Grouped by type within the day: one per cluster and type."""
    src = [Batch(t, c, day, b"".join(b"%s-%s-%s-%d\n" % (t.encode(), c.encode(), day.encode(), i) for i in range(6)))
           for day in ("20261124", "20261125") for c in ("a", "b") for t in ("dns", "audit_kube")]
    out = list(fleet_batches(by_type(iter(src)), 3))
    assert Counter((b.log_type, b.day, b.cluster) for b in out) == Counter(
        {(t, d, f"fleet-000{i}"): 1 for t in ("dns", "audit_kube") for d in ("20261124", "20261125") for i in (1, 2, 3)})
    assert sorted(line for b in out for line in b.body.split()) == sorted(line for b in src for line in b.body.split())
