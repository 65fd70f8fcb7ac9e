"""Linseed's policy activity read (`POST /api/v1/policy_activity`), written from Linseed's policy handler and
backend (`linseed/pkg/handler/policy`, `backend/legacy/policy`: GetPolicyActivities, PolicyActivityParams in
`apis/v1/policy.go`): for each policy asked for, when it was last evaluated and, per rule (generation,
direction, index), when that rule was.

Request: `{"from", "to", "policies": [{"kind", "namespace", "name", "generation"}]}` (`kind` and `name`
required, `generation` > 0 when given: only rules `<generation>|…`; an empty `namespace` matches any, but the
answer keys a policy by all three, so it then lists the global policy). `from`/`to` bound `last_evaluated`
(either may be absent). The answer lists, in the request's order, the policies that have activity:
`{"policy", "last_evaluated", "rules": [{"direction", "index", "generation", "last_evaluated"}]}`, rules
sorted by direction then index, Felix's `__IMPLICIT_DENIED__` / `__UNKNOWN__` indices as `implicit_deny` /
`unknown`. Read with the `policyactivity` RBAC; over several clusters (`_MULTI_`) their rules are merged.
Times are returned as stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..query.linseed import combine
from ..query.model import SortKey, parse_time
from ..query.selector import And, Compare, InSet, Node, Or
from .common import JSONResponse, json_body
from .logs import _timed, build_query

PAGE = 1000
MAX_POLICIES = 1000
MAX_RULES = 100_000  # rule documents read at most
# Policies per search: each is up to four terms, and OpenSearch refuses a query of more than 1,024 clauses
# (maxClauseCount) as a server error; a larger request is read in several searches, its rules merged.
CHUNK = 200
_FIELDS = ("kind", "namespace", "name", "generation")
_BODY = {"from", "to", "policies", "clusters", "all_clusters"}
_SPECIAL = {"__IMPLICIT_DENIED__": "implicit_deny", "__UNKNOWN__": "unknown"}


def _policies(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("policies")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise QueryError("policies: expected a list of {kind, namespace, name, generation}",
                         details={"field": "policies"})
    if len(raw) > MAX_POLICIES:
        raise QueryError(f"policies: at most {MAX_POLICIES}, got {len(raw)}", details={"field": "policies"})
    out = []
    for i, p in enumerate(raw):
        where = f"policies[{i}]"
        if not isinstance(p, dict):
            raise QueryError(f"{where}: expected an object {{kind, namespace, name, generation}}")
        unknown = sorted(set(p) - set(_FIELDS))
        if unknown:
            raise QueryError(f"{where}: unknown field {unknown[0][:40]!r}; expected " + ", ".join(_FIELDS))
        for key in ("kind", "name"):
            if not isinstance(p.get(key), str) or not p[key]:
                raise QueryError(f"{where}.{key}: required, a non-empty string")
        ns = p.get("namespace") or ""
        if not isinstance(ns, str):
            raise QueryError(f"{where}.namespace: expected a string")
        gen = p.get("generation")
        if gen is not None and (not isinstance(gen, int) or isinstance(gen, bool) or gen <= 0):
            raise QueryError(f"{where}.generation: expected a positive integer, got {gen!r}")
        out.append({"kind": p["kind"], "namespace": ns, "name": p["name"], "generation": gen})
    return out


def _selector(policies: list[dict[str, Any]]) -> Node:
    """Any of the policies (Linseed's bool `should`, one filter per policy)."""
    alts: list[Node] = []
    for p in policies:
        terms: list[Node] = [Compare("policy.kind", "=", p["kind"]), Compare("policy.name", "=", p["name"])]
        if p["namespace"]:
            terms.append(Compare("policy.namespace", "=", p["namespace"]))
        if p["generation"] is not None:
            terms.append(InSet("rule", (f"{p['generation']}|*",)))  # a prefix: digits and `|` are literal
        alts.append(And(tuple(terms)))
    return alts[0] if len(alts) == 1 else Or(tuple(alts))


def summarize(policies: list[dict[str, Any]], docs: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Linseed's aggregatePolicyActivity: per policy its newest time, per rule key its newest report."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for doc in docs:
        parts = str(doc.get("rule") or "").split("|")
        pol = doc.get("policy") or {}
        if len(parts) < 3 or not isinstance(pol, dict):
            continue  # Linseed skips a rule it cannot parse
        at = parse_time(doc["last_evaluated"], now, what="last_evaluated")
        key = (pol.get("kind") or "", pol.get("namespace") or "", pol.get("name") or "")
        entry = found.setdefault(key, {"policy": {"kind": key[0], "namespace": key[1], "name": key[2]},
                                       "at": None, "last_evaluated": None, "rules": {}})
        if entry["at"] is None or at > entry["at"]:
            entry["at"], entry["last_evaluated"] = at, doc["last_evaluated"]
        gen = int(parts[0]) if parts[0].isdigit() else 0
        rkey = (gen, parts[1], _SPECIAL.get(parts[2], parts[2]))
        have = entry["rules"].get(rkey)
        if have is None or at > have[0]:
            entry["rules"][rkey] = (at, {"direction": rkey[1], "index": rkey[2], "generation": gen,
                                         "last_evaluated": doc["last_evaluated"]})
    items = []
    for p in policies:
        hit = found.get((p["kind"], p["namespace"], p["name"]))
        if hit is None:
            continue
        rules = sorted((r for _, r in hit["rules"].values()), key=lambda r: (r["direction"], r["index"]))
        items.append({"policy": hit["policy"], "last_evaluated": hit["last_evaluated"], "rules": rules})
    return items


async def policy_activity(request: Request) -> JSONResponse:
    """POST /api/v1/policy_activity: Linseed's PolicyActivityParams; read with the policyactivity RBAC."""
    m = request.app.state.margay
    body = await json_body(request)
    unknown = sorted(set(body) - _BODY)
    if unknown:
        raise QueryError(f"unknown field {unknown[0][:40]!r}; expected from, to, policies",
                         details={"field": unknown[0][:40]})
    lt = REGISTRY["policy_activity"]
    policies = _policies(body)
    bounds = {k: body[k] for k in ("from", "to") if body.get(k) not in (None, "")}
    query = build_query(request, {k: v for k, v in body.items() if k in ("clusters", "all_clusters")}
                        | ({"time_range": bounds} if bounds else {}), lt)
    if "to" not in bounds:
        query.end = None  # Linseed: no upper bound unless `to` is given
    if not policies:
        return JSONResponse({"items": []})
    base = replace(query, size=PAGE, after_key=None, sort=[SortKey("last_evaluated", False)], total_hits=False)
    docs: list[dict[str, Any]] = []
    for i in range(0, len(policies), CHUNK):
        query = replace(base, selector=combine(base.selector, _selector(policies[i:i + CHUNK])))
        while True:
            page = await _timed(request, "policy_activity", m.backend.search, query)
            docs += page.items
            if len(docs) >= MAX_RULES and (page.after_key is not None or i + CHUNK < len(policies)):
                raise QueryError(f"policies: more than {MAX_RULES} rule reports match; ask for fewer policies")
            if page.after_key is None:
                break
            query = replace(query, after_key=page.after_key)
    m.access_log(request, lt, base, len(docs))
    return JSONResponse({"items": summarize(policies, docs, m.clock.now())})


def routes() -> list[Route]:
    return [Route("/api/v1/policy_activity", policy_activity, methods=["POST"])]


__all__ = ["routes"]
