"""Scroll and point-in-time on /es/: paging contexts that keep the reader's grant, on both engines.

A context is opened by a search with `?scroll=` (answer `_scroll_id`), by `POST /<index>/_search/point_in_time`
(OpenSearch) or `POST /<index>/_pit` (Elasticsearch). It holds the read plans resolved at opening (so a
namespace-scoped reader's restriction stays exactly as it was: a later request cannot widen it, and only
the same caller may use the context), and a snapshot: the store's `margay_seq` head at opening, so records
written later never appear in it. Pages are read through Backend.es_search with the caller's sort plus
the store-wide tie-breaker (`margay_seq`, `margay_id`), continued by `search_after` — the same request on
both engines. Server state is bounded: at most `LIMIT` open contexts (429 past it), a kept request of at
most MAX_KEPT_BODY, and each expires after its keep-alive on the injected clock (at most 24 h), renewed by
each use.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import Forbidden, MargayError, NotFound, QueryError
from ..query.es.request import query_params_into
from ..store.backend import EsAnswer, EsPlan
from ..store.mapping import ID_FIELD, SEQ_FIELD
from . import es

LIMIT = 500  # open scroll and point-in-time contexts (OpenSearch's default search.max_open_scroll_context)
MAX_KEEP_ALIVE = timedelta(hours=24)
MAX_KEPT_BODY = 256 * 1024  # a scroll keeps its request: LIMIT of them stay well within memory
TIE = [{SEQ_FIELD: {"order": "asc"}}, {ID_FIELD: {"order": "asc"}}]


class TooManyContexts(MargayError):
    status = 429


class ContextMissing(NotFound):
    """A context that expired, was closed, never existed or is another caller's."""


