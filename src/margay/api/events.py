"""Dismissing intrusion-detection events (Linseed's PUT /events/bulk): the engine marks them
(Backend.dismiss) so that every later read, on every path, sees `dismissed: true`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from .common import JSONResponse, read_body
from .logs import _timed, build_query

MAX_IDS = 1000
MAX_DISMISS_BODY = 1024 * 1024  # 1,000 ids of up to ~1 kB each, with room to spare


async def bulk_dismiss(request: Request) -> JSONResponse:
    """PUT /api/v1/events/bulk: dismiss events by id; body `{"ids": [...]}` or NDJSON/array of `{id}`."""
    return await _bulk_ids(request, "dismiss", "updated")


async def bulk_delete(request: Request) -> JSONResponse:
    """DELETE /api/v1/events/bulk: delete events by id (Linseed's Delete; verb `delete` on events), same
    bodies as dismissal; the ids not found among the events the caller may read are the errors (404)."""
    return await _bulk_ids(request, "delete", "deleted")


async def _bulk_ids(request: Request, action: str, done_key: str) -> JSONResponse:
    m = request.app.state.margay
    raw = await read_body(request, MAX_DISMISS_BODY)
    ids = _ids(raw)
    if not ids:
        raise QueryError(f"give the ids to {action}: {{\"ids\": [\"...\"]}} or NDJSON lines of {{\"id\": \"...\"}}")
    if len(ids) > MAX_IDS:
        raise QueryError(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    lt = REGISTRY["events"]
    body: dict[str, Any] = {"max_page_size": 0}
    query = build_query(request, body, lt)  # RBAC: the events it touches are those the caller may read
    if len(query.clusters) != 1:
        raise QueryError(f"{action} events of one cluster at a time (x-cluster-id)")
    cluster = query.clusters[0]
    if action == "delete":
        m.authorize_verb(request, lt, cluster, "delete")
    fn = m.backend.delete if action == "delete" else m.backend.dismiss
    present = set(await _timed(request, f"events_{action}", fn, query, ids))
    ok = [i for i in ids if i in present]
    errors = [{"id": i, "status": 404, "reason": "no event with this id in cluster " + cluster} for i in ids
              if i not in present]
    return JSONResponse({"total": len(ids), "succeeded": len(ok), "failed": len(errors), "errors": errors,
                         done_key: [{"id": i, "status": 200} for i in ok]})


def _ids(raw: bytes) -> list[str]:
    text = raw.strip()
    if not text:
        return []
    docs: list[Any] = []
    try:
        docs = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        try:
            docs = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise QueryError(f"body is neither JSON nor NDJSON: {exc}") from None
    out: list[str] = []

    def one(x: Any, where: str) -> None:
        if isinstance(x, dict):
            x = x.get("id")
        if not isinstance(x, str | int) or isinstance(x, bool) or not str(x):
            raise QueryError(f"{where}: expected an event id (a string), or an object with one: {{\"id\": \"...\"}}")
        out.append(str(x))

    for n, doc in enumerate(docs, start=1):
        if isinstance(doc, dict) and "ids" in doc:
            if not isinstance(doc["ids"], list):
                raise QueryError("ids: expected a list of event ids")
            for i, x in enumerate(doc["ids"]):
                one(x, f"ids[{i}]")
        elif isinstance(doc, list):
            for i, x in enumerate(doc):
                one(x, f"[{i}]")
        else:
            one(doc, f"line {n}")
    return list(dict.fromkeys(out))


def routes() -> list[Route]:
    return [Route("/api/v1/events/bulk", bulk_dismiss, methods=["PUT"]),
            Route("/api/v1/events/bulk", bulk_delete, methods=["DELETE"])]


__all__ = ["routes"]
