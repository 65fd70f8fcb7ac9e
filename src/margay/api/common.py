"""Shared request plumbing: JSON responses, bounded bodies, cluster headers, the error envelope."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from zlib_ng import zlib_ng  # zlib's API on zlib-ng: bodies inflate about 3x faster than with zlib

from ..errors import MargayError, ParseError, PayloadTooLarge, QueryError
from ..names import valid_cluster as valid_cluster  # the rule lives in names.py; re-exported for callers here
from .budget import charge

DEFAULT_CLUSTER = "cluster"
MULTI_CLUSTER = "_MULTI_"
_INFLATE_STEP = 8 << 20  # bytes inflated between two counts (a step's input tail is copied: not too small)
MAX_BODY_DEPTH = 48  # JSON levels of a query body: ES queries and aggregations from real clients use ~15


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


# Answers that mean "not now" (busy, store unavailable, disk below its floor) carry Retry-After: HTTP clients
# that honour it retry, and so does kube-apiserver's audit webhook (client-go retries a 429/5xx that has it).
RETRY_LATER = {429: "2", 503: "2", 507: "5"}


def error_response(exc: MargayError) -> JSONResponse:
    retry = RETRY_LATER.get(exc.status)
    return JSONResponse(exc.envelope(), status_code=exc.status, headers={"retry-after": retry} if retry else None)


def header_cluster(request: Request) -> str:
    """x-cluster-id as sent (default `cluster`); callers check it with valid_cluster unless it is _MULTI_."""
    return request.headers.get("x-cluster-id", "").strip() or DEFAULT_CLUSTER


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed when gzip/deflate, refused with 413 past `limit` bytes."""
    raw, encoding = await read_raw(request, limit)
    if not encoding:
        return raw
    return await asyncio.to_thread(_decompress, raw, encoding, limit)


async def read_raw(request: Request, limit: int) -> tuple[bytes, str]:
    """The request body as sent and its Content-Encoding ("" for none), refused with 413 past `limit` bytes or
    415 for an encoding other than gzip/deflate; `inflate` decodes it (in a worker thread: it is CPU)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the limit of {limit} bytes; "
                              "send smaller batches")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes; send smaller batches")
        charge(len(chunk))  # against the bytes every request holds at once (budget.py)
        chunks.append(chunk)
    encoding = request.headers.get("content-encoding", "").lower().strip()
    if encoding == "identity":
        encoding = ""
    if encoding not in ("", "gzip", "x-gzip", "deflate"):
        raise ParseError(f"unsupported Content-Encoding {encoding!r}: use gzip or none", status=415)
    return b"".join(chunks), encoding


def inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """The body `read_raw` returned, decompressed (blocking)."""
    return _decompress(raw, encoding, limit) if encoding else raw


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The inflated body: every member of a gzip body (RFC 1952 allows several back to back; reading only the
    first would drop the others under a 2xx), refused past `limit` bytes in all or with trailing bytes."""
    out: list[bytes] = []
    size = 0
    rest = body
    try:
        while True:
            d = zlib_ng.decompressobj(wbits=47 if encoding != "deflate" else 15)
            data = rest
            while True:  # in steps, each counted against the budget before the next is inflated
                want = min(_INFLATE_STEP, limit + 1 - size)
                chunk = d.decompress(data, want)
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes; "
                                          "send smaller batches")
                charge(len(chunk))
                out.append(chunk)
                data = d.unconsumed_tail
                if d.eof or (not data and len(chunk) < want):
                    break
            if not d.eof:
                raise ParseError(f"body is not valid {encoding}: the stream ends before its end")
            rest = d.unused_data
            if not rest.strip(b"\0"):  # some writers pad the last member with zeros
                return b"".join(out)
            if encoding == "deflate" or not rest.startswith(b"\x1f\x8b"):
                raise ParseError(f"body is not valid {encoding}: {len(rest)} bytes after its end")
    except zlib_ng.error as exc:  # type: ignore[misc]  # its stub declares `error` an instance, not a class
        raise ParseError(f"body is not valid {encoding}: {exc}") from None


async def json_body(request: Request, limit: int = 10 * 1024 * 1024) -> dict[str, Any]:
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", ""):
        raise ParseError(f"expected Content-Type application/json, got {ctype!r}", status=415)
    check_depth(body)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ParseError("request body must be a JSON object")
    return doc


def check_depth(body: bytes, what: str = "request body") -> None:
    """A 400 for JSON nesting deeper than any real query needs (its handling would recurse that deep)."""
    from ..ingest.screen import nests_deeper

    if nests_deeper(body, MAX_BODY_DEPTH):
        raise ParseError(f"{what} nests deeper than {MAX_BODY_DEPTH} levels of objects and arrays")


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=5)


_QUERY_PACKAGE = str(Path(__file__).resolve().parent.parent / "query") + os.sep
SHAPE_ERRORS = (TypeError, ValueError, ArithmeticError, AttributeError, KeyError, IndexError, RecursionError)


def shape_error(exc: BaseException) -> QueryError | None:
    """A QueryError (400) for an exception raised while query/ interpreted a request of the wrong shape.

    The query compilers and aggregators read untrusted JSON; a value of the wrong type deep inside it
    (`{"ids": {"values": true}}`) surfaces as a TypeError there. Only exceptions raised in query/ are
    converted, and each is logged with its traceback so that the missing check gets written.
    """
    if not isinstance(exc, SHAPE_ERRORS):
        return None
    tb = exc.__traceback__
    in_query = False
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_QUERY_PACKAGE):
            in_query = True
        tb = tb.tb_next
    if not in_query:
        return None
    logging.getLogger("margay.query").warning("request of the wrong shape reached the query compiler",
                                              exc_info=exc)
    what = "nests too deep" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {str(exc)[:200]}"
    return QueryError(f"malformed query or aggregation: {what}")
