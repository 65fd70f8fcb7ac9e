"""Snapshots: full lists of every compliance kind, written to and read from the store through the Backend
protocol (the `snapshots` log type, one document per kind per snapshot, like Calico's snapshotter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..errors import BackendError
from ..logtypes.compliance import SNAPSHOTS
from ..query.model import Query, SortKey
from ..store.backend import Backend
from .resources import BY_KEY, KINDS, Resources


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _respond(conv: Any) -> dict[str, Any]:
    return {"total": conv.total, "succeeded": conv.succeeded, "errors": [e.as_dict() for e in conv.errors]}


def take(backend: Backend, cluster: str, resources: Resources, *, started: datetime, completed: datetime) -> int:
    """Store one snapshot: a List document for every kind (empty Lists too, so a kind with no resources
    reads as "none" rather than "unknown"). Returns the number of resources stored."""
    lines = []
    n = 0
    for rk in KINDS:
        items = sorted(resources.get(rk.key, {}).items())
        n += len(items)
        lines.append(orjson.dumps({
            "kind": rk.kind + "List", "apiVersion": rk.api_version, "metadata": {},
            "items": [obj for _, obj in items],
            "requestStartedTimestamp": _rfc3339(started), "requestCompletedTimestamp": _rfc3339(completed)}))
    key = f"snapshot-{cluster}-{completed.isoformat()}"
    resp, _ = backend.ingest(SNAPSHOTS, cluster, b"\n".join(lines), key=key, now=completed, respond=_respond)
    if resp["errors"]:
        raise BackendError(f"snapshot not stored: {resp['errors'][0]}")
    return n


def latest(backend: Backend, cluster: str, at: datetime, *, lookback: timedelta = timedelta(days=31)
           ) -> tuple[datetime, Resources] | None:
    """The newest complete snapshot at or before `at` (every kind's List from the same run), or None."""
    q = Query(SNAPSHOTS, [cluster], start=at - lookback, end=at + timedelta(microseconds=1),
              sort=[SortKey("requestCompletedTimestamp", descending=True)], size=len(KINDS) * 4)
    docs = backend.search(q).items
    if not docs:
        return None
    newest = docs[0]["requestCompletedTimestamp"]
    out: Resources = {}
    for d in docs:
        if d["requestCompletedTimestamp"] != newest:
            continue
        group = d["apiVersion"].rsplit("/", 1)[0] if "/" in d["apiVersion"] else ""
        kind = d["kind"][:-len("List")] if d["kind"].endswith("List") else d["kind"]
        key = f"{group}/{kind}" if group else kind
        rk = BY_KEY.get(key)
        if rk is None:
            continue
        items = d.get("items") or []
        if isinstance(items, str):
            items = orjson.loads(items)
        out[rk.key] = {((o.get("metadata") or {}).get("namespace", "") if rk.namespaced else "",
                        (o.get("metadata") or {}).get("name", "")): o for o in items}
    when = newest if isinstance(newest, datetime) else _parse(newest)
    return when, out


def _parse(value: Any) -> datetime:
    from ..query.model import parse_time

    return parse_time(value, datetime.now(UTC), what="requestCompletedTimestamp")
