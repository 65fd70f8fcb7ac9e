"""The two systems a benchmark compares on the same data: margay (embedded) and a real OpenSearch node.

Each target ingests the same NDJSON batches over HTTP and answers the same questions over HTTP: margay
through its own API, OpenSearch through the query DSL a Calico deployment would send it.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..logtypes import REGISTRY
from ..retention.policy import SETTINGS
from ..rig.children import ServerProcess
from ..rig.opensearch import OpenSearchNode
from ..store.mapping import template_for
from .data import END, Batch, tree_bytes
from .harness import cpu_seconds, rss_mib
from .settle import wait_idle

Query = Callable[[httpx.Client], Any]


def post_parallel(send: Callable[[httpx.Client, int, Batch], int], batches: list[Batch], clients: int,
                  base_url: str) -> tuple[int, float]:
    """Send batches from `clients` threads; returns (records stored, seconds)."""
    lock = threading.Lock()
    todo = list(enumerate(batches))
    done = [0]
    errors: list[BaseException] = []

    # A client for plain HTTP loads no CA bundle: with it, each of 32 senders spent ~26 ms of CPU (one GIL) on
    # an unused SSL context before its first post, so every call began with a second of batches trickling in
    # one by one, each committed alone; agents keep their connections and send no such bursts.
    verify = not base_url.startswith("http://")

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=600, verify=verify) as http:
            while True:
                with lock:
                    if not todo or errors:
                        return
                    i, b = todo.pop(0)
                try:
                    n = send(http, i, b)
                except BaseException as exc:  # noqa: BLE001 - reported after the run
                    errors.append(exc)
                    return
                with lock:
                    done[0] += n

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done[0], time.perf_counter() - started


class MargayTarget:
    name = "margay"
    COLD_AFTER = 60.0  # the store's compact_cold_after: a partition with no write this long gets merged
    _last_write = 0.0

    def __init__(self, work: Path) -> None:
        self.work = work
        shutil.rmtree(work, ignore_errors=True)
        # The data is dated around a fixed END: keep every day of it (OpenSearch keeps it too), so retention
        # does not drop the oldest days of a large run while it loads.
        work.mkdir(parents=True)
        config = work / "margay.yaml"
        config.write_bytes(orjson.dumps({"apiVersion": "operator.tigera.io/v1", "kind": "LogStorage",
                                         "spec": {"retention": dict.fromkeys(sorted(SETTINGS), 3650)}}))
        self.server = ServerProcess(work / "data", "--config", str(config), log=work / "server.log")

    def start(self) -> MargayTarget:
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def ingest(self, batches: list[Batch], clients: int) -> tuple[int, float]:
        gz = [Batch(b.log_type, b.cluster, b.day, gzip.compress(b.body, 1)) for b in batches]

        def send(http: httpx.Client, i: int, b: Batch) -> int:
            # The key names the batch's content: a retry is stored once, two different batches never collide.
            key = hashlib.blake2b(b.body, digest_size=16).hexdigest()
            r = http.post("/api/v1" + REGISTRY[b.log_type].bulk_path, content=b.body,
                          headers={"content-type": "application/x-ndjson", "content-encoding": "gzip",
                                   "x-cluster-id": b.cluster, "idempotency-key": f"bench-{key}"})
            r.raise_for_status()
            return int(r.json()["succeeded"])

        try:
            return post_parallel(send, gz, clients, self.url)
        finally:
            self._last_write = time.monotonic()

    def settle(self, timeout: float = 3600, quiet: float = 10.0) -> None:
        """Wait until the compactor is idle: no merge or roll-up being written and none finished for `quiet`
        seconds (its metrics), so that timings and storage figures do not share the cores with a merge or count
        files about to be merged. The newest partition is merged once it has had no write for COLD_AFTER
        seconds: the wait starts only after that (plus one compactor pass) since the last write. Then it waits
        for the files those merges replaced to be deleted (`margay_store_retired_files` 0), so the size on disk
        read next is the settled store's, not one still holding merged files awaiting deletion."""
        if wait_idle(self.compaction, cold_at=self._last_write + self.COLD_AFTER + 10, quiet=quiet, timeout=timeout,
                     settled=lambda state: not state[3]):
            return
        raise RuntimeError(f"margay's compactor was still busy after {timeout:.0f} s ({self.work / 'server.log'})")

    def compaction(self) -> tuple[float, ...]:
        """(merges made, roll-ups built, 1 while writing one, retired files not yet deleted) from the metrics."""
        text = httpx.get(self.url + "/-/metrics", timeout=60).text
        values = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("margay_"))
        return tuple(float(values.get(k, 0)) for k in ("margay_compaction_merges_total", "margay_compaction_rollups_total",
                                                        "margay_compaction_active", "margay_store_retired_files"))

    def disk_bytes(self, log_type: str | None = None) -> int:
        """Bytes of the store's files on disk (of one log type), as `du` counts them after settle()."""
        root = self.work / "data" / "store" / (log_type or "")
        return tree_bytes(root)

    def folders(self) -> tuple[int, int]:
        """(folders holding data files, data files) of the store on disk."""
        files = [p for p in (self.work / "data" / "store").rglob("*.parquet") if ".rollup-" not in p.name]
        return len({p.parent for p in files}), len(files)

    def indices(self, log_type: str) -> list[dict[str, Any]]:
        """Every stored partition of a log type (GET /api/v1/indices, page after page)."""
        items: list[dict[str, Any]] = []
        params = {"log_type": log_type}
        while True:
            page = httpx.get(self.url + "/api/v1/indices", params=params, timeout=60).raise_for_status().json()
            items += page["items"]
            if "after" not in page:
                return items
            params["after"] = page["after"]

    def count(self, log_type: str) -> int:
        """Records stored (a check that what was sent is what is queried)."""
        return sum(i["docs"] for i in self.indices(log_type))

    def bytes_per_record(self, log_type: str) -> float:
        """The type's files on disk (data and roll-ups, after settle()) per stored record."""
        docs = self.count(log_type)
        return self.disk_bytes(log_type) / docs if docs else 0.0

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mib(self.pid)

    def queries(self) -> dict[str, Query]:
        day = {"from": (END - timedelta(hours=24)).isoformat(), "to": END.isoformat()}
        week = {"from": (END - timedelta(days=7)).isoformat(), "to": END.isoformat()}

        def post(path: str, body: dict[str, Any]) -> Query:
            def run(http: httpx.Client) -> Any:
                r = http.post(path, json=body, headers={"x-cluster-id": "cluster"})
                r.raise_for_status()
                return r.json()
            return run

        def paged(http: httpx.Client) -> Any:
            body: dict[str, Any] = {"time_range": day, "max_page_size": 100,
                                    "selector": 'source_namespace = "shop" AND action = "allow"',
                                    "sort": [{"field": "end_time", "descending": True}]}
            pages = []
            for _ in range(3):
                r = http.post("/api/v1/flows/logs", json=body, headers={"x-cluster-id": "cluster"})
                r.raise_for_status()
                page = r.json()
                pages.append(len(page["items"]))
                if "after_key" not in page:
                    break
                body["after_key"] = page["after_key"]
            return pages

        return {
            # The flow visualizer's own query: the namespace graph with allowed/denied edges, bytes and flows.
            "flowgraph": post("/api/v1/flows/graph", {"time_range": day}),
            "search": paged,
            "topdest": post("/api/v1/flows/logs/aggregation", {"time_range": week, "aggregations": {
                "dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}},
                         "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}),
            "audit": post("/api/v1/audit/logs", {"time_range": week, "type": "kube", "max_page_size": 100,
                                                 "selector": 'user.username = "system:serviceaccount:kube-system:'
                                                             'replicaset-controller" AND verb = "create"'}),
            "dnstop": post("/api/v1/dns/logs/aggregation", {"time_range": week, "aggregations": {
                "domains": {"terms": {"field": "qname", "size": 10}}}}),
            # Linseed's process list (as Calico's UI asks it) over a day of flows.
            "processes": post("/api/v1/processes", {"time_range": day, "max_page_size": 0}),
        }

    def stop(self) -> None:
        self.server.stop()


def _graph_aggs() -> dict[str, Any]:
    """The flow visualizer's question as aggregations: namespace pairs x action, bytes and flows."""
    return {"src": {"terms": {"field": "source_namespace", "size": 100}, "aggs": {
        "dst": {"terms": {"field": "dest_namespace", "size": 100}, "aggs": {
            "action": {"terms": {"field": "action", "size": 2}, "aggs": {
                "bytes": {"sum": {"field": "bytes_in"}}, "flows": {"sum": {"field": "num_flows"}}}}}}}}}


def _linseed_processes(day: dict[str, Any]) -> dict[str, Any]:
    """The query Linseed's process backend sends (legacy/processes/processes.go): source-reported flows with a
    process, terms of cluster > source_name_aggr > process_name > process_id, 1,000 buckets each."""
    def terms(field: str, sub: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"terms": {"field": field, "size": 1000}, **({"aggs": sub} if sub else {})}
    return {"size": 0, "query": {"bool": {
        "filter": [day], "must": [{"term": {"reporter": "src"}}],
        "must_not": [{"terms": {"process_name": ["-", "*"]}}, {"term": {"process_id": "*"}}]}},
        "aggs": {"c": terms("cluster", {"e": terms("source_name_aggr", {"n": terms("process_name", {
            "i": terms("process_id")})})})}}


class OpenSearchTarget:
    name = "opensearch"

    # OpenSearch's documented bulk-load settings: no refresh and an fsync-free translog while loading;
    # settle() restores the template's and refreshes before anything is timed.
    LOADING = {"refresh_interval": "-1", "translog.durability": "async"}
    SERVING = {"refresh_interval": "1s", "translog.durability": "request"}

    def __init__(self, work: Path, *, bulk_load: bool = False) -> None:
        self.work = work
        self.bulk_load = bulk_load
        shutil.rmtree(work, ignore_errors=True)
        self.node = OpenSearchNode(work / "node")

    def start(self) -> OpenSearchTarget:
        self.node.start()
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for lt in REGISTRY.values():
                template = template_for(lt)
                if self.bulk_load:
                    template["template"]["settings"]["index"].update(self.LOADING)
                http.put(f"/_index_template/{lt.index_prefix}", json=template).raise_for_status()
        return self

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def pid(self) -> int:
        pid = self.node.pid
        assert pid is not None
        return pid

    def ingest(self, batches: list[Batch], clients: int) -> tuple[int, float]:
        """`_bulk` as Linseed writes: one action line per document, `cluster` added, daily indices."""
        bodies = []
        for b in batches:
            action = orjson.dumps({"index": {"_index": f"{REGISTRY[b.log_type].index_prefix}.{b.cluster}.{b.day}"}})
            stamp = b'{"cluster":' + orjson.dumps(b.cluster) + b","
            docs = [stamp + line[1:] for line in b.body.split(b"\n") if line.strip()]
            bulk = b"".join(action + b"\n" + d + b"\n" for d in docs)
            bodies.append(Batch(b.log_type, b.cluster, b.day, gzip.compress(bulk, 1)))

        def send(http: httpx.Client, i: int, b: Batch) -> int:
            delay = 0.1
            while True:  # a full write queue answers 429: back off and retry, as Calico's collector does
                r = http.post("/_bulk", content=b.body, headers={"content-type": "application/x-ndjson",
                                                                  "content-encoding": "gzip"})
                if r.status_code != 429:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            r.raise_for_status()
            doc = r.json()
            if doc.get("errors"):
                bad = [it for it in doc["items"] if next(iter(it.values())).get("error")]
                raise RuntimeError(f"OpenSearch refused {len(bad)} documents: {bad[0]}")
            return len(doc["items"])

        n, seconds = post_parallel(send, bodies, clients, self.url)
        if self.bulk_load:
            return n, seconds  # loading: settle() refreshes once at the end
        started = time.perf_counter()
        httpx.post(self.url + "/_refresh", timeout=600).raise_for_status()
        return n, seconds + (time.perf_counter() - started)

    def settle(self, timeout: float = 7200) -> None:
        with httpx.Client(base_url=self.url, timeout=timeout) as http:
            if self.bulk_load:
                http.put("/tigera_secure_ee_*/_settings", json={"index": self.SERVING}).raise_for_status()
                http.post("/_refresh").raise_for_status()
            http.post("/_flush").raise_for_status()
            http.post("/_forcemerge?max_num_segments=1").raise_for_status()
            if self.bulk_load:  # the next step loads again
                http.put("/tigera_secure_ee_*/_settings", json={"index": self.LOADING}).raise_for_status()

    def count(self, log_type: str) -> int:
        prefix = REGISTRY[log_type].index_prefix
        return int(httpx.get(self.url + f"/{prefix}.*/_count", timeout=60).json()["count"])

    def bytes_per_record(self, log_type: str) -> float:
        prefix = REGISTRY[log_type].index_prefix
        rows = httpx.get(self.url + f"/_cat/indices/{prefix}.*?format=json&bytes=b", timeout=60).json()
        docs = sum(int(r["docs.count"]) for r in rows)
        return sum(int(r["store.size"]) for r in rows) / docs if docs else 0.0

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mib(self.pid)

    def queries(self) -> dict[str, Query]:
        day = {"range": {"end_time": {"gte": int((END - timedelta(hours=24)).timestamp()),
                                      "lte": int(END.timestamp())}}}
        week = {"range": {"end_time": {"gte": int((END - timedelta(days=7)).timestamp()),
                                       "lte": int(END.timestamp())}}}
        dns_week = {"range": {"end_time": {"gte": (END - timedelta(days=7)).isoformat(), "lte": END.isoformat()}}}
        audit_week = {"range": {"requestReceivedTimestamp": {"gte": (END - timedelta(days=7)).isoformat(),
                                                             "lte": END.isoformat()}}}
        flows = "tigera_secure_ee_flows.cluster.*"

        def search(index: str, body: dict[str, Any]) -> Query:
            def run(http: httpx.Client) -> Any:
                r = http.post(f"/{index}/_search?request_cache=false", json=body)
                r.raise_for_status()
                return r.json()
            return run

        def paged(http: httpx.Client) -> Any:
            body: dict[str, Any] = {"size": 100, "track_total_hits": True, "query": {"bool": {"filter": [
                day, {"term": {"source_namespace": "shop"}}, {"term": {"action": "allow"}}]}},
                "sort": [{"end_time": "desc"}, {"_id": "asc"}]}
            pages = []
            for _ in range(3):
                r = http.post(f"/{flows}/_search?request_cache=false", json=body)
                r.raise_for_status()
                hits = r.json()["hits"]["hits"]
                pages.append(len(hits))
                if len(hits) < 100:
                    break
                body["search_after"] = hits[-1]["sort"]
            return pages

        return {
            "flowgraph": search(flows, {"size": 0, "query": {"bool": {"filter": [day]}}, "aggs": _graph_aggs()}),
            "search": paged,
            "topdest": search(flows, {"size": 0, "query": {"bool": {"filter": [week]}}, "aggs": {
                "dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}},
                         "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}),
            "audit": search("tigera_secure_ee_audit_kube.cluster.*", {"size": 100, "track_total_hits": True,
                            "query": {"bool": {"filter": [audit_week, {"term": {
                                "user.username": "system:serviceaccount:kube-system:replicaset-controller"}},
                                {"term": {"verb": "create"}}]}}}),
            "dnstop": search("tigera_secure_ee_dns.cluster.*", {"size": 0, "query": {"bool": {"filter": [dns_week]}},
                             "aggs": {"domains": {"terms": {"field": "qname", "size": 10}}}}),
            "processes": search(flows, _linseed_processes(day)),
        }

    def stop(self) -> None:
        self.node.stop()
