"""The scale-out store: the Backend protocol on OpenSearch (or Elasticsearch), with Calico's indices.

Daily indices `tigera_secure_ee_<type>.<cluster>.<yyyymmdd>` made from index templates derived from the
registry (mapping.py). Batches are validated and converted exactly as on the embedded store (the same
DuckDB Converter, so errors name the same lines and fields), rendered to JSON documents in DuckDB and
written with `_bulk` (`refresh=wait_for`: a 2xx means searchable). The server keeps no state: a batch's
idempotency key is a document in `margay_batches` (created with op_type=create) and a keyed batch's
documents get deterministic ids (`<key hash>-<n>`, written with `create`), so two replicas that receive
the same retried batch store it once. Reads compile the Query model to query DSL; aggregations run in
OpenSearch.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from ..errors import BackendError, QueryError
from ..ingest.parse import Converted, Converter, LineError, _check_line, _nonblank_line_numbers
from ..logtypes import REGISTRY, Kind, LogType, quote_ident
from ..query.aggs import METRICS, _split
from ..query.graph import GRAPH_KEYS, GraphRows, GraphSpec, fold
from ..query.l3 import KEY, SUMS
from ..query.l3 import item as l3_item
from ..query.model import Query, SortKey, parse_time
from ..query.selector import Node
from .backend import Aggregated, FieldValue, Partition, SearchResult
from .duckdb import connect
from .mapping import DATE_FORMAT, ID_FIELD, SEQ_FIELD, exact_field, nested_path, template_for, template_name
from .sql import time_sql

log = logging.getLogger(__name__)

MAX_RESULT_WINDOW = 10_000
BULK_CHUNK_BYTES = 8 * 1024 * 1024
RETRY_STATUS = (429, 502, 503, 504)
MAX_GROUPS = 65_535
_SEQ_SHIFT = 20  # margay_seq = wall-clock ms << 20 + line: increasing over time, room for 1M lines per ms
_HIDDEN = (SEQ_FIELD, ID_FIELD)
# How far behind the clock a forwarder reads: a write of another replica reserves its position this long
# at most before its documents are visible (this replica's own writes in flight are known exactly).
FEED_GRACE_MS = 5_000


def index_cluster(cluster: str) -> str:
    """A cluster name as it appears in an index name: lower case only, so `A` becomes `+a`.

    Index names must be lower case; `+` never occurs in a cluster name, so the mapping is one to one and
    two clusters never share an index (a pass-through query cannot see another cluster's records).
    """
    return "".join("+" + ch.lower() if ch.isupper() else ch for ch in cluster)


def cluster_of_index(part: str) -> str:
    out, upper = [], False
    for ch in part:
        if ch == "+":
            upper = True
            continue
        out.append(ch.upper() if upper else ch)
        upper = False
    return "".join(out)


class OpenSearchBackend:
    """The Backend protocol on an OpenSearch/Elasticsearch cluster; holds no state of its own."""

    name = "opensearch"

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, ca_file: str | Path | None = None, prefix: str = "",
                 refresh: str = "wait_for", timeout: float = 60.0, retries: int = 5,
                 scratch_dir: Path | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.refresh = refresh
        self.retries = retries
        headers = {"authorization": f"Bearer {token}"} if token else None
        kwargs: dict[str, Any] = {"timeout": timeout, "max_retries": retries, "retry_on_status": RETRY_STATUS,
                                  "retry_on_timeout": True, "http_compress": False}
        if username is not None:
            kwargs["http_auth"] = (username, password or "")
        if headers:
            kwargs["headers"] = headers
        if ca_file is not None:
            kwargs["ca_certs"] = str(ca_file)
            kwargs["verify_certs"] = True
        self.client = OpenSearch([url], **kwargs)
        self.timeout = timeout
        self._auth = (username, password or "") if username is not None else None
        self._headers = headers or {}
        self._verify: Any = str(ca_file) if ca_file is not None else True
        self._http: Any = None
        self.batches_index = f"{prefix}margay_batches"
        self._own_scratch = scratch_dir is None
        self.scratch = Path(scratch_dir or tempfile.mkdtemp(prefix="margay-opensearch-"))
        self.con = connect()
        self.con.execute("SET threads = 1")
        self.converter = Converter(self.con.cursor, self.scratch)
        self._ready = False
        self.committed_batches = 0
        self._inflight: dict[int, int] = {}  # seq base -> writes in flight with it (the feed's watermark)
        self._inflight_lock = threading.Lock()
        self._last_base = 0

    # -- plumbing ----------------------------------------------------------------------------------------

    def es_request(self, method: str, path: str, params: dict[str, Any], body: bytes | None
                   ) -> tuple[int, dict[str, str], bytes]:
        """Pass an Elasticsearch API call through (after margay's RBAC narrowed the index list)."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=self.timeout, auth=self._auth,
                                      headers=self._headers, verify=self._verify)
        r = self._http.request(method, path, params=params, content=body or None,
                               headers={"content-type": "application/json"} if body else None)
        return r.status_code, dict(r.headers), r.content

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        """One call to the cluster (retried on 429/5xx by the transport); errors become BackendError."""
        try:
            return self.client.transport.perform_request(method, path, params=params, body=body,
                                                          headers=headers)
        except NotFoundError:
            raise
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise BackendError(f"OpenSearch at {self.url} is unreachable: {exc}") from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 502
            reason = _reason(exc.info) or str(exc.error)
            if 400 <= status < 500 and status not in (408, 429):
                raise QueryError(f"OpenSearch refused the request: {reason}") from exc
            raise BackendError(f"OpenSearch failed ({status}): {reason}") from exc

    def ensure_ready(self) -> None:
        """Install the index templates and the batch-key index (idempotent; once per process)."""
        if self._ready:
            return
        for lt in REGISTRY.values():
            self.request("PUT", f"/_index_template/{template_name(lt, self.prefix)}", body=template_for(lt, self.prefix))
        try:
            self.request("PUT", f"/{self.batches_index}", body={
                "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
                "mappings": {"dynamic": False, "properties": {
                    "ts": {"type": "date"}, "cluster": {"type": "keyword"}, "log_type": {"type": "keyword"},
                    "response": {"type": "object", "enabled": False}}}})
        except QueryError as exc:
            if "resource_already_exists" not in str(exc):
                raise
        self._ready = True

    def index(self, lt: LogType, cluster: str, day: str) -> str:
        """The daily index of a cluster's records; `day` may be `*` for all of them."""
        return f"{self.prefix}{lt.index_prefix}.{index_cluster(cluster)}.{day}"

    # -- writes ------------------------------------------------------------------------------------------

    def seen(self, lt: LogType, cluster: str, key: str) -> dict[str, Any] | None:
        try:
            doc = self.request("GET", f"/{self.batches_index}/_doc/{_batch_id(lt, cluster, key)}")
        except NotFoundError:
            return None
        return doc.get("_source", {}).get("response") if doc.get("found") else None

    def ingest(self, lt: LogType, cluster: str, body: bytes, *, key: str | None, now: datetime,
               respond: Any) -> tuple[dict[str, Any], bool]:
        """Convert, bulk-write and (with a key) record one NDJSON batch. Returns (response, replayed)."""
        self.ensure_ready()
        if key is not None:
            prior = self.seen(lt, cluster, key)
            if prior is not None:
                return prior, True
        base = self._reserve()
        try:
            conv = self.converter.convert(lt, body, cluster=cluster, now=now, seq_base=base)
        except BaseException:
            self._release(base)
            raise
        try:
            response = respond(conv)
            id_prefix = _batch_id(lt, cluster, key)[:24] if key is not None else uuid.uuid4().hex[:24]
            failures = self._bulk(self._actions(lt, cluster, conv, base, id_prefix))
            if failures:
                _add_failures(response, body, conv, failures)
            if key is None:
                self.committed_batches += 1
                return response, False
            return self._record(lt, cluster, key, response)
        finally:
            self._release(base)
            conv.discard()

    def _reserve(self) -> int:
        with self._inflight_lock:  # one millisecond slot per batch: positions never collide in a replica
            base = max((time.time_ns() // 1_000_000) << _SEQ_SHIFT, self._last_base + (1 << _SEQ_SHIFT))
            self._last_base = base
            self._inflight[base] = self._inflight.get(base, 0) + 1
            return base

    def _release(self, base: int) -> None:
        with self._inflight_lock:
            self._inflight[base] -= 1
            if not self._inflight[base]:
                del self._inflight[base]

    def _actions(self, lt: LogType, cluster: str, conv: Converted, base: int, id_prefix: str
                 ) -> list[tuple[int, bytes]]:
        """(ordinal in the batch, action + document NDJSON) for every good record, rendered by DuckDB."""
        out: list[tuple[int, bytes]] = []
        cur = self.con.cursor()
        try:
            for day, path, _rows in conv.files:
                action = orjson.dumps({"create": {"_index": self.index(lt, cluster, day)}})[:-2]
                rows = cur.execute(
                    f"SELECT _seq - ?, {_doc_sql(lt)} FROM (SELECT *, ? || '-' || CAST(_seq - ? AS VARCHAR) "  # noqa: S608
                    "AS _docid FROM read_parquet(?))", [base, id_prefix, base, str(path)]).fetchall()
                for n, doc in rows:
                    out.append((n, action + b',"_id":"' + f"{id_prefix}-{n}".encode() + b'"}}\n'
                                + doc.encode() + b"\n"))
        finally:
            cur.close()
        return out

    def _bulk(self, actions: list[tuple[int, bytes]]) -> dict[int, str]:
        """Write in chunks; retry items refused with 429/5xx; return {ordinal: reason} of refused documents."""
        failures: dict[int, str] = {}
        pending = actions
        for attempt in range(self.retries + 1):
            retry: list[tuple[int, bytes]] = []
            for chunk in _chunks(pending):
                result = self.request("POST", "/_bulk", params={"refresh": self.refresh},
                                      body=b"".join(a for _, a in chunk),
                                      headers={"content-type": "application/x-ndjson"})
                if not result.get("errors"):
                    continue
                for (n, action), item in zip(chunk, result["items"], strict=True):
                    op = next(iter(item.values()))
                    status = op.get("status", 500)
                    if status < 300 or status == 409:  # 409: this id is stored already (a retried batch)
                        continue
                    if status in RETRY_STATUS or status >= 500:
                        retry.append((n, action))
                    else:
                        failures[n] = _reason(op) or f"status {status}"
            if not retry:
                return failures
            pending = retry
            time.sleep(min(0.2 * 2 ** attempt, 5.0))
        raise BackendError(f"OpenSearch kept refusing {len(pending)} documents (429/5xx); retry the batch",
                           status=503)

    def _record(self, lt: LogType, cluster: str, key: str, response: dict[str, Any]
                ) -> tuple[dict[str, Any], bool]:
        """Store the batch's key and response; if another replica got there first, answer with its response."""
        doc = {"response": response, "ts": int(time.time() * 1000), "cluster": cluster, "log_type": lt.name}
        try:
            self.request("PUT", f"/{self.batches_index}/_create/{_batch_id(lt, cluster, key)}", body=doc)
        except QueryError as exc:
            if "version_conflict" not in str(exc):
                raise
            prior = self.seen(lt, cluster, key)
            if prior is not None:
                return prior, True
            raise
        self.committed_batches += 1
        return response, False

    # -- reads -------------------------------------------------------------------------------------------

    def _indices(self, query: Any) -> str | None:
        names = sorted({self.index(t, c, "*") for t in query.logtypes for c in query.clusters})
        return ",".join(names) or None

    def _where(self, query: Any) -> dict[str, Any]:
        """The query's clusters, time range and selector as one bool filter."""
        lt: LogType = query.logtype
        keys = lt.query_keys()
        filters: list[dict[str, Any]] = [{"terms": {"cluster": list(query.clusters)}}]
        tkey = query.time_key
        if tkey not in keys:
            raise QueryError(f"time_range.field: {tkey!r} is not a time field of {lt.name}")
        tk = keys[tkey]
        bounds: dict[str, Any] = {}
        lower = "gt" if tkey == "generated_time" else "gte"
        for bound, op in ((query.start, lower), (query.end, "lte")):
            if bound is not None:
                bounds[op] = _time_value(bound, tk.kind)
        if bounds:
            bounds["format"] = "epoch_second" if tk.kind is Kind.EPOCH_S else DATE_FORMAT
            filters.append({"range": {tk.es_field: bounds}})
        if query.selector is not None:
            from ..query.sql import compile_to_es

            es = compile_to_es(query.selector, lt, text=query.selector_text)
            filters.append(_rewrite(es, lt, query.now or datetime.now(UTC)))
        restricted = query.restriction.selector(lt, query.clusters)
        if restricted is not None:
            from ..query.sql import compile_to_es

            filters.append(compile_to_es(restricted, lt))
        return {"bool": {"filter": filters}}

    def _search(self, query: Any, body: dict[str, Any], **params: Any) -> dict[str, Any] | None:
        indices = self._indices(query)
        if indices is None:
            return None
        params = {"ignore_unavailable": "true", "allow_no_indices": "true", **params}
        return self.request("POST", f"/{indices}/_search", params=params, body=body)

    def search(self, query: Any) -> SearchResult:
        lt: LogType = query.logtype
        sort = query.sort or [SortKey(lt.time_field, False)]
        keys = lt.query_keys()
        es_sort: list[dict[str, Any]] = []
        for s in sort:
            qk = keys.get(s.key)
            if qk is None:
                raise QueryError(f"sort: unknown field {s.key!r} for {lt.name}")
            if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
                raise QueryError(f"sort: cannot sort by {s.key!r}: it holds a list or an object")
            order = "desc" if s.descending else "asc"
            spec: dict[str, Any] = {"order": order, "missing": "_last"}
            path = nested_path(lt, qk.es_field)
            if path:
                spec["nested"] = {"path": path}
            es_sort.append({exact_field(lt, qk.es_field): spec})
        tie = "desc" if sort[0].descending else "asc"
        es_sort += [{SEQ_FIELD: {"order": tie}}, {ID_FIELD: {"order": tie}}]
        body: dict[str, Any] = {"query": self._where(query), "sort": es_sort, "size": query.size + 1,
                                "track_total_hits": bool(query.total_hits), "_source": {"excludes": list(_HIDDEN)}}
        after = query.after_key or {}
        if "searchFrom" in after:
            values = after["searchFrom"]
            if not isinstance(values, list) or len(values) != len(es_sort):
                raise QueryError("after_key.searchFrom does not match this query's sort; start again without it")
            body["search_after"] = values
        elif "startFrom" in after:
            offset = after["startFrom"]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise QueryError("after_key.startFrom: expected a non-negative integer")
            if offset + query.size + 1 > MAX_RESULT_WINDOW:
                raise QueryError(f"after_key.startFrom: offset paging stops at {MAX_RESULT_WINDOW} records; "
                                 "page on with the searchFrom after_key instead")
            body["from"] = offset
        result = self._search(query, body)
        if result is None:
            return SearchResult([], 0 if query.total_hits else None)
        hits = result["hits"]["hits"]
        total = result["hits"]["total"]["value"] if query.total_hits else None
        more = len(hits) > query.size
        hits = hits[: query.size]
        after_key = {"searchFrom": hits[-1]["sort"]} if more and hits else None
        items = query.restriction.withhold(lt, [h["_source"] for h in hits])
        return SearchResult(items, total, after_key)

    def run_over(self, query: Any, build: Any) -> Any:
        raise BackendError("SQL reads are not available on the OpenSearch backend; use its native methods",
                           status=501)

    def aggregate(self, query: Query, aggs: dict[str, Any]) -> Aggregated:
        """Elasticsearch aggregations over the query's records, run in OpenSearch."""
        return Aggregated(self._aggregate(query, aggs), "native")

    def _aggregate(self, query: Query, aggs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(aggs, dict):
            raise QueryError("aggregations: expected an object of name -> aggregation")
        lt: LogType = query.logtype
        wrapped = {name: _agg(lt, name, spec) for name, spec in aggs.items()}
        if not wrapped:
            return {}
        result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                      "aggs": {n: es for n, (es, _) in wrapped.items()}})
        if result is None:
            result = self._search_empty(lt, {n: es for n, (es, _) in wrapped.items()})
        got = result.get("aggregations", {})
        return {n: unwrap(got[n]) for n, (_, unwrap) in wrapped.items()}

    def _search_empty(self, lt: LogType, aggs: dict[str, Any]) -> dict[str, Any]:
        """Aggregations over no records (no clusters): run on an empty match so the shapes stay OpenSearch's."""
        self.ensure_ready()
        pattern = f"{self.prefix}{lt.index_prefix}.*"
        return self.request("POST", f"/{pattern},{self.batches_index}/_search",
                            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                            body={"query": {"bool": {"must_not": [{"match_all": {}}]}}, "size": 0, "aggs": aggs})

    def _groups(self, query: Any, sources: list[dict[str, Any]], subs: dict[str, Any]) -> list[dict[str, Any]]:
        """Every bucket of a composite aggregation (paged through), bounded by MAX_GROUPS."""
        out: list[dict[str, Any]] = []
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": 1000, "sources": sources}
            if after is not None:
                comp["after"] = after
            result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                          "aggs": {"g": {"composite": comp, "aggs": subs}}})
            if result is None:
                return out
            agg = result["aggregations"]["g"]
            out += agg["buckets"]
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return out
            if len(out) > MAX_GROUPS:
                raise QueryError(f"more than {MAX_GROUPS} groups; narrow the time range or the selector")

    def l3_flows(self, query: Query, offset: int) -> list[dict[str, Any]]:
        """Flow logs grouped by endpoint pair (Linseed's /flows), largest traffic first, one page + 1."""
        keys, sums = KEY, SUMS
        sources = [{k: {"terms": {"field": k, "missing_bucket": True}}} for k in keys]
        subs: dict[str, Any] = {c: {"sum": {"field": c}} for c in sums}
        subs |= {"enforced": {"terms": {"field": "policies.enforced_policies", "size": 1000}},
                 "pending": {"terms": {"field": "policies.pending_policies", "size": 1000}},
                 "domains": {"terms": {"field": "dest_domains", "size": 1000}},
                 "source_ips": {"terms": {"field": "source_ip", "size": 10}},
                 "dest_ips": {"terms": {"field": "dest_ip", "size": 10}}}
        rows = []
        for b in self._groups(query, sources, subs):
            row: dict[str, Any] = dict(b["key"])
            row |= {c: int(b[c]["value"] or 0) for c in sums}
            row["log_count"] = b["doc_count"]
            for name in ("enforced", "pending", "domains", "source_ips", "dest_ips"):
                row[name] = [x["key"] for x in b[name]["buckets"]]
            rows.append(row)
        rows.sort(key=lambda r: (-(r["bytes_in"] + r["bytes_out"]), *[(r[k] is None, r[k]) for k in keys]))
        return query.restriction.withhold_l3([l3_item(r) for r in rows[offset: offset + query.size + 1]])

    def flow_graph(self, query: Query, spec: GraphSpec) -> GraphRows:
        """Composite groups of GRAPH_KEYS (and the least domain of a net destination), folded in Python."""
        sources: list[dict[str, Any]] = [{k: {"terms": {"field": k, "missing_bucket": True}}} for k in GRAPH_KEYS]
        sources.append({"dest_domain": {"terms": {"missing_bucket": True, "script": {"lang": "painless", "source": (
            "doc['dest_type'].size() > 0 && doc['dest_type'].value == 'net' && doc['dest_domains'].size() > 0 "
            "? doc['dest_domains'][0] : null")}}}})
        subs = {"nf": {"sum": {"field": "num_flows"}}, "bi": {"sum": {"field": "bytes_in"}},
                "bo": {"sum": {"field": "bytes_out"}}}
        groups = []
        for b in self._groups(query, sources, subs):
            g = dict(b["key"])
            g |= {"nf": int(b["nf"]["value"] or 0), "b": int((b["bi"]["value"] or 0) + (b["bo"]["value"] or 0)),
                  "n": b["doc_count"]}
            groups.append(g)
        edges, hidden = fold(groups, spec, query.restriction.scoped)
        return GraphRows(edges, hidden, "native")

    def count(self, query: Query) -> int:
        indices = self._indices(query)
        if indices is None:
            return 0
        result = self.request("POST", f"/{indices}/_count", params={"ignore_unavailable": "true",
                                                                     "allow_no_indices": "true"},
                              body={"query": self._where(query)})
        return int(result["count"])

    def dismiss(self, query: Query, ids: list[str]) -> list[str]:
        """Set `dismissed: true` on the query's records with these ids (refreshed before returning)."""
        if not query.logtype.dismissable or len(query.clusters) != 1:
            raise QueryError(f"{query.logtype.name} records cannot be dismissed (one cluster of events at a time)")
        indices = self._indices(query)
        if indices is None or not ids:
            return []
        where = self._where(query)
        where["bool"]["filter"].append({"terms": {"id": list(ids)}})
        found = self.request("POST", f"/{indices}/_search", params={"ignore_unavailable": "true",
                                                                     "allow_no_indices": "true"},
                             body={"query": where, "size": 0, "aggs": {"ids": {"terms": {"field": "id",
                                                                                         "size": len(ids)}}}})
        present = {b["key"] for b in found["aggregations"]["ids"]["buckets"]}
        if present:
            self.request("POST", f"/{indices}/_update_by_query",
                         params={"refresh": "true", "conflicts": "proceed", "ignore_unavailable": "true",
                                 "allow_no_indices": "true"},
                         body={"query": where, "script": {"lang": "painless",
                                                          "source": "ctx._source.dismissed = true"}})
        return [i for i in ids if i in present]

    # -- the forwarders' feed ------------------------------------------------------------------------------

    def head_seq(self) -> int:
        return (time.time_ns() // 1_000_000) << _SEQ_SHIFT

    def safe_seq(self) -> int:
        """Below every write in flight in this process, and FEED_GRACE_MS behind the clock for the writes
        of other replicas (a write reserves its position before converting and bulk-writing)."""
        with self._inflight_lock:
            low = min(self._inflight, default=None)
        now = ((time.time_ns() // 1_000_000) - FEED_GRACE_MS) << _SEQ_SHIFT
        return min(now, low - 1) if low is not None else now

    def _feed_query(self, lt: LogType, after_seq: int, upto: int, where: Node | None) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [{"range": {SEQ_FIELD: {"gt": after_seq, "lte": upto}}}]
        if where is not None:
            from ..query.sql import compile_to_es

            filters.append(compile_to_es(where, lt))
        return {"bool": {"filter": filters}}

    def records_after(self, lt: LogType, after_seq: int, limit: int, *, upto: int | None = None,
                      where: Node | None = None) -> list[dict[str, Any]]:
        upto = self.safe_seq() if upto is None else upto
        if upto <= after_seq or limit <= 0:
            return []
        self.ensure_ready()
        result = self.request("POST", f"/{self.prefix}{lt.index_prefix}.*/_search",
                              params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                              body={"query": self._feed_query(lt, after_seq, upto, where), "size": limit,
                                    "sort": [{SEQ_FIELD: "asc"}], "track_total_hits": False})
        out = []
        for h in result["hits"]["hits"]:
            doc = h["_source"]
            seq = doc.pop(SEQ_FIELD)
            doc.pop(ID_FIELD, None)
            doc["_seq"], doc["_time"] = seq, _epoch_of(doc.get(lt.time_field))
            out.append(doc)
        return out

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        self.ensure_ready()
        result = self.request("POST", f"/{self.prefix}{lt.index_prefix}.*/_search",
                              params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                              body={"query": self._feed_query(lt, after_seq, 1 << 62, where), "size": 0,
                                    "track_total_hits": True, "aggs": {"t": {"min": {"field": "generated_time"}}}})
        oldest = result["aggregations"]["t"]["value"]
        return int(result["hits"]["total"]["value"]), (oldest / 1000 if oldest is not None else None)

    def field_values(self, query: Query, key: str, prefix: str, size: int) -> list[FieldValue]:
        """Filter hints: the commonest values of a key (starting with `prefix`, any case), count then value."""
        lt: LogType = query.logtype
        qk = lt.query_keys()[key]
        stringy = qk.kind in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST, Kind.IP, Kind.IP_LIST)
        terms: dict[str, Any] = {"field": exact_field(lt, qk.es_field), "order": [{"_count": "desc"}, {"_key": "asc"}]}
        if prefix and qk.kind in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST):
            terms["include"] = "".join(_ci(c) for c in prefix) + ".*"
            terms["size"] = size
        else:
            terms["size"] = MAX_GROUPS if prefix or not stringy else size
        es, unwrap = _agg(lt, "v", {"terms": terms}, check=False)
        result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                      "aggs": {"v": es}})
        if result is None:
            return []
        out = []
        for b in unwrap(result["aggregations"]["v"])["buckets"]:
            value = _hint_value(b, qk.kind)
            if value.lower().startswith(prefix.lower()):
                out.append(FieldValue(value, b["doc_count"]))
        out.sort(key=lambda x: (-x.count, x.value))
        return out[:size]

    # -- indices -----------------------------------------------------------------------------------------

    def _parse_index(self, name: str) -> tuple[LogType, str, str] | None:
        if not name.startswith(self.prefix):
            return None
        rest = name[len(self.prefix):]
        for lt in REGISTRY.values():
            head = lt.index_prefix + "."
            if rest.startswith(head):
                cluster, _, day = rest[len(head):].rpartition(".")
                if cluster and re.fullmatch(r"\d{8}", day):
                    return lt, cluster_of_index(cluster), day
        return None

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
        from ..logtypes import get

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
        return per.get(partition.cluster, 0)

    def stats(self) -> dict[str, Any]:
        try:
            parts = self.partitions()
        except (BackendError, QueryError):
            parts = []
        return {"backend": self.name, "url": _redact(self.url), "bytes": sum(p.bytes for p in parts),
                "partitions": len(parts), "records": sum(p.docs for p in parts),
                "committed_batches": self.committed_batches}

    def close(self) -> None:
        self.client.close()
        if self._http is not None:
            self._http.close()
        self.con.close()
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


