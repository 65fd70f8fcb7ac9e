"""Flow and DNS log aggregation (spec §2, §3) as DuckDB SQL over NDJSON batches: a library, a CLI
command (`margay aggregate`), an ingest hook (`at_ingest`) and a benchmark (`bench`)."""

from __future__ import annotations

import time
from typing import Any

from .batch import Result
from .dns import DNSLevels, aggregate_dns
from .flows import FlowLevels, aggregate_flows
from .ingest import IngestAggregation, aggregate_batch, at_ingest


def aggregate(log_type: str, body: bytes, *, level: int | None = None, level_denied: int | None = None,
              flush_interval: int = 300, per_node_limit: int = 0) -> Result:
    """Aggregate an NDJSON batch of `flows` or `dns` records; levels default to Calico's (2/1 and 1)."""
    if log_type == "flows":
        return aggregate_flows(body, FlowLevels(allowed=2 if level is None else level,
                                                denied=1 if level_denied is None else level_denied,
                                                flush_interval=flush_interval))
    if log_type == "dns":
        return aggregate_dns(body, DNSLevels(level=1 if level is None else level, flush_interval=flush_interval,
                                             per_node_limit=per_node_limit))
    raise ValueError(f"only flows and dns aggregate, not {log_type!r}")


def bench(records_ndjson: bytes, *, log_type: str = "flows", flush_interval: int = 300) -> dict[str, Any]:
    """Measure each level on level-0 input: records out, reduction, throughput (records in per second) and
    the process's CPU seconds (every thread: DuckDB's workers too), which a busy machine does not inflate
    the way it stretches wall time.

    Flows use the same level for allowed and denied traffic so each level is shown on its own.
    """
    levels = range(4) if log_type == "flows" else range(2)
    out: dict[str, Any] = {"type": log_type, "records_in": 0, "bytes_in": len(records_ndjson), "levels": {}}
    for lvl in levels:
        started, cpu0 = time.perf_counter(), time.process_time()
        r = aggregate(log_type, records_ndjson, level=lvl, level_denied=lvl, flush_interval=flush_interval)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        out["records_in"] = r.records_in
        out["levels"][lvl] = {
            "records_out": r.records_out,
            "reduction": round(1 - r.records_out / r.records_in, 4) if r.records_in else 0.0,
            "seconds": round(seconds, 4),
            "cpu_s": round(cpu, 4),
            "records_per_s": round(r.records_in / seconds) if seconds > 0 else None,
        }
    return out


__all__ = ["DNSLevels", "FlowLevels", "IngestAggregation", "Result", "aggregate", "aggregate_batch",
           "aggregate_dns", "aggregate_flows", "at_ingest", "bench"]
