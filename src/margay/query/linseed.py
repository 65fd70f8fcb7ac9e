"""Linseed's typed filter parameters as selector AST nodes, so that both engines compile them as they
compile any selector (no engine-specific code). Field by field from Linseed's request structs
(`linseed/pkg/apis/v1`): FlowLogParams (`ip_matches`, `policy_matches` and its enforced/pending/transit
forms), AuditLogParams (`kinds`, `verbs`, `response_codes`, `authors`, `stages`, `levels`, `object_refs`),
DNSLogParams (`domain_matches`), EventParams (`id`) and PolicyActivityParams (`policy`, `rules`,
`last_evaluated`). Within one parameter the values are ORed, the
parameters (and the body's `selector`) are ANDed, as Linseed's query builders do.
"""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from .selector import And, Compare, InSet, Node, Not, Or, Value

# Linseed refuses these characters in a PolicyMatch's tier, namespace and name (validate:"excludesall=.:/").
_POLICY_PART_FORBIDDEN = ".:/"
_MATCH_TYPES = ("src", "dst", "any")
_POLICY_TRACES = {"policy_matches": "policies.all_policies",
                  "enforced_policy_matches": "policies.enforced_policies",
                  "pending_policy_matches": "policies.pending_policies",
                  "transit_policy_matches": "policies.transit_policies"}
_ACTIONS = ("allow", "deny", "pass", "log", "eot-deny", "unknown")
_AUDIT_LISTS: dict[str, tuple[str, type]] = {
    "kinds": ("objectRef.resource", str), "verbs": ("verb", str), "response_codes": ("responseStatus.code", int),
    "authors": ("user.username", str), "stages": ("stage", str), "levels": ("level", str)}
_OBJECT_REF = {"name": "objectRef.name", "namespace": "objectRef.namespace", "resource": "objectRef.resource",
               "api_version": "objectRef.apiVersion", "api_group": "objectRef.apiGroup"}
_DOMAIN_FIELDS = {"qname": ("qname",), "rrset": ("rrsets.name",), "rrdata": ("rrsets.rdata",),
                  "any": ("qname", "rrsets.name", "rrsets.rdata")}

# The typed parameters each endpoint takes (its Linseed params struct); a body naming one of another
# endpoint's is refused rather than ignored.
PARAMS: dict[str, frozenset[str]] = {
    "flows": frozenset({"ip_matches", *_POLICY_TRACES}),
    "audit": frozenset({*_AUDIT_LISTS, "object_refs", "ExcludeDryRuns", "exclude_dry_runs"}),
    "dns": frozenset({"domain_matches"}),
    "events": frozenset({"id"}),
    "policy_activity": frozenset({"policy", "rules", "last_evaluated"}),
}
ALL_PARAMS = frozenset().union(*PARAMS.values())


