"""What a caller can read and how: GET /api/v1/whoami (identity, readable clusters per log type) and
GET /api/v1/logtypes (each type's query keys, time field and default columns, from the registry).

The UI starts from these two: its sign-in checks the token with whoami, its cluster selector lists the
clusters whoami says are readable, and its query bar completes the key names of /logtypes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..logtypes import REGISTRY
from ..web.columns import default_columns
from .common import JSONResponse

# The log types as the UI and the Linseed-shaped API name them (audit = audit_ee + audit_kube).
UI_TYPES = {"flows": ["flows"], "dns": ["dns"], "audit": ["audit_ee", "audit_kube"], "bgp": ["bgp"],
            "events": ["events"], "l7": ["l7"], "waf": ["waf"]}


async def whoami(request: Request) -> JSONResponse:
    """Who the caller is and what they may read; `logs` tells "no logs yet" apart from an RBAC denial.

    logs[type] is "readable" (some cluster's stored logs of this type are readable), "none_yet" (no
    cluster has sent logs of this type yet: not an access problem) or "denied" (logs exist, none readable);
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
        has = [c for t in types for c in stored[t]]
        logs[name] = ("none_yet" if not has else
                      "readable" if any(granted[(t, c)] for t in types for c in stored[t]) else "denied")
    return JSONResponse({"user": who.describe(), "groups": list(who.groups), "auth": m.access.mode,
                         "clusters": sorted({c for per in readable.values() for c in per}),
                         "all_clusters": len(clusters or []), "readable": readable,
                         "empty": not clusters, "logs": logs})


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
    return [Route("/api/v1/whoami", whoami, methods=["GET"]), Route("/api/v1/logtypes", logtypes, methods=["GET"])]
