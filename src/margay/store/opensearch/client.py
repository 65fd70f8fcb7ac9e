"""The connection to an OpenSearch/Elasticsearch cluster, shared by the engine's parts."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from ...errors import BackendError, QueryError
from ...logtypes import REGISTRY, LogType
from ..mapping import ID_FIELD, SEQ_FIELD, template_for, template_name

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


class Client:
    """The connection to the cluster and what the engine's parts share (set by OpenSearchBackend.__init__)."""

    url: str
    prefix: str
    refresh: str
    retries: int
    timeout: float
    client: OpenSearch
    batches_index: str
    committed_batches: int
    _auth: tuple[str, str] | None
    _headers: dict[str, str]
    _verify: Any
    _http: Any
    _ready: bool
    _inflight: dict[int, int]
    _inflight_lock: threading.Lock
    _last_base: int
    name = "opensearch"

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
        # A new index answers 503 until its shard has started: wait for it (another replica may have made it).
        self.request("GET", f"/_cluster/health/{self.batches_index}",
                     params={"wait_for_status": "yellow"})  # (a `timeout` param would be the client's own)
        self._ready = True

    def index(self, lt: LogType, cluster: str, day: str) -> str:
        """The daily index of a cluster's records; `day` may be `*` for all of them."""
        return f"{self.prefix}{lt.index_prefix}.{index_cluster(cluster)}.{day}"

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


def _reason(info: Any) -> str:
    if isinstance(info, dict):
        err = info.get("error", info)
        if isinstance(err, dict):
            cause = err.get("caused_by")
            text = f"{err.get('type', '')}: {err.get('reason', '')}".strip(": ")
            if isinstance(cause, dict) and cause.get("reason"):
                text += f" ({cause.get('reason')})"
            failed = err.get("failed_shards") or []
            if not cause and failed and isinstance(failed[0], dict):  # "all shards failed": say why
                text += f" ({_reason({'error': failed[0].get('reason')})})"
            return text
        return str(err)
    return str(info) if info else ""


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)



