"""Ingest endpoints (Linseed paths): NDJSON bulk per log type, audit webhook EventLists, BIRD lines."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from zlib_ng import zlib_ng

from ..aggregate.ingest import aggregating, at_ingest
from ..errors import MargayError, ParseError
from ..ingest.native import bird_to_ndjson, eventlist_to_ndjson
from ..ingest.parse import Converted
from ..logtypes import REGISTRY, LogType
from ..names import valid_cluster
from .common import JSONResponse, error_response, header_cluster, inflate, read_raw

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")
MAX_REPORTED_ERRORS = 1000
# The store's ingest call holds its thread until the batch is committed, and small batches that arrive together
# wait for one group commit (store/duckdb/combiner.py). On asyncio's default executor (cores + 4 threads, shared
# with gunzip and every read) a group could hold at most ~5 batches however many agents send; a thread waiting
# for its group costs no CPU. The store bounds its own concurrent conversions.
INGEST_THREADS = 64
_INGEST = ThreadPoolExecutor(max_workers=INGEST_THREADS, thread_name_prefix="margay-ingest")


def bulk_status(response: dict[str, Any]) -> int:
    """Linseed's rule: 200 with the per-record errors in the body when any record was stored, 400 only when
    none was. Calico's Go client and its fluent-bit output retry every non-2xx answer, so a 400 after storing
    the good records would store them again on each retry."""
    return 200 if response.get("succeeded") or not response.get("failed") else 400


BATCH_DIGEST = "_batch"  # the key's batch digest, kept in its stored response and never answered


def batch_digest(body: bytes) -> str:
    """What tells one batch from another under one Idempotency-Key: the CRC-32 (zlib-ng's, ~GB/s) and length of
    its body as inflated, so a resend in another Content-Encoding is still the same batch."""
    return f"{zlib_ng.crc32(body):08x}-{len(body)}"


def _public(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != BATCH_DIGEST}


def _same_batch(prior: dict[str, Any], digest: str, key: str) -> dict[str, Any]:
    """A key's stored response, for a retry of its batch; a 409 for another batch under the same key (its
    records were silently dropped as a replay). Responses stored before digests were kept replay as before."""
    stored = prior.get(BATCH_DIGEST)
    if stored is not None and stored != digest:
        raise ParseError(f"Idempotency-Key {key[:200]!r} was used for another batch: send new records under a new "
                         "key (a retry must resend the same body)", status=409)
    return _public(prior)


def _blank(body: bytes) -> bool:
    """Whether a body holds only whitespace: `isspace` stops at the first other byte, where `strip()` copied a
    15 MB batch (~0.8 us a record)."""
    return not body or body.isspace()


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _bulk(request: Request, lt: LogType) -> JSONResponse:
    m = request.app.state.margay
    started = time.perf_counter()
    cluster = valid_cluster(m.write_cluster(request, valid_cluster(header_cluster(request), where="x-cluster-id"), lt),
                            where="the token's cluster")
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > 200:
        raise ParseError("Idempotency-Key: at most 200 characters")
    ctype = _content_type(request)
    native_bird = "bird" in lt.native_formats and ctype == "text/plain"
    native_eventlist = "eventlist" in lt.native_formats and ctype == "application/json"
    if ctype not in NDJSON_TYPES and not native_bird and not native_eventlist:
        allowed = "application/x-ndjson"
        if "bird" in lt.native_formats:
            allowed += " (or text/plain BIRD log lines)"
        if "eventlist" in lt.native_formats:
            allowed += " (or application/json EventList)"
        raise ParseError(f"Content-Type {ctype or 'missing'!r} is not accepted here: send {allowed}", status=415)
    m.guard_disk()
    limit = m.settings.max_body_bytes
    raw, encoding = await read_raw(request, limit)
    if key is not None:
        prior = m.backend.seen(lt, cluster, key)
        if prior is not None:  # a retry: answered from the key, once its body is known to be the same batch
            body = await asyncio.to_thread(inflate, raw, encoding, limit) if encoding else raw
            prior = _same_batch(prior, batch_digest(body), key)
            return JSONResponse(prior, headers={"idempotent-replayed": "true"}, status_code=bulk_status(prior))
    digest = ""  # the batch's digest, stored with its key's response (set where the body is inflated)
    extra_errors: list[Any] = []
    noise = 0
    throttled, kept = 0, []

    def respond(conv: Converted) -> dict[str, Any]:
        errors = sorted([*extra_errors, *conv.errors], key=lambda e: e.line)
        response: dict[str, Any] = {
            "total": conv.total + len(extra_errors) + throttled, "succeeded": conv.succeeded + throttled,
            "failed": len({e.line for e in errors}),
            "errors": [e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]],
        }
        if native_bird:
            response["dropped_noise"] = noise
        if len(errors) > MAX_REPORTED_ERRORS:
            response["errors_truncated"] = len(errors) - MAX_REPORTED_ERRORS
        if response["total"] == 0 and not noise:
            raise ParseError("the body holds no records: send one JSON object per line")
        if key is not None:
            response[BATCH_DIGEST] = digest
        return response

    if native_bird or native_eventlist or lt.latest_of or lt.envelope or aggregating(m, lt):
        body = await asyncio.to_thread(inflate, raw, encoding, limit) if encoding else raw
        if key is not None:
            digest = batch_digest(body)
        if native_bird:
            body, extra_errors, _lines, noise = bird_to_ndjson(
                body, host=request.query_params.get("host"), ip_version=request.query_params.get("ip_version"))
        elif native_eventlist:
            converted = eventlist_to_ndjson(body)
            if converted is None:
                raise ParseError("expected an audit.k8s.io/v1 EventList object (or send NDJSON events)")
            body = converted
        if _blank(body) and not noise and not extra_errors:
            raise ParseError("the body holds no records: send one JSON object per line")
        if lt.latest_of:  # Linseed's hourly write throttle per identity (throttle.py); counted as stored
            body, throttled, kept = m.throttle.admit(lt, cluster, body, m.clock.now())
            if throttled:  # counted, never silent
                m.metrics.inc("margay_dropped_records_total", throttled, reason="throttled", type=lt.name,
                              cluster=cluster)
            if throttled and _blank(body):
                return JSONResponse({"total": throttled, "succeeded": throttled, "failed": 0, "errors": []})
        if lt.envelope:  # Linseed's threat-feed bulk: {"id", "data": {...}} per line
            from ..detect.push import unwrap

            body = unwrap(body, lt.envelope)
        body = await at_ingest(m, lt, cluster, body)  # aggregated first when configured for the cluster
        call: Callable[[], Any] = partial(m.backend.ingest, lt, cluster, body, key=key, now=m.clock.now(),
                                          respond=respond)
    else:
        # NDJSON as sent (every fleet agent's batch): the ingest thread inflates and stores it in one hand-off.
        # Inflating on asyncio's default executor first cost each request a second trip through the event loop.
        def inflate_and_ingest() -> Any:
            nonlocal digest
            body = inflate(raw, encoding, limit)
            if _blank(body):
                raise ParseError("the body holds no records: send one JSON object per line")
            if key is not None:
                digest = batch_digest(body)
            return m.backend.ingest(lt, cluster, body, key=key, now=m.clock.now(), respond=respond)

        call = inflate_and_ingest

    response, replayed = await asyncio.get_running_loop().run_in_executor(_INGEST, contextvars.copy_context().run, call)
    if key is not None:  # (replayed: a retry committed meanwhile by a request beside this one)
        response = _same_batch(response, digest, key) if replayed else _public(response)
    if replayed:
        return JSONResponse(response, headers={"idempotent-replayed": "true"}, status_code=bulk_status(response))
    if kept:
        refused = ({n for n, _ in kept} if "errors_truncated" in response
                   else {e["line"] for e in response["errors"]})
        m.throttle.mark(lt, cluster, kept, refused, m.clock.now())
    m.metrics.inc("margay_records_accepted_total", response["succeeded"], type=lt.name, cluster=cluster)
    m.metrics.inc("margay_records_rejected_total", response["failed"], type=lt.name, cluster=cluster)
    status = bulk_status(response)
    outcome = "ok" if not response["failed"] else "partial" if status == 200 else "rejected"
    m.metrics.inc("margay_ingest_batches_total", type=lt.name, outcome=outcome)
    m.metrics.observe("margay_ingest_seconds", time.perf_counter() - started, type=lt.name)
    return JSONResponse(response, status_code=status)


def bulk_paths() -> dict[str, LogType]:
    """Every bulk route's path and its log type."""
    # Calico's fluent-bit output (and Linseed behind Guardian) posts under an /ingestion prefix.
    return {prefix + lt.bulk_path: lt for lt in REGISTRY.values() for prefix in ("/api/v1", "/ingestion/api/v1")}


def routes() -> list[Route]:
    out = []
    for path, lt in bulk_paths().items():
        async def endpoint(request: Request, lt: LogType = lt) -> JSONResponse:
            return await _bulk(request, lt)
        name = f"bulk_{lt.name}" if path.startswith("/api/") else f"ingestion_bulk_{lt.name}"
        out.append(Route(path, endpoint, methods=["POST"], name=name))
    return out


class BulkRoutes:
    """ASGI middleware, innermost: a POST to a bulk path goes straight to its endpoint, past Starlette's
    exception middleware, the router's scan of every route and the route's request wrapper (a fleet's agents
    send many small batches, and each paid them on the event loop). Authentication and the security headers
    (the middleware outside this one) are unchanged; a MargayError gets the same envelope as from the app's
    handler, and anything else goes up to the app's error handler as from the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths = bulk_paths()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lt = self.paths.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if lt is None or scope.get("root_path"):  # a root path: the router's own path matching
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {}
        try:
            response: JSONResponse = await _bulk(Request(scope, receive, send), lt)
        except MargayError as exc:
            response = error_response(exc)
        await response(scope, receive, send)
