"""Benchmark data: deterministic simulated logs as NDJSON batches, one UTC day per batch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..simulate import Topology, audit_kube, dns, flows, ndjson_batches

END = datetime(2026, 11, 26, tzinfo=UTC)  # a fixed "now": the data and the queries never move
BATCH = 10_000
CLUSTERS = ["cluster", "app-cluster-1"]


@dataclass(frozen=True)
class Batch:
    log_type: str
    cluster: str
    day: str  # yyyymmdd of every record in the batch
    body: bytes  # NDJSON

    @property
    def records(self) -> int:
        return self.body.count(b"\n") + (0 if self.body.endswith(b"\n") else 1)


def tree_bytes(root: os.PathLike[str] | str) -> int:
    """Bytes of the files under `root`, as `du` counts them; a file or folder that a store's own merge removes
    while the walk runs (VictoriaLogs' parts, margay's retired files) counts as gone, not as an error."""
    total = 0
    for folder, _dirs, names in os.walk(root):  # os.walk skips a folder that vanished before its listing
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name), follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def topology(scale: int = 40) -> Topology:
    return Topology.build(7, clusters=CLUSTERS, namespaces_per_cluster=scale, deployments_per_namespace=10)


def _days(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    while day < end:
        nxt = day + timedelta(days=1)
        yield max(day, start), min(nxt, end)
        day = nxt


def flow_start(topo: Topology, records: int, end: datetime = END) -> datetime:
    """Where `records` level-0 flow records ending at `end` begin: the topology makes a fixed number of
    records per 5-minute interval."""
    per_interval = sum(_per_interval(topo, c) for c in topo.clusters)
    return end - timedelta(seconds=300 * max(1, -(-records // max(per_interval, 1))))


def flow_batches(topo: Topology, records: int, *, batch: int = BATCH, end: datetime = END) -> Iterator[Batch]:
    """About `records` level-0 Felix flow records ending at `end`, spread over as many days as they need."""
    sent = 0
    for lo, hi in _days(flow_start(topo, records, end), end):
        for cluster in topo.clusters:
            for body in ndjson_batches(flows(topo, cluster, lo, hi, level=0, denied_level=0), batch):
                yield Batch("flows", cluster, lo.strftime("%Y%m%d"), body)
                sent += body.count(b"\n") + 1
                if sent >= records:
                    return


def _per_interval(topo: Topology, cluster: str) -> int:
    from ..simulate import natural_flow_records

    return natural_flow_records(topo, cluster, level=0, denied_level=0)


def other_batches(topo: Topology, hours: float) -> Iterator[Batch]:
    """DNS and Kubernetes audit logs over the `hours` before END, from the default-sized topology of the
    same seed (~1,000 DNS records per cluster and hour): a week stays a few hundred thousand records."""
    del topo  # the flow topology is sized for flow volume; DNS from it would be ~40x larger
    topo = Topology.build(7, clusters=CLUSTERS)
    start = END - timedelta(hours=hours)
    for lo, hi in _days(start, END):
        for cluster in topo.clusters:
            for kind, gen in (("dns", dns), ("audit_kube", audit_kube)):
                for body in ndjson_batches(gen(topo, cluster, lo, hi), BATCH):
                    yield Batch(kind, cluster, lo.strftime("%Y%m%d"), body)
