"""`margay simulate`: a seeded multi-cluster workload and the native logs it writes, for the demo, tests and benchmarks."""

from __future__ import annotations

from .feed import backfill_days, post_to_server, run_live, write_native_files
from .generate import (
    GENERATORS,
    audit_ee,
    audit_kube,
    bgp,
    bgp_lines,
    dns,
    events,
    flows,
    natural_flow_records,
    ndjson_batches,
    parse_bird_line,
)
from .topology import Edge, Endpoint, Policy, Service, Topology

__all__ = [
    "GENERATORS", "Edge", "Endpoint", "Policy", "Service", "Topology", "audit_ee", "audit_kube", "backfill_days",
    "bgp", "bgp_lines", "dns", "events", "flows", "natural_flow_records", "ndjson_batches", "parse_bird_line",
    "post_to_server", "run_live", "write_native_files",
]
