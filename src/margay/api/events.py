"""Dismissing intrusion-detection events (Linseed's PUT /events/bulk) over an append-only store.

The store never rewrites a Parquet file, so a dismissal is kept as a small durable overlay: one fsync'd
NDJSON line per dismissed (cluster, id) in `<data>/events/dismissed.ndjson`, read back at start-up. Every
events read applies it in the query, not in Python: a selector leaf on `dismissed` is rewritten to
`(dismissed = true OR (cluster = c AND id IN {...}))` (or its negation), and the items returned carry
`dismissed: true`. The rewrite uses the selector AST, so it works on every backend. Only events with a
stored `id` can be dismissed (threat-feed and GlobalAlert events have one); others are reported as errors.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.selector import And, Compare, InSet, Node, Not, Or
from .common import JSONResponse, read_body
from .logs import _timed, build_query

MAX_IDS = 1000
MAX_DISMISS_BODY = 1024 * 1024  # 1,000 ids of up to ~1 kB each, with room to spare


class Dismissals:
    """The durable set of dismissed event ids per cluster."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "events" / "dismissed.ndjson"
        self._lock = threading.Lock()
        self._by_cluster: dict[str, set[str]] = {}
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line after a crash was never acknowledged
                if isinstance(doc, dict) and isinstance(doc.get("cluster"), str) and isinstance(doc.get("id"), str):
                    self._by_cluster.setdefault(doc["cluster"], set()).add(doc["id"])

    def add(self, cluster: str, ids: list[str]) -> list[str]:
        """Record ids as dismissed (durably, before returning); returns those that were new."""
        with self._lock:
            have = self._by_cluster.setdefault(cluster, set())
            new = [i for i in dict.fromkeys(ids) if i not in have]
            if not new:
                return []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = b"".join(orjson.dumps({"cluster": cluster, "id": i}) + b"\n" for i in new)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            have.update(new)
            return new

    def ids(self, cluster: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_cluster.get(cluster, ()))

    def contains(self, cluster: str | None, id_: Any) -> bool:
        with self._lock:
            return isinstance(id_, str) and id_ in self._by_cluster.get(cluster or "", ())


def _dismissed_now(d: Dismissals, clusters: list[str]) -> Node:
    """`dismissed` as the overlay sees it: stored true, or the (cluster, id) pair dismissed since."""
    parts: list[Node] = [Compare("dismissed", "=", "true")]
    for c in clusters:
        ids = sorted(d.ids(c))
        if ids:
            parts.append(And((Compare("cluster", "=", c), InSet("id", tuple(ids)))))
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1")


def _rewrite(node: Node, now: Node) -> Node:
    if isinstance(node, And):
        return And(tuple(_rewrite(n, now) for n in node.items))
    if isinstance(node, Or):
        return Or(tuple(_rewrite(n, now) for n in node.items))
    if isinstance(node, Not):
        return Not(_rewrite(node.item, now))
    if isinstance(node, Compare) and node.key == "dismissed" and node.op in ("=", "!="):
        wants_true = _truthy(node.value) == (node.op == "=")
        return now if wants_true else Not(now)
    if isinstance(node, InSet) and node.key == "dismissed":
        vals = {_truthy(v) for v in node.values}
        if node.negated:
            vals = {True, False} - vals
        if vals == {True, False}:
            return Or((now, Not(now)))
        if not vals:
            return And((now, Not(now)))
        return now if True in vals else Not(now)
    return node


def apply_dismissals(request: Request, query: Any) -> None:
    """Make an events query see the overlay (called by every events read)."""
    d: Dismissals | None = getattr(request.app.state, "dismissals", None)
    if d is None or query.selector is None or not any(d.ids(c) for c in query.clusters):
        return
    query.selector = _rewrite(query.selector, _dismissed_now(d, query.clusters))


def mark_dismissed(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    d: Dismissals | None = getattr(request.app.state, "dismissals", None)
    if d is None:
        return items
    for it in items:
        if not it.get("dismissed") and d.contains(it.get("cluster"), it.get("id")):
            it["dismissed"] = True
    return items


async def bulk_dismiss(request: Request) -> JSONResponse:
    """PUT /api/v1/events/bulk: dismiss events by id; body `{"ids": [...]}` or NDJSON/array of `{id}`."""
    m = request.app.state.margay
    raw = await read_body(request, MAX_DISMISS_BODY)
    ids = _ids(raw)
    if not ids:
        raise QueryError("give the ids to dismiss: {\"ids\": [\"...\"]} or NDJSON lines of {\"id\": \"...\"}")
    if len(ids) > MAX_IDS:
        raise QueryError(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    lt = REGISTRY["events"]
    body: dict[str, Any] = {"max_page_size": 0}
    query = build_query(request, body, lt)  # RBAC: dismissing needs read access to the cluster's events
    if len(query.clusters) != 1:
        raise QueryError("dismiss events of one cluster at a time (x-cluster-id)")
    cluster = query.clusters[0]
    query.selector = InSet("id", tuple(ids))
    query.size = len(ids)

    def found() -> set[str]:
        return {str(r[0]) for r in m.backend.run_over(query, lambda run, src, ps: run(
            f"SELECT DISTINCT \"id\" {src}", ps))}  # noqa: S608 - src is built by the compiler

    present = await _timed(request, "events_dismiss", found)
    ok = [i for i in ids if i in present]
    request.app.state.dismissals.add(cluster, ok)
    errors = [{"id": i, "status": 404, "reason": "no event with this id in cluster " + cluster} for i in ids
              if i not in present]
    return JSONResponse({"total": len(ids), "succeeded": len(ok), "failed": len(errors), "errors": errors,
                         "updated": [{"id": i, "status": 200} for i in ok]})


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
    return [Route("/api/v1/events/bulk", bulk_dismiss, methods=["PUT"])]


__all__ = ["Dismissals", "apply_dismissals", "mark_dismissed", "routes"]
