"""What a caller can read and how: GET /api/v1/whoami (identity, readable clusters per log type) and
GET /api/v1/logtypes (each type's query keys, time field and default columns, from the registry).

The UI starts from these two: its sign-in checks the token with whoami, its cluster selector lists the
clusters whoami says are readable, and its query bar completes the key names of /logtypes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..names import valid_cluster
from ..web.columns import default_columns
from .common import JSONResponse

# The log types as the UI and the Linseed-shaped API name them (audit = audit_ee + audit_kube).
UI_TYPES = {"flows": ["flows"], "dns": ["dns"], "audit": ["audit_ee", "audit_kube"], "bgp": ["bgp"],
            "events": ["events"], "l7": ["l7"], "waf": ["waf"], "policy_activity": ["policy_activity"],
            "runtime": ["runtime"]}


async def whoami(request: Request) -> JSONResponse:
    """Who the caller is and what they may read; `logs` tells "no logs yet" apart from an RBAC denial.

    logs[type] is "readable" (some cluster's stored logs of this type are readable), "none_yet" (no
    readable cluster has sent logs of this type yet, and the caller may read it in some known cluster) or
    "denied" (the caller may read it in no known cluster) — never from logs the caller may not read;
    `empty` is true while the server stores no logs at all.
    """
    m = request.app.state.margay
    who = m.caller(request)
    clusters = await asyncio.to_thread(m.backend.clusters, None)
    stored = await asyncio.to_thread(lambda: {t: set(m.backend.clusters(REGISTRY[t])) for t in REGISTRY})
    pairs = [(REGISTRY[t], c) for types in UI_TYPES.values() for t in types for c in (clusters or [])]
    pairs += [(REGISTRY[t], c) for types in UI_TYPES.values() for t in types for c in stored[t]]
    granted = await asyncio.to_thread(m.access.grants, who, pairs)  # Kubernetes: wildcard first, concurrent
    readable: dict[str, dict[str, str]] = {}
    logs: dict[str, str] = {}
    for name, types in UI_TYPES.items():
        per: dict[str, str] = {}
        for c in clusters or []:
            grants = [granted[(t, c)] for t in types]
            if any(g.full for g in grants):
                per[c] = "full"
            elif any(grants):
                per[c] = "namespaces"
        readable[name] = per
        # Never from what is withheld: "denied" says the caller may read this type in no known cluster,
        # whether or not some cluster the caller cannot read has sent such logs.
        if any(granted[(t, c)] for t in types for c in stored[t]):
            logs[name] = "readable"
        elif not clusters or any(granted[(t, c)] for t in types for c in clusters):
            logs[name] = "none_yet"
        else:
            logs[name] = "denied"
    return JSONResponse({"user": who.describe(), "groups": list(who.groups), "auth": m.access.mode,
                         "clusters": sorted({c for per in readable.values() for c in per}),
                         "readable": readable,
                         "empty": not clusters, "logs": logs})


MAX_CLUSTER_PAGE = 1000
_SEARCH = re.compile(r"[a-z0-9.-]{0,253}")


def _cluster_params(request: Request) -> tuple[str, int, str]:
    """GET /api/v1/clusters' parameters, each checked: q (part of a name), limit, after (a cluster name)."""
    params = request.query_params
    unknown = sorted(set(params) - {"q", "limit", "after"})
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0][:40]!r}: expected q, limit, after")
    q = params.get("q", "").strip().lower()
    if not _SEARCH.fullmatch(q):
        raise QueryError("q: part of a cluster name (lowercase letters, digits, '-' and '.'), at most 253 characters",
                         details={"field": "q"})
    raw = params.get("limit", "100")
    # ASCII digits only, and few: str.isdigit() also takes "²" and int() refuses it (or 5,000 digits) with a 500
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= MAX_CLUSTER_PAGE:
        raise QueryError(f"limit: expected an integer from 1 to {MAX_CLUSTER_PAGE}", details={"field": "limit"})
    after = params.get("after", "")
    if after:
        valid_cluster(after, where="the after parameter")
    return q, int(raw), after


async def list_clusters(request: Request) -> JSONResponse:
    """The clusters the caller may read (any UI log type), whose names contain `q`, in name order and paged
    (`after` = the last name of the previous page): a fleet's cluster picker searches here instead of
    holding every name. Each item says, per UI log type, `full` or `namespaces` (unreadable types left out)."""
    m = request.app.state.margay
    q, limit, after = _cluster_params(request)
    who = m.caller(request)
    stored = await asyncio.to_thread(m.backend.clusters, None)  # the embedded store keeps it between commits
    matching = sorted(c for c in stored or [] if q in c)
    if m.access.reads_everything(who):  # every cluster readable in full: only the page is built
        names = [c for c in matching if c > after] if after else matching
        page: dict[str, Any] = {"items": [{"cluster": c, "readable": dict.fromkeys(UI_TYPES, "full")}
                                          for c in names[:limit]], "total": len(matching)}
        if len(names) > limit:
            page["after"] = names[limit - 1]
        return JSONResponse(page)
    pairs = [(REGISTRY[t], c) for types in UI_TYPES.values() for t in types for c in matching]
    granted = await asyncio.to_thread(m.access.grants, who, pairs)
    visible: list[dict[str, Any]] = []
    for c in matching:
        per = {}
        for name, types in UI_TYPES.items():
            grants = [granted[(t, c)] for t in types]
            if any(g.full for g in grants):
                per[name] = "full"
            elif any(grants):
                per[name] = "namespaces"
        if per:
            visible.append({"cluster": c, "readable": per})
    rest = [v for v in visible if v["cluster"] > after] if after else visible
    body: dict[str, Any] = {"items": rest[:limit], "total": len(visible)}
    if len(rest) > limit:
        body["after"] = rest[limit - 1]["cluster"]
    return JSONResponse(body)


def _keys(name: str) -> list[dict[str, Any]]:
    lt = REGISTRY[UI_TYPES[name][0]]
    out = [{"name": k, "kind": qk.kind.value} for k, qk in sorted(lt.query_keys().items())]
    out += [{"name": f"{col}.", "kind": "map"} for col in lt.map_keys]
    return out


async def logtypes(request: Request) -> JSONResponse:
    items = []
    for name, types in UI_TYPES.items():
        lt = REGISTRY[types[0]]
        items.append({"name": name, "types": types, "time_field": lt.time_field, "columns": default_columns(name),
                      "keys": _keys(name), "hints_path": f"/api/v1/{name}/fields/{{field}}/values"})
    return JSONResponse({"items": items})


def routes() -> list[Route]:
    return [Route("/api/v1/whoami", whoami, methods=["GET"]), Route("/api/v1/logtypes", logtypes, methods=["GET"]),
            Route("/api/v1/clusters", list_clusters, methods=["GET"])]
