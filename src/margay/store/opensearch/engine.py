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
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from ...errors import BackendError, QueryError
from ...ingest.parse import Converted, Converter, LineError, _check_line, _nonblank_line_numbers
from ...logtypes import Kind, LogType, quote_ident
from ..duckdb import connect
from ..duckdb.engine import CONVERSIONS
from ..mapping import ID_FIELD, SEQ_FIELD
from ..sql import field_parts, time_sql, with_extra
from .client import _SEQ_SHIFT, BULK_CHUNK_BYTES, RETRY_STATUS, _reason
from .es import EsPassthrough
from .feed import Feed
from .indices import Indices
from .latest import write_latest
from .reads import Reads

log = logging.getLogger(__name__)


class OpenSearchBackend(Reads, EsPassthrough, Feed, Indices):
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
        # Batches converted and written at once: the API calls ingest from many threads (api/ingest.py, for the
        # embedded store's group commits), so the bound it had from asyncio's default executor is kept here.
        self._writing = threading.BoundedSemaphore(CONVERSIONS)
        self._ready = False
        self.committed_batches = 0
        self._inflight: dict[int, int] = {}  # seq base -> writes in flight with it (the feed's watermark)
        self._inflight_lock = threading.Lock()
        self._last_base = 0

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
        with self._writing:
            return self._ingest(lt, cluster, body, key=key, now=now, respond=respond)

    def _ingest(self, lt: LogType, cluster: str, body: bytes, *, key: str | None, now: datetime,
                respond: Any) -> tuple[dict[str, Any], bool]:
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
            if lt.latest_of:  # one document per identity, the newest (latest.py)
                failures = write_latest(self.request, self._bulk, lambda day: self.index(lt, cluster, day),
                                        self.con, lt, cluster, conv, base, _doc_sql(lt))
            else:
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

    def close(self) -> None:
        self.client.close()
        if self._http is not None:
            self._http.close()
        self.converter.close()
        self.con.close()
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _doc_sql(lt: LogType) -> str:
    """One stored row as the document to index: what the embedded store returns plus margay's own fields.

    Reads `_docid`, the document id (see `_actions`).
    """
    parts = field_parts(lt)
    doc_id = '"_docid"'
    own = 'coalesce("id", ' + doc_id + ")" if "id" in lt.field_map else doc_id
    parts.append(f'"id" := {own}')
    parts.append('"cluster" := "cluster"')
    parts.append(f'"generated_time" := {time_sql(chr(34) + "generated_time" + chr(34), Kind.TIMESTAMP)}')
    if lt.epoch_timestamp:
        parts.append(f'"@timestamp" := {quote_ident(lt.time_field)} * 1000')
    parts.append(f'"{SEQ_FIELD}" := "_seq", "{ID_FIELD}" := "_docid"')
    return with_extra("to_json(struct_pack(" + ", ".join(parts) + "))")


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
