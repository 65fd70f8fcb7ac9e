"""Writing security events through the Backend: ids already stored are skipped and each batch carries an
idempotency key, so a re-run, a retry or a restart never stores an event twice."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from ..errors import BackendError
from ..ingest.parse import Converted
from ..logtypes import REGISTRY
from ..query.model import Query
from ..query.selector import InSet
from ..store.backend import Backend

EVENTS = REGISTRY["events"]
CHUNK = 5000


def _respond(conv: Converted) -> dict[str, Any]:
    return {"total": conv.total, "succeeded": conv.succeeded, "failed": conv.failed_lines,
            "errors": [e.as_dict() for e in conv.errors]}


def stored_ids(backend: Backend, cluster: str, ids: list[str], now: datetime) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        q = Query(EVENTS, [cluster], selector=InSet("id", tuple(chunk)), size=len(chunk), now=now,
                  total_hits=False)
        found.update(str(item.get("id")) for item in backend.search(q).items)
    return found


def write_events(backend: Backend, cluster: str, events: list[dict[str, Any]], now: datetime) -> int:
    """Store the events whose ids are new; returns how many were written."""
    unique = {e["id"]: e for e in events}
    fresh = [e for i, e in unique.items() if i not in stored_ids(backend, cluster, list(unique), now)]
    if not fresh:
        return 0
    body = b"\n".join(orjson.dumps({k: v for k, v in e.items() if v is not None}) for e in fresh)
    key = "detect-" + hashlib.sha256("\n".join(sorted(e["id"] for e in fresh)).encode()).hexdigest()[:40]
    response, _ = backend.ingest(EVENTS, cluster, body, key=key, now=now, respond=_respond)
    if response.get("failed"):
        raise BackendError(f"storing {len(fresh)} events: {response.get('errors')}")
    return len(fresh)
