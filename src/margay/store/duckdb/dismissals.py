"""Dismissed events over an append-only store (Linseed's PUT /events/bulk on the embedded engine).

The store never rewrites a Parquet file, so a dismissal is kept as a small durable overlay: one fsync'd
NDJSON line per dismissed (cluster, id) in `<data>/events/dismissed.ndjson`, read back at start-up. Every
read of a dismissable type applies it in the query, not in Python: a selector leaf on `dismissed` is
rewritten to `(dismissed = true OR (cluster = c AND id IN {...}))` (or its negation), and the records
returned carry `dismissed: true`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson

from ...query.model import Query
from ...query.selector import And, Compare, InSet, Node, Not, Or


class Dismissals:
    """The durable set of dismissed event ids per cluster."""

    def __init__(self, data_dir: Path, name: str = "dismissed.ndjson") -> None:
        self.path = Path(data_dir) / "events" / name
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

    def clusters(self) -> list[str]:
        with self._lock:
            return sorted(c for c, ids in self._by_cluster.items() if ids)

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



def overlay(d: Dismissals, query: Query, deleted: Dismissals | None = None) -> Node | None:
    """The query's selector as the overlay sees it (unchanged when nothing was dismissed), without the
    records deleted since they were stored (`deleted`: the same kind of id log)."""
    selector = query.selector
    if query.logtype.dismissable and selector is not None and any(d.ids(c) for c in query.clusters):
        selector = _rewrite(selector, _dismissed_now(d, query.clusters))
    if deleted is not None and query.logtype.dismissable:
        gone = not_deleted(deleted, query.clusters)
        if gone is not None:
            selector = gone if selector is None else And((selector, gone))
    return selector


def not_deleted(deleted: Dismissals, clusters: list[str]) -> Node | None:
    """A selector that drops the records of `clusters` whose ids were deleted (None: none were)."""
    parts: list[Node] = []
    for c in clusters:
        ids = sorted(deleted.ids(c))
        if ids:
            parts.append(And((Compare("cluster", "=", c), InSet("id", tuple(ids)))))
    if not parts:
        return None
    return Not(parts[0] if len(parts) == 1 else Or(tuple(parts)))


def mark(d: Dismissals, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for it in items:
        if not it.get("dismissed") and d.contains(it.get("cluster"), it.get("id")):
            it["dismissed"] = True
    return items
