"""Resource state at any instant: the newest snapshot before an interval, replayed forward with the audit
logs (Calico's and Kubernetes'), yielding every state the cluster passed through during the interval."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import NotFound
from ..logtypes import REGISTRY
from ..query.model import Query, SortKey, parse_time
from ..query.selector import parse_selector
from ..store.backend import Backend
from . import snapshots
from .resources import BY_RESOURCE, Ref, ResourceKind, Resources

AUDIT_EE, AUDIT_KUBE = REGISTRY["audit_ee"], REGISTRY["audit_kube"]
_WRITE_VERBS = ("create", "update", "patch", "delete")
_PAGE = 5000


@dataclass(frozen=True)
class Change:
    """One successful write from the audit log: the object after it (None when deleted)."""

    at: datetime
    kind: ResourceKind
    ref: Ref
    verb: str
    obj: dict[str, Any] | None
    event: dict[str, Any]


def _change(event: dict[str, Any]) -> Change | None:
    ref = event.get("objectRef") or {}
    rk = BY_RESOURCE.get((ref.get("apiGroup") or "", ref.get("resource") or ""))
    if rk is None or ref.get("subresource"):
        return None
    code = (event.get("responseStatus") or {}).get("code")
    if not isinstance(code, int) or not 200 <= code < 300:
        return None
    verb = event.get("verb")
    at = event["requestReceivedTimestamp"]
    if not isinstance(at, datetime):
        at = parse_time(at, datetime.now(UTC), what="requestReceivedTimestamp")
    if verb == "delete":
        name = ref.get("name")
        if not name:
            return None
        return Change(at, rk, (ref.get("namespace") or "" if rk.namespaced else "", name), verb, None, event)
    obj = event.get("responseObject")
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict) or obj.get("kind") == "Status":
        return None  # a Metadata-level event: the new object is unknown, so the state cannot follow it
    meta = obj["metadata"]
    name = meta.get("name") or ref.get("name")
    if not name:
        return None
    ns = (meta.get("namespace") or ref.get("namespace") or "") if rk.namespaced else ""
    return Change(at, rk, (ns, name), str(verb), obj, event)


def audit_changes(backend: Backend, cluster: str, start: datetime, end: datetime) -> list[Change]:
    """Successful writes to compliance kinds in [start, end), oldest first, read through the Backend."""
    sel = parse_selector("verb IN {" + ", ".join(f'"{v}"' for v in _WRITE_VERBS) + '} AND stage = "ResponseComplete"')
    out: list[Change] = []
    after: dict[str, Any] | None = None
    while True:
        q = Query(AUDIT_EE, [cluster], also=[AUDIT_KUBE], start=start, end=end, selector=sel,
                  sort=[SortKey("requestReceivedTimestamp")], size=_PAGE, after_key=after, total_hits=False)
        res = backend.search(q)
        for ev in res.items:
            ch = _change(ev)
            if ch is not None:
                out.append(ch)
        if len(res.items) < _PAGE or res.after_key is None:
            break
        after = res.after_key
    out.sort(key=lambda c: c.at)
    return out


class Timeline:
    """The states of a cluster through [start, end): `states()` yields (from, to, resources) for each span
    in which nothing changed; `changes` are the audit writes inside the interval."""

    def __init__(self, base: Resources, base_time: datetime, changes: list[Change], start: datetime,
                 end: datetime) -> None:
        self.start, self.end, self.base_time = start, end, base_time
        self.initial = _copy(base)
        for ch in changes:
            if ch.at < start:
                _apply(self.initial, ch)
        self.changes = [c for c in changes if start <= c.at < end]

    def states(self) -> Iterator[tuple[datetime, datetime, Resources]]:
        state = _copy(self.initial)
        t = self.start
        i = 0
        while i < len(self.changes):
            at = self.changes[i].at
            if at > t:
                yield t, at, state
            while i < len(self.changes) and self.changes[i].at == at:
                _apply(state, self.changes[i])
                i += 1
            t = at
        yield t, self.end, state


def _copy(state: Resources) -> Resources:
    """A copy of the buckets only: a change replaces or removes an object and never edits one, so states can
    share the objects that did not change (the evaluation relies on it to skip what did not)."""
    return {kind: dict(bucket) for kind, bucket in state.items()}


def _apply(state: Resources, ch: Change) -> None:
    bucket = state.setdefault(ch.kind.key, {})
    if ch.obj is None:
        bucket.pop(ch.ref, None)
    else:
        bucket[ch.ref] = ch.obj


class Checkpoints:
    """Incremental replay: the state at the end of recent report intervals, kept in memory per cluster.

    A report over a later interval starts from the nearest base at or before its start — the newest stored
    snapshot or the newest checkpoint, whichever is later — and replays only the audit writes after it, not
    everything since the snapshot. A stored snapshot newer than a checkpoint always wins (it is the truth;
    a checkpoint is derived). Audit events that reach the store after a checkpoint was made but are dated
    before it are not replayed onto it (report jobs start 30 minutes after their interval ends, as Calico's,
    so events that late are missed by Calico's reports too); the next snapshot includes their effect.
    """

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._by_cluster: dict[str, list[tuple[datetime, Resources]]] = {}
        self.last: dict[str, tuple[str, datetime]] = {}  # cluster -> ("snapshot" | "checkpoint", base time)

    def put(self, cluster: str, at: datetime, state: Resources) -> None:
        cps = [c for c in self._by_cluster.get(cluster, []) if c[0] != at]
        cps.append((at, _copy(state)))
        cps.sort(key=lambda c: c[0])
        self._by_cluster[cluster] = cps[-self.keep:]

    def nearest(self, cluster: str, at: datetime) -> tuple[datetime, Resources] | None:
        found = [c for c in self._by_cluster.get(cluster, []) if c[0] <= at]
        return found[-1] if found else None


def final_state(tl: Timeline) -> Resources:
    """The resources at the end of a timeline's interval."""
    state = _copy(tl.initial)
    for ch in tl.changes:
        _apply(state, ch)
    return state


def timeline(backend: Backend, cluster: str, start: datetime, end: datetime,
             checkpoints: Checkpoints | None = None) -> Timeline:
    """The nearest base at or before `start` (the newest snapshot, or with `checkpoints` a later checkpoint)
    and the audit writes from it to `end`."""
    snap = snapshots.latest(backend, cluster, start)
    cp = checkpoints.nearest(cluster, start) if checkpoints is not None else None
    if snap is None and cp is None:
        raise NotFound(f"no snapshot of cluster {cluster!r} at or before {start.isoformat()}: take one first "
                       "(margay reports snapshot <dump.yaml>)")
    if cp is not None and (snap is None or cp[0] > snap[0]):
        when, base, source = cp[0], cp[1], "checkpoint"
    else:
        assert snap is not None
        when, base, source = snap[0], snap[1], "snapshot"
    tl = Timeline(base, when, audit_changes(backend, cluster, when, end), start, end)
    if checkpoints is not None:
        checkpoints.last[cluster] = (source, when)
        checkpoints.put(cluster, end, final_state(tl))
    return tl
