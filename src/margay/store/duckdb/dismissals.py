"""Dismissed events over an append-only store (Linseed's PUT /events/bulk on the embedded engine).

The store never rewrites a Parquet file, so a dismissal is kept as a small durable overlay: one fsync'd
NDJSON line per dismissed (cluster, id) in `<data>/events/dismissed.ndjson`, read back at start-up. Every
read of a dismissable type applies it in the query, not in Python: a selector leaf on `dismissed` is
rewritten to `(dismissed = true OR (cluster = c AND id IN {...}))` (or its negation), and the records
returned carry `dismissed: true`.

An id names every record of the cluster that carries it (a writer's own ids may repeat). A namespace-scoped
caller acts only on the records it reads: its line also keeps its namespaces (`scope`), and the entry then
covers only the records with one endpoint (`LogType.sides`) in them, as the caller's read saw them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ...logtypes import LogType
from ...query.model import Query
from ...query.selector import And, Compare, InSet, Node, Not, Or

Scope = frozenset[str] | None  # the namespaces of a scoped caller's entry; None: the whole cluster


class Dismissals:
    """The durable set of dismissed event ids per cluster (and per scope of the caller who acted)."""

    def __init__(self, data_dir: Path, name: str = "dismissed.ndjson") -> None:
        self.path = Path(data_dir) / "events" / name
        self._lock = threading.Lock()
        self._by_cluster: dict[str, dict[Scope, set[str]]] = {}
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line after a crash was never acknowledged
                if isinstance(doc, dict) and isinstance(doc.get("cluster"), str) and isinstance(doc.get("id"), str):
                    scope = doc.get("scope")
                    key = frozenset(str(n) for n in scope) if isinstance(scope, list) else None
                    self._by_cluster.setdefault(doc["cluster"], {}).setdefault(key, set()).add(doc["id"])

    def add(self, cluster: str, ids: list[str], scope: Iterable[str] | None = None) -> list[str]:
        """Record ids as dismissed (durably, before returning), for the records of `scope`'s namespaces only
        when given; returns those that were new."""
        key = frozenset(scope) if scope is not None else None
        with self._lock:
            entries = self._by_cluster.setdefault(cluster, {})
            whole = entries.get(None, set())
            have = entries.setdefault(key, set())
            new = [i for i in dict.fromkeys(ids) if i not in have and i not in whole]
            if not new:
                return []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            extra = {"scope": sorted(key)} if key is not None else {}
            data = b"".join(orjson.dumps({"cluster": cluster, "id": i, **extra}) + b"\n" for i in new)
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
            return frozenset(i for ids in self._by_cluster.get(cluster, {}).values() for i in ids)

    def clusters(self) -> list[str]:
        with self._lock:
            return sorted(c for c, entries in self._by_cluster.items() if any(entries.values()))

    def node(self, lt: LogType, clusters: Iterable[str]) -> Node | None:
        """The records of `clusters` the entries name (None: none): per cluster and scope, `cluster = c AND
        id IN {...}`, and with a scope, an endpoint in its namespaces."""
        parts: list[Node] = []
        with self._lock:
            entries = [(c, scope, tuple(sorted(ids))) for c in clusters
                       for scope, ids in sorted(self._by_cluster.get(c, {}).items(), key=lambda e: sorted(e[0] or ()))
                       if ids]
        for c, scope, ids in entries:
            items: list[Node] = [Compare("cluster", "=", c), InSet("id", ids)]
            if scope is not None:
                items.append(_in_scope(lt, scope))
            parts.append(And(tuple(items)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def contains(self, lt: LogType, item: dict[str, Any]) -> bool:
        """Whether an entry names this record (rendered)."""
        id_ = item.get("id")
        if not isinstance(id_, str):
            return False
        with self._lock:
            entries = self._by_cluster.get(str(item.get("cluster") or ""), {})
            return any(id_ in ids and (scope is None or any(item.get(s.namespace) in scope
                                                            for s in lt.sides if s.selects))
                       for scope, ids in entries.items())


def _in_scope(lt: LogType, scope: frozenset[str]) -> Node:
    ns = tuple(sorted(scope))
    sides = [s for s in lt.sides if s.selects]
    if not sides or not ns:
        return InSet("cluster", ())  # matches nothing: such a caller read none of them
    return Or(tuple(InSet(s.namespace, ns) for s in sides)) if len(sides) > 1 else InSet(sides[0].namespace, ns)


def _dismissed_now(d: Dismissals, lt: LogType, clusters: list[str]) -> Node:
    """`dismissed` as the overlay sees it: stored true, or the record dismissed since."""
    since = d.node(lt, clusters)
    stored = Compare("dismissed", "=", "true")
    return stored if since is None else Or((stored, since))


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
        selector = _rewrite(selector, _dismissed_now(d, query.logtype, query.clusters))
    if deleted is not None and query.logtype.dismissable:
        gone = not_deleted(deleted, query.logtype, query.clusters)
        if gone is not None:
            selector = gone if selector is None else And((selector, gone))
    return selector


def not_deleted(deleted: Dismissals, lt: LogType, clusters: list[str]) -> Node | None:
    """A selector that drops the records of `clusters` deleted since they were stored (None: none were)."""
    gone = deleted.node(lt, clusters)
    return None if gone is None else Not(gone)


def mark(d: Dismissals, lt: LogType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for it in items:
        if not it.get("dismissed") and d.contains(lt, it):
            it["dismissed"] = True
    return items
