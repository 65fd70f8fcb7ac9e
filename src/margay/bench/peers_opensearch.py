"""OpenSearch in the peers scenario: the rig's real node, fed and asked as Calico's Linseed does.

The same 10,000-record batches go to `_bulk` (one request each, 4 clients, `cluster` added to each document,
a daily index per cluster under Calico's flow index template: 1 shard, no replica, refresh every second, a
translog fsync'd before each bulk answer); the timed ingest ends with a refresh, so what it acknowledged is
searchable. Settling is a flush and a force merge to one segment per index, then a refresh (the searcher lets
go of the merged-away segments) and a wait until the store size stops moving. The questions are the query DSL
twins of the other systems' (same cluster, same half-open time ranges, same fields).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from ..rig.opensearch import JVM_FLAGS
from ..store.mapping import REPLICAS, SHARDS
from .data import Batch
from .harness import cpu_seconds
from .peers_check import CLUSTER, DAY, WEEK, Question
from .targets import OpenSearchTarget, _graph_aggs

FLOWS = f"tigera_secure_ee_flows.{CLUSTER}.*"  # the one cluster's daily indices, as Linseed names them


def _range(r: tuple[Any, Any]) -> dict[str, Any]:
    """end_time (epoch seconds in Calico's mapping) in [from, to), like the other systems' ranges."""
    return {"range": {"end_time": {"gte": int(r[0].timestamp()), "lt": int(r[1].timestamp())}}}


class OpenSearchPeer:
    name = "opensearch"

    def __init__(self, work: Path) -> None:
        self.target = OpenSearchTarget(work)  # durable, as margay: no bulk-load settings
        self.http: httpx.Client | None = None

    def config(self) -> dict[str, Any]:
        heap = " ".join(f for f in JVM_FLAGS if f.startswith("-Xm"))
        return {"engine": f"OpenSearch {self.target.node.version} (the rig's single node, JVM {heap})",
                "index": f"a daily index per cluster (tigera_secure_ee_flows.<cluster>.<yyyymmdd>), Calico's flow "
                         f"mapping (margay's template_for), {SHARDS} shard, {REPLICAS} replicas, refresh_interval 1s, "
                         "default codec (LZ4)",
                "insert": "POST /_bulk, gzip, one request per 10,000-record batch, 4 clients, cluster added to each "
                          "document; translog.durability=request (a 2xx means the translog was fsync'd); the "
                          "timed ingest ends with a _refresh",
                "settle": "_flush, _forcemerge?max_num_segments=1, _refresh, store size read once it stops moving",
                "queries": "query DSL on tigera_secure_ee_flows.cluster.*, request_cache=false; search pages by "
                           "search_after on (end_time desc, _id); aggregations as terms/sum (topdest with "
                           "shard_size 1000 so its top 10 is exact across the daily indices)"}

    def start(self) -> OpenSearchPeer:
        self.target.start()
        self.http = httpx.Client(base_url=self.target.url, timeout=600)
        return self

    def ingest(self, batches: list[Batch]) -> tuple[int, float, float]:
        cpu0 = self.cpu()
        n, seconds = self.target.ingest(batches, 4)
        return n, seconds, self.cpu() - cpu0

    def count(self) -> int:
        return self.target.count("flows")

    def settle(self, timeout: float = 3600) -> None:
        self.target.settle(timeout)
        assert self.http is not None
        self.http.post("/_refresh").raise_for_status()
        last, deadline = -1, time.monotonic() + timeout
        while (size := self._store_bytes()) != last and time.monotonic() < deadline:
            last = size
            time.sleep(2)

    def _store_bytes(self) -> int:
        assert self.http is not None
        rows = self.http.get("/_cat/indices/tigera_secure_ee_flows.*", params={"format": "json", "bytes": "b"})
        return sum(int(r["store.size"]) for r in rows.raise_for_status().json())

    def bytes_per_flow(self) -> float:
        return self._store_bytes() / max(self.count(), 1)

    def _search(self, body: dict[str, Any]) -> Any:
        assert self.http is not None
        r = self.http.post(f"/{FLOWS}/_search", params={"request_cache": "false"}, json=body)
        r.raise_for_status()
        return r.json()

    def _page(self, action: str) -> dict[str, Any]:
        return {"size": 100, "track_total_hits": False, "sort": [{"end_time": "desc"}, {"_id": "asc"}],
                "query": {"bool": {"filter": [_range(DAY), {"term": {"source_namespace": "shop"}},
                                              {"term": {"action": action}}]}}}

    def _pages(self) -> list[Any]:
        body, pages = self._page("allow"), []
        for _ in range(3):
            page = self._search(body)
            pages.append(page)
            hits = page["hits"]["hits"]
            if len(hits) < 100:
                break
            body["search_after"] = hits[-1]["sort"]
        return pages

    def questions(self) -> dict[str, Question]:
        top = {"size": 0, "query": {"bool": {"filter": [_range(WEEK)]}}, "aggs": {
            "dest": {"terms": {"field": "dest_name_aggr", "size": 10, "shard_size": 1000, "order": {"bytes": "desc"}},
                     "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}
        graph = {"size": 0, "query": {"bool": {"filter": [_range(DAY)]}}, "aggs": _graph_aggs()}
        return {"search": self._pages, "denied": lambda: self._search(self._page("deny")),
                "topdest": lambda: self._search(top), "flowgraph": lambda: self._search(graph)}

    def cpu(self) -> float:
        return cpu_seconds(self.target.pid)  # the JVM's user + system CPU

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        self.target.stop()
