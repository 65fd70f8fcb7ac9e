"""The fleet scenario's dealing: the same records over N clusters, by flow, none lost or doubled, memory bounded."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from margay.bench.data import BATCH, Batch, flow_batches, other_batches, topology
from margay.bench.fleet import by_type, fleet_batches, flow_key
from margay.logtypes import REGISTRY

FLOW_DIMS = [d for d in REGISTRY["flows"].rollup.dims if d != "cluster"]  # type: ignore[union-attr]


def flow(i: int, t: int) -> bytes:
    """A flow record of flow `i` (its roll-up key) in the 5-minute interval `t`."""
    rec = {d: f"{d}-{i % 7}" for d in FLOW_DIMS} | {"source_name_aggr": f"src-{i}", "dest_port": 8000 + i % 3,
                                                     "end_time": 1_764_000_000 + 300 * t, "bytes_in": i * t}
    return orjson.dumps(rec)


def test_the_same_records_are_dealt_to_every_cluster_in_bounded_rounds() -> None:
    src = [Batch("flows", "c", "20261124", b"".join(flow(i, 0) + b"\n" for i in range(30))),
           Batch("flows", "c", "20261125", b"".join(flow(i % 500, i // 500) + b"\n" for i in range(25_000))),
           Batch("audit_kube", "c", "20261125", b'{"auditID":"a1"}\n{"auditID":"a2"}\n')]
    out = list(fleet_batches(iter(src), 3, held_max=12_000))
    lines = [line for b in out for line in b.body.split(b"\n") if line]
    assert Counter(lines) == Counter(line for b in src for line in b.body.split(b"\n") if line)  # each record once
    assert {b.cluster for b in out} == {"fleet-0001", "fleet-0002", "fleet-0003"}
    assert all(b.records <= BATCH and b.body.endswith(b"\n") for b in out)
    # A day past held_max lines goes in rounds (12k, 12k, 1k), each round at most one batch per cluster and
    # BATCH records: every cluster's share of a round (~4k of 12k) is one batch.
    day = [b for b in out if b.day == "20261125" and b.log_type == "flows"]
    assert 7 <= len(day) <= 9 and sum(b.records for b in day) == 25_000
    assert [b.day for b in out] == sorted(b.day for b in out)  # each day goes out before the next


def test_a_flows_records_all_land_in_one_cluster() -> None:
    """A real fleet's flow belongs to one cluster: dealt line by line, a flow's 5-minute records spread over
    every cluster and the roll-up (grouped by cluster) would not shrink; dealt by flow key it does."""
    src = [Batch("flows", "c", f"202611{24 + d}", b"".join(flow(i, t) + b"\n" for t in range(12) for i in range(203)))
           for d in range(2)]
    out = list(fleet_batches(iter(src), 50, held_max=1_000))
    where: dict[bytes, set[str]] = defaultdict(set)
    for b in out:
        for line in b.body.split(b"\n"):
            if line:
                where[flow_key("flows")(line)].add(b.cluster)
    assert len(where) == 203 and all(len(c) == 1 for c in where.values())  # every flow in one cluster, every day
    assert len({b.cluster for b in out}) >= 40  # and the flows spread over the fleet
    assert sum(b.records for b in out) == 2 * 12 * 203


def test_real_simulated_flows_and_dns_keep_their_roll_up_key_in_one_cluster() -> None:
    """The simulator's records (the bench's own data): each roll-up key (cluster apart) in one cluster."""
    topo = topology(scale=2)
    source = fleet_batches(by_type(other_batches(topo, 2)), 100)
    batches = list(fleet_batches(flow_batches(topo, 5_000), 100)) + list(source)
    assert {b.log_type for b in batches} == {"flows", "dns", "audit_kube"}
    for t in ("flows", "dns"):
        key = flow_key(t)
        where: dict[bytes, set[str]] = defaultdict(set)
        for b in batches:
            if b.log_type == t:
                for line in b.body.split(b"\n"):
                    if line:
                        where[key(line)].add(b.cluster)
        assert len(where) > 20 and all(len(c) == 1 for c in where.values()), t


def test_dns_and_audit_of_a_day_go_out_once_per_cluster() -> None:
    """The simulator yields a day's DNS and audit cluster by cluster, type after type; dealt as they come, each
    cluster would get a batch per simulated cluster. Grouped by type within the day: one per cluster and type."""
    src = [Batch(t, c, day, b"".join(orjson.dumps({"qname": f"{c}-{day}-{i}", "auditID": f"{t}-{c}-{day}-{i}"}) + b"\n"
                                     for i in range(30)))
           for day in ("20261124", "20261125") for c in ("a", "b") for t in ("dns", "audit_kube")]
    out = list(fleet_batches(by_type(iter(src)), 3))
    per = Counter((b.log_type, b.day, b.cluster) for b in out)
    assert set(per.values()) == {1} and len(per) == 12  # 2 types x 2 days x 3 clusters, one batch each
    assert sorted(line for b in out for line in b.body.split()) == sorted(line for b in src for line in b.body.split())


def test_a_store_that_changes_while_the_questions_run_voids_the_figures(tmp_path: Path) -> None:
    """The guard after the questions (every mode): the same store passes; a store with a new partition folder
    (as a merge or a late write makes) fails the run instead of reporting the compactor's CPU as the questions'."""
    from margay.bench.fleet import still_settled, store_state
    from margay.bench.targets import MargayTarget

    batches = list(flow_batches(topology(2), 400, batch=200))
    target = MargayTarget(tmp_path / "m").start()
    try:
        target.ingest([replace(batches[0], cluster="fleet-0001")], 1)
        seen = store_state(target)
        still_settled(target, seen, 1)
        target.ingest([replace(batches[1], cluster="fleet-0002")], 1)
        with pytest.raises(RuntimeError, match="changed while its questions ran"):
            still_settled(target, seen, 2)
    finally:
        target.stop()