def keep_alive(raw: Any, what: str) -> timedelta:
    """An Elasticsearch time value (`1m`, `30s`, `500ms`, `2h`, `1d`)."""
    m = re.fullmatch(r"\s*(\d+)\s*(d|h|m|s|ms|micros|nanos)\s*", str(raw or ""))
    if not m:
        raise QueryError(f"[{what}]: expected a time value such as 1m or 30s, got {str(raw)[:40]!r}")
    n, unit = int(m.group(1)), m.group(2)
    span = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n), "s": timedelta(seconds=n),
            "ms": timedelta(milliseconds=n), "micros": timedelta(microseconds=n),
            "nanos": timedelta(microseconds=n // 1000)}[unit]
    if span > MAX_KEEP_ALIVE:
        raise QueryError(f"Keep alive for request ({raw}) is too large. It must be less than ({MAX_KEEP_ALIVE}). "
                         "This limit can be set by changing the [search.max_keep_alive] cluster level setting.")
    return span


@dataclass
class Context:
    owner: Any  # the caller's identity: only they may use it
    plans: list[EsPlan]
    snapshot: int  # margay_seq head at opening
    keep: timedelta
    expires: datetime
    kind: str  # "scroll" or "pit"
    body: dict[str, Any] = field(default_factory=dict)  # scroll: the search being paged
    after: list[Any] | None = None  # scroll: the last hit's sort values
    as_int: bool = False


class Contexts:
    """The open contexts of one app: bounded in number, expiring on the clock."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._open: dict[str, Context] = {}
        self._lock = threading.Lock()

    def _purge(self, now: datetime) -> None:
        for k in [k for k, c in self._open.items() if c.expires <= now]:
            del self._open[k]

    def add(self, ctx: Context, now: datetime) -> str:
        with self._lock:
            self._purge(now)
            if len(self._open) >= self.limit:
                raise TooManyContexts(f"Trying to create too many scroll contexts. Must be less than or equal to: "
                                      f"[{self.limit}]. Close contexts you no longer need (DELETE /_search/scroll, "
                                      "DELETE /_search/point_in_time) or wait for their keep-alive to expire.")
            key = secrets.token_urlsafe(24)
            self._open[key] = ctx
            return key

    def get(self, key: str, owner: Any, kind: str, now: datetime) -> Context:
        with self._lock:
            self._purge(now)
            ctx = self._open.get(key)
        if ctx is None or ctx.owner != owner or ctx.kind != kind:  # another caller's is as missing as a stale one
            raise ContextMissing(f"No search context found for id [{key[:100]}]")
        return ctx

    def close(self, keys: list[str] | None, owner: Any, kind: str, now: datetime) -> list[str]:
        """Close the caller's contexts named (None: all of theirs); the keys closed."""
        with self._lock:
            self._purge(now)
            mine = [k for k, c in self._open.items() if c.owner == owner and c.kind == kind
                    and (keys is None or k in keys)]
            for k in mine:
                del self._open[k]
            return mine

    def __len__(self) -> int:
        return len(self._open)


def paged_body(body: dict[str, Any], snapshot: int, after: list[Any] | None) -> dict[str, Any]:
    """The request an engine answers for one page: the snapshot as a filter, the tie-breaker sort."""
    out = {k: v for k, v in body.items() if k not in ("search_after", "pit", "from")}
    query = body.get("query")
    out["query"] = {"bool": {"must": [query] if query else [],
                             "filter": [{"range": {SEQ_FIELD: {"lte": snapshot}}}]}}
    sort = body.get("sort")
    user = [] if sort is None else sort if isinstance(sort, list) else \
        [{k: v} for k, v in sort.items()] if isinstance(sort, dict) else [sort]
    user = [s for s in user if s not in ("_doc", {"_doc": "asc"}, {"_doc": {"order": "asc"}})]  # _doc: the tie
    out["sort"] = user + TIE
    if after is not None:
        out["search_after"] = after
    return out


def scroll_page(m: Any, ctx: Context, first: bool) -> EsAnswer:
    body = paged_body(ctx.body, ctx.snapshot, ctx.after)
    if not first:
        body.pop("aggs", None)
        body.pop("aggregations", None)
    answer: EsAnswer = m.backend.es_search(ctx.plans, body, now=m.clock.now(), total_as_int=ctx.as_int)
    if answer.status >= 300:
        return answer
    hits = answer.body.get("hits", {}).get("hits", [])
    if hits:
        ctx.after = hits[-1].get("sort")
    n_user = len(body["sort"]) - len(TIE)
    for h in hits:
        if n_user:
            h["sort"] = h.get("sort", [])[:n_user]
        else:
            h.pop("sort", None)
    return answer


def open_scroll(m: Any, cx: Contexts, owner: Any, plans: list[EsPlan], body: dict[str, Any], scroll: str,
                as_int: bool) -> EsAnswer:
    if body.get("search_after") is not None:
        raise QueryError("[search_after] cannot be used in a scroll context")
    if body.get("from"):
        raise QueryError("using [from] is not allowed in a scroll context")
    if len(orjson.dumps(body)) > MAX_KEPT_BODY:
        raise QueryError(f"a scroll's search body is kept until it expires: at most {MAX_KEPT_BODY // 1024} KiB")
    now = m.clock.now()
    span = keep_alive(scroll, "scroll")
    ctx = Context(owner, plans, m.backend.head_seq(), span, now + span, "scroll", body=body, as_int=as_int)
    answer = scroll_page(m, ctx, first=True)
    if answer.status >= 300:
        return answer
    key = cx.add(ctx, now)
    return EsAnswer(answer.status, {"_scroll_id": key, **answer.body})


def still_granted(m: Any, cx: Contexts, owner: Any, key: str, ctx: Context, now: datetime) -> None:
    """The caller's grant asked again at every use of a context: one whose clusters or namespaces it no longer
    covers as at the opening is closed, and the use refused (a revoked reader kept paging, and searching in a
    point in time, for as long as they renewed its keep-alive). A grant widened since changes nothing."""
    for pl in ctx.plans:
        clusters = list(pl.days)
        if not clusters:
            continue
        try:
            fresh = m.access.plan_read(owner, [pl.lt], clusters, named=False)
        except Forbidden:
            fresh = None
        if fresh is None or set(fresh.clusters) != set(clusters) or any(
                fresh.scoped.get(c) != pl.restriction.scoped.get(c) for c in clusters):
            cx.close([key], owner, ctx.kind, now)
            raise Forbidden(f"the caller's access changed since this {'scroll' if ctx.kind == 'scroll' else 'point in time'}"
                            " was opened: it is closed; open a new one")


def next_scroll(m: Any, cx: Contexts, owner: Any, key: str, scroll: Any) -> EsAnswer:
    now = m.clock.now()
    ctx = cx.get(key, owner, "scroll", now)
    still_granted(m, cx, owner, key, ctx, now)
    if scroll is not None:
        ctx.keep = keep_alive(scroll, "scroll")
    ctx.expires = now + ctx.keep
    answer = scroll_page(m, ctx, first=False)
    return EsAnswer(answer.status, {"_scroll_id": key, **answer.body})


def open_pit(m: Any, cx: Contexts, owner: Any, plans: list[EsPlan], keep: Any) -> tuple[str, datetime]:
    now = m.clock.now()
    span = keep_alive(keep, "keep_alive")
    key = cx.add(Context(owner, plans, m.backend.head_seq(), span, now + span, "pit"), now)
    return key, now


def pit_search(m: Any, cx: Contexts, owner: Any, body: dict[str, Any], as_int: bool) -> EsAnswer:
    """A search in a point in time: its indices, grant and snapshot; hits sorted by the caller's sort and the
    tie-breaker, whose values stay in each hit's `sort` (pass the last one back as `search_after`)."""
    pit = body.get("pit")
    if not isinstance(pit, dict) or not isinstance(pit.get("id"), str):
        raise QueryError("[pit] must be an object with an [id]")
    now = m.clock.now()
    ctx = cx.get(pit["id"], owner, "pit", now)
    still_granted(m, cx, owner, pit["id"], ctx, now)
    if pit.get("keep_alive") is not None:
        ctx.keep = keep_alive(pit["keep_alive"], "keep_alive")
    ctx.expires = now + ctx.keep
    after = body.get("search_after")
    if after is not None and not isinstance(after, list):
        raise QueryError("[search_after] must be a list of sort values")
    paged = paged_body(body, ctx.snapshot, after)
    answer: EsAnswer = m.backend.es_search(ctx.plans, paged, now=now, total_as_int=as_int)
    if answer.status >= 300:
        return answer
    return EsAnswer(answer.status, {"pit_id": pit["id"], **answer.body})


# -- endpoints ------------------------------------------------------------------------------------------
_MAKE = threading.Lock()


def contexts(request: Request) -> Contexts:
    state = request.app.state
    with _MAKE:
        if getattr(state, "es_contexts", None) is None:
            state.es_contexts = Contexts()
    cx: Contexts = state.es_contexts
    return cx


@es._handler
async def search(request: Request) -> Response:
    """`_search`, also opening a scroll (`?scroll=`) or searching in a point in time (`"pit"` in the body)."""
    m = request.app.state.margay
    qp = request.query_params
    pattern = request.path_params.get("index")
    body = query_params_into(await es._json(request), qp)
    as_int = qp.get("rest_total_hits_as_int") == "true"
    who = m.caller(request)
    if "pit" in body:
        if pattern is not None:
            raise QueryError("[indices] cannot be used with point in time. Do not specify any index with point in time.")
        answer = await asyncio.to_thread(pit_search, m, contexts(request), who, body, as_int)
    elif "scroll" in qp:
        def run() -> EsAnswer:
            plans = es._plans(m, request, es._targets(m, request, pattern or "_all"), body)
            return open_scroll(m, contexts(request), who, plans, body, qp["scroll"], as_int)
        answer = await asyncio.to_thread(run)
    else:
        answer = await asyncio.to_thread(es.run_search, m, request, pattern or "_all", body)
    return es.ESResponse(answer.body, status_code=answer.status)


async def _ids(request: Request, key: str) -> tuple[dict[str, Any], list[str] | None]:
    body = await es._json(request)
    raw = request.path_params.get("id") or body.get(key) or request.query_params.get(key)
    if raw == "_all":
        return body, None
    ids = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise QueryError(f"[{key}] is missing: name the context(s) to use or close")
    return body, ids


@es._handler
async def scroll(request: Request) -> Response:
    """`GET|POST /_search/scroll` (the next page) and `DELETE /_search/scroll` (close)."""
    m = request.app.state.margay
    who = m.caller(request)
    body, ids = await _ids(request, "scroll_id")
    if request.method == "DELETE":
        freed = contexts(request).close(ids, who, "scroll", m.clock.now())
        return _closed({"succeeded": True, "num_freed": len(freed)}, ids is not None and not freed)
    if ids is None or len(ids) != 1:
        raise QueryError("[scroll_id] must name one scroll context")
    keep = body.get("scroll", request.query_params.get("scroll"))
    answer = await asyncio.to_thread(next_scroll, m, contexts(request), who, ids[0], keep)
    return es.ESResponse(answer.body, status_code=answer.status)


@es._handler
async def pit_open(request: Request) -> Response:
    """`POST /<index>/_search/point_in_time?keep_alive=` (OpenSearch) or `POST /<index>/_pit?keep_alive=`."""
    m = request.app.state.margay
    who = m.caller(request)
    pattern = request.path_params["index"]
    await es._json(request)  # no body is expected: read (bounded) so that none is ignored unread
    keep = request.query_params.get("keep_alive")
    if keep is None:
        raise QueryError("[keep_alive] is required: e.g. ?keep_alive=1m")

    def run() -> tuple[str, datetime, int]:
        targets = es._targets(m, request, pattern)
        plans = es._plans(m, request, targets, {})
        key, at = open_pit(m, contexts(request), who, plans, keep)
        return key, at, sum(len(d) if d is not None else 1 for t in targets for d in t.days.values())

    key, at, shards = await asyncio.to_thread(run)
    if request.url.path.endswith("/_pit"):
        return es.ESResponse({"id": key})
    return es.ESResponse({"pit_id": key, "_shards": {"total": shards, "successful": shards, "skipped": 0,
                                                     "failed": 0}, "creation_time": int(at.timestamp() * 1000)})


@es._handler
async def pit_close(request: Request) -> Response:
    """`DELETE /_search/point_in_time[/_all]` (OpenSearch) or `DELETE /_pit` (Elasticsearch)."""
    m = request.app.state.margay
    who = m.caller(request)
    elastic = request.url.path.endswith("/_pit")
    if request.url.path.endswith("/_all"):
        await es._json(request)
        ids = None
    else:
        _, ids = await _ids(request, "id" if elastic else "pit_id")
    freed = contexts(request).close(ids, who, "pit", m.clock.now())
    if elastic:
        return _closed({"succeeded": True, "num_freed": len(freed)}, not freed)
    asked = freed if ids is None else ids
    return _closed({"pits": [{"pit_id": i, "successful": i in freed} for i in asked]}, bool(asked) and not freed)


def _closed(body: dict[str, Any], missing: bool) -> Response:
    """A close's answer: OpenSearch's body, and when nothing was closed its 404 with the error envelope too."""
    if not missing:
        return es.ESResponse(body)
    envelope = orjson.loads(es.es_error(ContextMissing("No search context found for the id(s) given")).body)
    return es.ESResponse({**body, **envelope}, status_code=404)


def routes() -> list[Route]:
    return [
        Route("/es/_search", search, methods=["GET", "POST"]),
        Route("/es/_search/scroll", scroll, methods=["GET", "POST", "DELETE"]),
        Route("/es/_search/scroll/{id}", scroll, methods=["GET", "POST", "DELETE"]),
        Route("/es/_search/point_in_time", pit_close, methods=["DELETE"]),
        Route("/es/_search/point_in_time/_all", pit_close, methods=["DELETE"]),
        Route("/es/_pit", pit_close, methods=["DELETE"]),
        Route("/es/{index}/_search/point_in_time", pit_open, methods=["POST"]),
        Route("/es/{index}/_pit", pit_open, methods=["POST"]),
        Route("/es/{index}/_search", search, methods=["GET", "POST"]),
    ]