# -- documents -----------------------------------------------------------------------------------------


def _doc_sql(lt: LogType) -> str:
    """One stored row as the document to index: what the embedded store returns plus margay's own fields.

    Reads `_docid`, the document id (see `_actions`).
    """
    parts = [f"{quote_ident(f.name)} := {time_sql(quote_ident(f.name), f.kind)}" for f in lt.fields if f.name != "id"]
    doc_id = '"_docid"'
    own = 'coalesce("id", ' + doc_id + ")" if "id" in lt.field_map else doc_id
    parts.append(f'"id" := {own}')
    parts.append('"cluster" := "cluster"')
    parts.append(f'"generated_time" := {time_sql(chr(34) + "generated_time" + chr(34), Kind.TIMESTAMP)}')
    if lt.time.kind is Kind.EPOCH_S and lt.name == "flows":
        parts.append(f'"@timestamp" := {quote_ident(lt.time_field)} * 1000')
    parts.append(f'"{SEQ_FIELD}" := "_seq", "{ID_FIELD}" := "_docid"')
    return "to_json(struct_pack(" + ", ".join(parts) + "))"


def _epoch_of(value: Any) -> float | None:
    """A stored time value (epoch seconds or RFC 3339 text) as epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _chunks(actions: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    out: list[list[tuple[int, bytes]]] = []
    size = BULK_CHUNK_BYTES + 1
    for a in actions:
        if size + len(a[1]) > BULK_CHUNK_BYTES and (not out or out[-1]):
            out.append([])
            size = 0
        out[-1].append(a)
        size += len(a[1])
    return [c for c in out if c]


def _line_numbers(body: bytes, conv: Converted) -> list[int]:
    """Line number of the n-th converted record (1-based n), as the Converter counted them."""
    lines = _nonblank_line_numbers(body)
    rows = body.split(b"\n")
    refused = {e.line for e in conv.errors if _check_line(rows[e.line - 1], conv.logtype.field_map) is not None}
    return [n for n in lines if n not in refused] if refused else lines


def _add_failures(response: dict[str, Any], body: bytes, conv: Converted, failures: dict[int, str]) -> None:
    lines = _line_numbers(body, conv)
    new = [LineError(lines[n - 1] if 0 < n <= len(lines) else n, None, f"refused by OpenSearch: {reason}")
           for n, reason in sorted(failures.items())]
    errors = sorted([*response.get("errors", []), *(e.as_dict() for e in new)], key=lambda e: e["line"])
    response["errors"] = errors
    response["succeeded"] = response.get("succeeded", 0) - len(new)
    response["failed"] = len({e["line"] for e in errors})


def _batch_id(lt: LogType, cluster: str, key: str) -> str:
    return hashlib.sha256(f"{cluster}/{lt.name}/{key}".encode()).hexdigest()


# -- query DSL -----------------------------------------------------------------------------------------

_LEAVES = ("term", "terms", "wildcard", "prefix", "range", "exists", "match", "match_phrase")


def _rewrite(node: Any, lt: LogType, now: datetime) -> Any:
    """Selector DSL for this store: whole-value text fields, relative times from the request's clock."""
    if isinstance(node, list):
        return [_rewrite(x, lt, now) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _LEAVES and isinstance(v, dict) and k != "exists":
            out[k] = {exact_field(lt, f) if f not in ("boost", "_name") else f:
                      (_absolute(body, now) if k == "range" else body) for f, body in v.items()}
        else:
            out[k] = _rewrite(v, lt, now)
    return out


def _absolute(bounds: Any, now: datetime) -> Any:
    """`now-15m` evaluated at the request's clock reading, as the embedded store does."""
    if not isinstance(bounds, dict):
        return bounds
    out = dict(bounds)
    for op in ("gt", "gte", "lt", "lte"):
        v = out.get(op)
        if isinstance(v, str) and v.startswith("now"):
            out[op] = parse_time(v, now).astimezone(UTC).isoformat().replace("+00:00", "Z")
            out["format"] = DATE_FORMAT
    return out


def _time_value(bound: datetime, kind: Kind) -> Any:
    if kind is Kind.EPOCH_S:
        return int(bound.timestamp())
    return bound.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _agg(lt: LogType, name: str, spec: Any, *, check: bool = True) -> tuple[dict[str, Any], Any]:
    """An aggregation for OpenSearch, and a function that turns its answer back into the requested shape.

    Fields are checked against the registry (as on the embedded store), text fields use their keyword
    sub-field, date histograms print keys as RFC 3339, and fields inside lists of objects are wrapped in
    nested / reverse_nested so doc counts still count records.
    """
    if check:
        kind, params, subs = _split(spec, name)
    else:
        kind, params = next((k, v) for k, v in spec.items() if k not in ("aggs", "aggregations"))
        subs = spec.get("aggs") or spec.get("aggregations") or {}
    params = dict(params) if isinstance(params, dict) else params
    path = None
    if isinstance(params, dict) and "field" in params:
        keys = lt.query_keys()
        fname = params["field"]
        if check and fname not in keys:
            raise QueryError(f"aggregation {name!r}: unknown field {fname!r} for {lt.name}")
        qk = keys.get(fname)
        es_field = qk.es_field if qk is not None else fname
        params["field"] = exact_field(lt, es_field)
        path = nested_path(lt, es_field)
        if qk is not None and qk.kind.is_time and kind in ("date_histogram", "min", "max") and "format" not in params:
            params["format"] = "strict_date_optional_time"
        if check and kind in METRICS and kind not in ("cardinality", "value_count") and qk is not None:
            if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON):
                raise QueryError(f"aggregation {name!r}: {kind} needs a single-valued field, {fname!r} is a list")
            if not (qk.kind.is_numeric or qk.kind.is_time):
                raise QueryError(f"aggregation {name!r}: {kind} needs a numeric or date field, {fname!r} is not")
    children = {n: _agg(lt, n, s, check=check) for n, s in subs.items()} if isinstance(subs, dict) else {}
    es: dict[str, Any] = {kind: params}
    if children and path is None:
        es["aggs"] = {n: c for n, (c, _) in children.items()}
    elif children:
        es["aggs"] = {"_records": {"reverse_nested": {}, "aggs": {n: c for n, (c, _) in children.items()}}}

    def fix_buckets(answer: dict[str, Any]) -> dict[str, Any]:
        for b in answer.get("buckets", []) if isinstance(answer.get("buckets"), list) else []:
            inner = b.pop("_records", None)
            if inner is not None:
                b["doc_count"] = inner["doc_count"]
                b.update({n: inner[n] for n in children})
            for n, (_, unwrap) in children.items():
                if n in b:
                    b[n] = unwrap(b[n])
        return answer

    if path is None:
        return es, fix_buckets
    if not children and kind == "terms":  # count records, not list elements
        es["aggs"] = {"_records": {"reverse_nested": {}}}
    return {"nested": {"path": path}, "aggs": {"_in": es}}, lambda answer: fix_buckets(answer["_in"])


def _hint_value(bucket: dict[str, Any], kind: Kind) -> str:
    key = bucket["key"]
    if kind is Kind.BOOL:
        return bucket.get("key_as_string", str(bool(key)).lower())
    if kind is Kind.EPOCH_S:
        return str(int(key) // 1000)
    return str(key)


def _ci(c: str) -> str:
    """One character of a case-insensitive Lucene regular expression."""
    if c.isalpha() and c.lower() != c.upper():
        return f"[{c.lower()}{c.upper()}]"
    return "\\" + c if c in '.?+*|{}[]()"\\#@&<>~' else c


def _reason(info: Any) -> str:
    if isinstance(info, dict):
        err = info.get("error", info)
        if isinstance(err, dict):
            cause = err.get("caused_by")
            text = f"{err.get('type', '')}: {err.get('reason', '')}".strip(": ")
            if isinstance(cause, dict) and cause.get("reason"):
                text += f" ({cause.get('reason')})"
            return text
        return str(err)
    return str(info) if info else ""


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


__all__ = ["OpenSearchBackend"]
