"""Calico's daily indices on OpenSearch: listing (partitions), dropping and the size statistics."""

from __future__ import annotations

import logging
from typing import Any

from opensearchpy.exceptions import NotFoundError

from ...errors import BackendError, QueryError
from ...logtypes import LogType
from ..backend import Partition
from .client import Client, _redact

log = logging.getLogger(__name__)


class Indices(Client):
    """Partitions are daily indices, split by the `cluster` field."""

    def partitions(self, lt: LogType | None = None, clusters: list[str] | None = None,
                   *, with_sizes: bool = True) -> list[Partition]:
        pattern = f"{self.prefix}{lt.index_prefix}.*" if lt else f"{self.prefix}tigera_secure_ee_*"
        try:
            cat = self.request("GET", f"/_cat/indices/{pattern}",
                               params={"format": "json", "bytes": "b", "h": "index,docs.count,store.size"})
        except NotFoundError:
            return []
        sizes = {row["index"]: int(row.get("store.size") or 0) for row in cat}
        docs: dict[str, dict[str, int]] = {}
        if sizes:
            result = self.request("POST", f"/{pattern}/_search", params={"ignore_unavailable": "true"}, body={
                "size": 0, "track_total_hits": False, "aggs": {"i": {"terms": {"field": "_index", "size": 10_000}, "aggs": {
                    "c": {"terms": {"field": "cluster", "size": 1000}}}}}})
            for b in result["aggregations"]["i"]["buckets"]:
                docs[b["key"]] = {c["key"]: c["doc_count"] for c in b["c"]["buckets"]}
        out = []
        for index, size in sizes.items():
            parsed = self._parse_index(index)
            if parsed is None:
                continue
            t, lowered, day = parsed
            per = docs.get(index) or {lowered: 0}
            total = sum(per.values()) or 1
            for cluster, n in per.items():
                if clusters is None or cluster in clusters:
                    out.append(Partition(t.name, cluster, day, n, size * n // total if n else size))
        return sorted(out, key=lambda p: (p.log_type, p.cluster, p.day))

    def clusters(self, lt: LogType | None = None) -> list[str]:
        return sorted({p.cluster for p in self.partitions(lt, with_sizes=False)})

    def drop(self, partition: Partition) -> int:
        """Delete a daily index (or, when it also holds other clusters' records, just this cluster's)."""
        from ...logtypes import get

        lt = get(partition.log_type)
        index = self.index(lt, partition.cluster, partition.day)
        try:
            result = self.request("POST", f"/{index}/_search", body={
                "size": 0, "aggs": {"c": {"terms": {"field": "cluster", "size": 1000}}}})
        except NotFoundError:
            return 0
        per = {b["key"]: b["doc_count"] for b in result["aggregations"]["c"]["buckets"]}
        if set(per) - {partition.cluster}:
            self.request("POST", f"/{index}/_delete_by_query", params={"refresh": "true"},
                         body={"query": {"term": {"cluster": partition.cluster}}})
        else:
            try:
                self.request("DELETE", f"/{index}")
            except NotFoundError:
                return 0
        return int(per.get(partition.cluster, 0))

    def stats(self) -> dict[str, Any]:
        try:
            parts = self.partitions()
        except (BackendError, QueryError):
            parts = []
        return {"backend": self.name, "url": _redact(self.url), "bytes": sum(p.bytes for p in parts),
                "partitions": len(parts), "records": sum(p.docs for p in parts),
                "committed_batches": self.committed_batches}
