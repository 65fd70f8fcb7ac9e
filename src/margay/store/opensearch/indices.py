"""Calico's daily indices on OpenSearch: listing (partitions), dropping and the size statistics."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
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
        return self.drop_many([partition])[partition.index]

    def drop_many(self, partitions: Sequence[Partition]) -> dict[str, int]:
        """Delete daily indices, a few dozen per request; an index that also holds any other document loses
        only the given clusters' documents (_delete_clusters). Records removed per index.

        A partition is its cluster's documents (those whose `cluster` names it: what every read selects), so
        an index is deleted whole only when it holds nothing else — not another cluster's documents, and not
        documents without a `cluster` field (written by another shipper, e.g. Calico's fluentd before
        Linseed): no margay read shows those as anyone's, so no cluster's retention may delete them."""
        from ...logtypes import get

        wanted: dict[str, set[str]] = {}  # OpenSearch index -> the clusters dropped from it
        named: dict[tuple[str, str], str] = {}  # (OpenSearch index, cluster) -> the Calico index name
        for p in partitions:
            index = self.index(get(p.log_type), p.cluster, p.day)
            wanted.setdefault(index, set()).add(p.cluster)
            named[(index, p.cluster)] = p.index
        held: dict[str, dict[str, int]] = {}  # OpenSearch index -> its documents of the dropped clusters
        for chunk in _chunks(sorted(wanted)):
            names = ",".join(chunk)
            dropped = sorted({c for i in chunk for c in wanted[i]})
            try:  # exact counts: every index of the chunk, each of the dropped clusters (`include`)
                result = self.request("POST", f"/{names}/_search", params={"ignore_unavailable": "true"}, body={
                    "size": 0, "track_total_hits": False, "aggs": {"i": {
                        "terms": {"field": "_index", "size": len(chunk)},
                        "aggs": {"c": {"terms": {"field": "cluster", "include": dropped, "size": len(dropped)}}}}}})
            except NotFoundError:
                result = {}
            total: dict[str, int] = {}
            for b in result.get("aggregations", {}).get("i", {}).get("buckets", []):
                held[b["key"]] = {c["key"]: c["doc_count"] for c in b["c"]["buckets"]}
                total[b["key"]] = b["doc_count"]
            mine = {i: sum(n for c, n in held.get(i, {}).items() if c in wanted[i]) for i in chunk}
            whole = [i for i in chunk if total.get(i, 0) == mine[i]]
            if whole:
                try:
                    self.request("DELETE", "/" + ",".join(whole), params={"ignore_unavailable": "true"})
                except NotFoundError:
                    pass
            for index in chunk:
                if index not in whole:
                    log.info("%s keeps %d documents of no dropped cluster", index, total[index] - mine[index])
                    self._delete_clusters(index, sorted(wanted[index]))
        removed = dict.fromkeys(named.values(), 0)
        for (index, cluster), name in named.items():
            removed[name] += int(held.get(index, {}).get(cluster, 0))
        return removed

    def _delete_clusters(self, index: str, clusters: list[str]) -> None:
        """Delete the clusters' documents of an index others share, by id with `_bulk` (`terms` on cluster, up to
        10,000 a round): like dismissals (reads.py), this needs no reindex module, which `_delete_by_query` does
        (a node without it answers "no handler found")."""
        while True:
            found = self.request("POST", f"/{index}/_search", body={
                "query": {"terms": {"cluster": clusters}}, "size": 10_000, "_source": False})
            hits = found["hits"]["hits"]
            if not hits:
                return
            lines = b"".join(orjson.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}) + b"\n" for h in hits)
            result = self.request("POST", "/_bulk", params={"refresh": "true"}, body=lines,
                                  headers={"content-type": "application/x-ndjson"})
            failed = [i for i in result.get("items", []) if next(iter(i.values())).get("status", 500) >= 300]
            if failed:
                raise BackendError(f"OpenSearch did not delete {len(failed)} documents of {index}: "
                                   f"{next(iter(failed[0].values())).get('error')}; retention tries again")

    def stats(self) -> dict[str, Any]:
        try:
            parts = self.partitions()
        except (BackendError, QueryError):
            parts = []
        return {"backend": self.name, "url": _redact(self.url), "bytes": sum(p.bytes for p in parts),
                "partitions": len(parts), "records": sum(p.docs for p in parts),
                "committed_batches": self.committed_batches}


def _chunks(names: list[str], budget: int = 3_000) -> Iterator[list[str]]:
    """Index names in groups whose comma-joined list stays within `budget` characters: a request line longer
    than OpenSearch's `http.max_initial_line_length` (4 KB) is refused."""
    chunk: list[str] = []
    size = 0
    for name in names:
        if chunk and size + len(name) + 1 > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += len(name) + 1
    if chunk:
        yield chunk
