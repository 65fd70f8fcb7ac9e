"""Aggregation at ingest: a per-cluster `Aggregation` document decides which batches are aggregated.

Config (a margay document in the `--config` file, beside LogStorage):

    apiVersion: margay.dev/v1
    kind: Aggregation
    spec:
      clusters:
        - name: app-cluster-1          # or "*" for every cluster not named
          flushInterval: 300           # seconds; windows are aligned to the epoch
          flows: {allowed: 2, denied: 1}
          dns: {level: 1, perNodeLimit: 1000}

A cluster without an entry (and no "*") is stored as sent. A type left out of an entry is not
aggregated for that cluster. Each batch is aggregated on its own (records of other batches in the same
window stay separate): nothing is held in memory, so an acknowledged batch is exactly what is stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_documents
from ..errors import ConfigError, ParseError
from ..logtypes import LogType
from ..names import CLUSTER_RULE, is_cluster_name
from .dns import DNSLevels, aggregate_dns
from .flows import FlowLevels, aggregate_flows

KIND = "Aggregation"
API_VERSION = "margay.dev/v1"


@dataclass(frozen=True)
class ClusterAggregation:
    flows: FlowLevels | None = None
    dns: DNSLevels | None = None


@dataclass
class IngestAggregation:
    """Which clusters' flows and DNS batches are aggregated before they are stored, and how."""

    clusters: dict[str, ClusterAggregation] = field(default_factory=dict)

    def for_cluster(self, cluster: str) -> ClusterAggregation | None:
        return self.clusters.get(cluster) or self.clusters.get("*")

    @classmethod
    def from_file(cls, path: Path | None) -> IngestAggregation:
        if path is None:
            return cls()
        docs = [d for d in load_documents(path) if d.get("kind") == KIND]
        if len(docs) > 1:
            raise ConfigError(f"config file {path}: more than one {KIND} document")
        return cls.from_document(docs[0]) if docs else cls()

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> IngestAggregation:
        if doc.get("apiVersion") not in (None, API_VERSION):
            raise ConfigError(f"{KIND} apiVersion: expected {API_VERSION}, got {doc.get('apiVersion')!r}")
        spec = doc.get("spec") or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{KIND} spec: expected a mapping")
        _unknown(spec, {"clusters"}, f"{KIND} spec")
        entries = spec.get("clusters") or []
        if not isinstance(entries, list):
            raise ConfigError(f"{KIND} spec.clusters: expected a list")
        out: dict[str, ClusterAggregation] = {}
        for i, e in enumerate(entries):
            where = f"{KIND} spec.clusters[{i}]"
            if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e["name"]:
                raise ConfigError(f"{where}.name: a cluster name (or \"*\") is required")
            if e["name"] != "*" and not is_cluster_name(e["name"]):
                raise ConfigError(f"{where}.name: {CLUSTER_RULE}")
            _unknown(e, {"name", "flushInterval", "flows", "dns"}, where)
            interval = _int(e.get("flushInterval", 300), f"{where}.flushInterval", 1)
            out[e["name"]] = ClusterAggregation(_flows(e.get("flows"), interval, where),
                                                _dns(e.get("dns"), interval, where))
        return cls(out)


def _unknown(d: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(d) - known)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown field (known: {', '.join(sorted(known))})")


def _int(value: Any, where: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{where}: expected an integer {rng}, got {value!r}")
    return value


def _flows(d: Any, interval: int, where: str) -> FlowLevels | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ConfigError(f"{where}.flows: expected a mapping")
    _unknown(d, {"allowed", "denied"}, f"{where}.flows")
    return FlowLevels(allowed=_int(d.get("allowed", 2), f"{where}.flows.allowed", 0, 3),
                      denied=_int(d.get("denied", 1), f"{where}.flows.denied", 0, 3), flush_interval=interval)


def _dns(d: Any, interval: int, where: str) -> DNSLevels | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ConfigError(f"{where}.dns: expected a mapping")
    _unknown(d, {"level", "perNodeLimit"}, f"{where}.dns")
    return DNSLevels(level=_int(d.get("level", 1), f"{where}.dns.level", 0, 1), flush_interval=interval,
                     per_node_limit=_int(d.get("perNodeLimit", 0), f"{where}.dns.perNodeLimit", 0))


def aggregate_batch(policy: IngestAggregation, lt: LogType, cluster: str, body: bytes) -> tuple[bytes, int, int]:
    """(body to store, records in, records out). The body is unchanged when the cluster is not configured
    or when any record is invalid: then ingest stores as sent and names the bad lines as usual."""
    entry = policy.for_cluster(cluster)
    levels = None if entry is None or lt.aggregation is None else getattr(entry, lt.aggregation)
    if levels is None:
        return body, 0, 0
    try:
        result = aggregate_flows(body, levels) if isinstance(levels, FlowLevels) else aggregate_dns(body, levels)
    except ParseError:
        return body, 0, 0
    if result.invalid or not result.records_out:
        return body, 0, 0
    return result.body, result.records_in, result.records_out


def aggregating(m: Any, lt: LogType) -> bool:
    """Whether some cluster's batches of this type are aggregated at ingest (at_ingest may change a body)."""
    policy: IngestAggregation | None = getattr(m, "aggregation", None)
    return policy is not None and bool(policy.clusters) and lt.name in ("flows", "dns")


async def at_ingest(m: Any, lt: LogType, cluster: str, body: bytes) -> bytes:
    """The ingest hook: the batch as it should be stored (aggregated when configured for this cluster)."""
    if not aggregating(m, lt):
        return body
    policy: IngestAggregation = m.aggregation
    out, n_in, n_out = await asyncio.to_thread(aggregate_batch, policy, lt, cluster, body)
    if n_in:
        m.metrics.inc("margay_aggregated_records_in_total", n_in, type=lt.name, cluster=cluster)
        m.metrics.inc("margay_aggregated_records_out_total", n_out, type=lt.name, cluster=cluster)
    return out