def _escape(text: str) -> str:
    """A literal string inside an Elasticsearch-style wildcard pattern."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _list(body: dict[str, Any], name: str, kind: type = dict) -> list[Any]:
    raw = body.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise QueryError(f"{name}: expected a list, got {type(raw).__name__}")
    for i, item in enumerate(raw):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise QueryError(f"{name}[{i}]: expected {'an object' if kind is dict else kind.__name__}, got {item!r}")
    return raw


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise QueryError(f"{where}: expected a list of non-empty strings")
    return value


def _one_of(key: str, values: list[Value]) -> Node:
    return Compare(key, "=", values[0]) if len(values) == 1 else InSet(key, tuple(values))


def _any(nodes: list[Node]) -> Node | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))


def _match_type(item: dict[str, Any], where: str) -> str:
    kind = item.get("type") or "any"
    if kind not in _MATCH_TYPES:
        raise QueryError(f"{where}.type: expected src, dst or any, got {kind!r}")
    return str(kind)


def _ip_matches(body: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for i, item in enumerate(_list(body, "ip_matches")):
        where = f"ip_matches[{i}]"
        kind = _match_type(item, where)
        ips: list[Value] = list(_strings(item.get("ips"), where + ".ips"))
        if not ips:
            continue
        keys = {"src": ["source_ip"], "dst": ["dest_ip"], "any": ["source_ip", "dest_ip"]}[kind]
        node = _any([_one_of(k, ips) for k in keys])
        if node is not None:
            out.append(node)
    return out


def policy_pattern(item: dict[str, Any], where: str) -> str:
    """A wildcard pattern over Felix's policy trace strings `<index>|<tier>|<name>|<action>|<rule>`, where
    the name is `[<namespace>/][staged:]<tier>.<name>` (Calico policies) or `<namespace>/knp.default.<name>`
    (Kubernetes policies)."""
    parts: dict[str, str] = {}
    for key in ("tier", "namespace", "name"):
        value = item.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or any(c in value for c in _POLICY_PART_FORBIDDEN):
            raise QueryError(f"{where}.{key}: expected a name without '.', ':' or '/', got {value!r}")
        parts[key] = _escape(value)
    action = item.get("action")
    if action not in (None, "") and action not in _ACTIONS:
        raise QueryError(f"{where}.action: expected one of {', '.join(_ACTIONS)}, got {action!r}")
    ptype = item.get("type")
    if ptype not in (None, "", "knp", "kanp", "kbanp"):
        raise QueryError(f"{where}.type: expected knp, kanp or kbanp, got {ptype!r}")
    staged = item.get("staged")
    if staged is not None and not isinstance(staged, bool):
        raise QueryError(f"{where}.staged: expected true or false")
    tier = parts.get("tier")
    if "name" in parts:
        ns = f"{parts['namespace']}/" if "namespace" in parts else ("*" if ptype is None else "")
        if ptype:
            base = f"{ptype}.default.{parts['name']}" if ptype == "knp" else f"*{parts['name']}"
        else:
            base = f"{tier or '*'}.{parts['name']}"
        name = ns + ("staged:" if staged else "") + base
    elif "namespace" in parts:
        name = f"{parts['namespace']}/*"
    else:
        name = "*"
    tier_part = "default" if ptype == "knp" and tier is None else (tier or "*")
    return f"*|{tier_part}|{name}|{action or '*'}|*"


def _policy_matches(body: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for param, key in _POLICY_TRACES.items():
        items = _list(body, param)
        if items:
            out.append(InSet(key, tuple(policy_pattern(item, f"{param}[{i}]") for i, item in enumerate(items))))
    return out


def _audit(body: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for param, (key, kind) in _AUDIT_LISTS.items():
        values = _list(body, param, kind)
        if kind is str and any(not v for v in values):
            raise QueryError(f"{param}: expected non-empty strings")
        if values:
            out.append(_one_of(key, values))
    refs: list[Node] = []
    for i, ref in enumerate(_list(body, "object_refs")):
        unknown = set(ref) - set(_OBJECT_REF)
        if unknown:
            raise QueryError(f"object_refs[{i}]: unknown field {sorted(unknown)[0]!r}; expected "
                             + ", ".join(_OBJECT_REF))
        terms: list[Node] = []
        for field, key in _OBJECT_REF.items():
            value = ref.get(field)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                raise QueryError(f"object_refs[{i}].{field}: expected a string")
            terms.append(Compare(key, "=", value))
        if terms:
            refs.append(terms[0] if len(terms) == 1 else And(tuple(terms)))
    node = _any(refs)
    if node is not None:
        out.append(node)
    exclude = body.get("exclude_dry_runs", body.get("ExcludeDryRuns"))
    if exclude not in (None, False):
        if exclude is not True:
            raise QueryError("exclude_dry_runs: expected true or false")
        out.append(Not(InSet("requestURI", ("*dryRun=*",))))
    return out


def _domains(body: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for i, item in enumerate(_list(body, "domain_matches")):
        where = f"domain_matches[{i}]"
        kind = item.get("type") or "any"
        if kind not in _DOMAIN_FIELDS:
            raise QueryError(f"{where}.type: expected qname, rrset, rrdata or any, got {kind!r}")
        domains: list[Value] = list(_strings(item.get("domains"), where + ".domains"))
        if domains:
            node = _any([_one_of(k, domains) for k in _DOMAIN_FIELDS[kind]])
            if node is not None:
                out.append(node)
    return out


_POLICY_INFO = ("kind", "namespace", "name")
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: what Calico's client sends for "no bound"


def _policy_activity(body: dict[str, Any]) -> list[Node]:
    """PolicyActivityParams: `policy` {kind, namespace, name} (each non-empty part must equal), `rules` (any
    of), `last_evaluated` (at or after; Go's zero time means none), as Linseed's policy backend filters."""
    out: list[Node] = []
    policy = body.get("policy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise QueryError("policy: expected an object {kind, namespace, name}")
        unknown = sorted(set(policy) - set(_POLICY_INFO))
        if unknown:
            raise QueryError(f"policy: unknown field {unknown[0]!r}; expected kind, namespace, name")
        for part in _POLICY_INFO:
            value = policy.get(part)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                raise QueryError(f"policy.{part}: expected a string")
            out.append(Compare(f"policy.{part}", "=", value))
    rules: list[Value] = list(_strings(body.get("rules"), "rules"))
    if rules:
        out.append(_one_of("rule", rules))
    since = body.get("last_evaluated")
    if since not in (None, "", _GO_ZERO_TIME):
        if not isinstance(since, str):
            raise QueryError("last_evaluated: expected an RFC 3339 time")
        out.append(Compare("last_evaluated", ">=", since))
    return out


def typed_filters(body: dict[str, Any], endpoint: str) -> Node | None:
    """The typed parameters of `body` for a Linseed endpoint (flows, audit, dns, events, ...) as one
    selector node, or None. A typed parameter of another endpoint is refused, naming it."""
    accepted = PARAMS.get(endpoint, frozenset())
    stray = sorted(k for k in body if k in ALL_PARAMS and k not in accepted and body[k] not in (None, [], ""))
    if stray:
        raise QueryError(f"{stray[0]}: not a parameter of the {endpoint} endpoint")
    nodes: list[Node] = []
    if endpoint == "flows":
        nodes += _ip_matches(body) + _policy_matches(body)
    elif endpoint == "audit":
        nodes += _audit(body)
    elif endpoint == "dns":
        nodes += _domains(body)
    elif endpoint == "events":
        ident = body.get("id")
        if ident not in (None, ""):
            if not isinstance(ident, str):
                raise QueryError("id: expected a string")
            nodes.append(Compare("id", "=", ident))
    elif endpoint == "policy_activity":
        nodes += _policy_activity(body)
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def combine(selector: Node | None, typed: Node | None) -> Node | None:
    """The body's selector ANDed with its typed filters."""
    if selector is None:
        return typed
    if typed is None:
        return selector
    return And((selector, typed))
