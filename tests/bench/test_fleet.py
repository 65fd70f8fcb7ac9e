"""The fleet scenario's dealing: the same records over N clusters, none lost or doubled, memory bounded."""

from __future__ import annotations

from collections import Counter

from margay.bench.data import BATCH, Batch
from margay.bench.fleet import fleet_batches


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
