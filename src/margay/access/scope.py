"""Namespace-scoped reads (beyond Calico): which rows a scoped reader sees, and what is withheld in them.

The rule. A reader granted a log type of a cluster only through RoleBindings in namespaces N sees:
- flows, L7 and events: the records whose source or destination namespace is in N;
- DNS: the records whose client namespace is in N;
- audit (both types): the records whose objectRef.namespace is in N;
- BGP: nothing (BGP records have no namespace).
In a visible record, the endpoint outside N is withheld: its name, aggregated name, labels and IPs are
replaced by "<withheld>" (labels by null) and the record lists the withheld sides under "withheld".
A query, aggregation, sort or filter hint that names a field of an endpoint (say `dest_name_aggr`) only
reads the records where that endpoint is in N, so neither counts nor hints reveal withheld names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..logtypes import LogType
from ..query.selector import And, Compare, InSet, Not, Or

WITHHELD = "<withheld>"


@dataclass(frozen=True)
class Side:
    name: str  # as listed under "withheld": source, dest, client, object
    namespace: str  # the query key holding the endpoint's namespace
    identity: tuple[str, ...]  # query keys that name the endpoint (withheld when out of scope)


SIDES: dict[str, tuple[Side, ...]] = {
    "flows": (Side("source", "source_namespace", ("source_name", "source_name_aggr", "source_ip", "source_labels",
                                                   "source_ips", "original_source_ips")),
              Side("dest", "dest_namespace", ("dest_name", "dest_name_aggr", "dest_ip", "dest_labels", "dest_ips",
                                               "dest_domains"))),
    "dns": (Side("client", "client_namespace", ("client_name", "client_name_aggr", "client_ip", "client_labels")),),
    "audit_ee": (Side("object", "objectRef.namespace", ()),),
    "audit_kube": (Side("object", "objectRef.namespace", ()),),
    "l7": (Side("source", "src_namespace", ("src_name_aggr",)),
           Side("dest", "dest_namespace", ("dest_name_aggr", "dest_service_name"))),
    "events": (Side("source", "source_namespace", ("source_name", "source_name_aggr", "source_ip")),
               Side("dest", "dest_namespace", ("dest_name", "dest_name_aggr", "dest_ip"))),
}


def scopable(lt: LogType) -> bool:
    return bool(SIDES.get(lt.name))


# -- which sides a query names --------------------------------------------------------------------
def selector_keys(node: Any) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, Compare | InSet):
        return {node.key}
    if isinstance(node, And | Or):
        return set().union(*(selector_keys(n) for n in node.items))
    if isinstance(node, Not):
        return selector_keys(node.item)
    return set()


def agg_fields(aggs: Any) -> set[str]:
    """Every `field` named anywhere in an aggregation tree."""
    out: set[str] = set()
    if isinstance(aggs, dict):
        for k, v in aggs.items():
            if k == "field" and isinstance(v, str):
                out.add(v)
            else:
                out |= agg_fields(v)
    elif isinstance(aggs, list):
        for v in aggs:
            out |= agg_fields(v)
    return out


def named_sides(lt: LogType, keys: Iterable[str]) -> list[Side]:
    """The sides whose identifying fields appear among `keys` (aliases resolved)."""
    out = []
    resolved = {lt.aliases.get(k, k) for k in keys}
    for side in SIDES.get(lt.name, ()):
        if any(k == f or k.startswith(f + ".") for k in resolved for f in side.identity):
            out.append(side)
    return out


# -- the SQL filter ---------------------------------------------------------------------------------
def scope_filter(lt: LogType, full: list[str], scoped: dict[str, frozenset[str]],
                 required: list[Side] | None = None) -> tuple[str, list[Any]] | None:
    """Trusted SQL (registry names only; clusters and namespaces as parameters), or None if nothing is scoped."""
    if not scoped:
        return None
    keys = lt.query_keys()
    sides = SIDES.get(lt.name, ())
    parts: list[str] = []
    params: list[Any] = []
    if full:
        parts.append('"cluster" IN (' + ", ".join("?" for _ in full) + ")")
        params.extend(full)
    for cluster, namespaces in sorted(scoped.items()):
        if not sides or not namespaces:
            continue
        ns = sorted(namespaces)
        marks = ", ".join("?" for _ in ns)
        visible = " OR ".join(f"{keys[s.namespace].sql} IN ({marks})" for s in sides)
        cond = f'"cluster" = ? AND ({visible})'
        params.append(cluster)
        for _ in sides:
            params.extend(ns)
        for s in required or []:
            cond += f" AND {keys[s.namespace].sql} IN ({marks})"
            params.extend(ns)
        parts.append(f"({cond})")
    if not parts:
        return "FALSE", []
    return " OR ".join(parts), params


# -- withholding in results -------------------------------------------------------------------------
def _get(item: dict[str, Any], key: str) -> Any:
    value: Any = item
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _withhold(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return None
    if isinstance(value, list):
        return [WITHHELD] if value else value
    return WITHHELD


def redact_records(lt: LogType, items: list[dict[str, Any]], scoped: dict[str, frozenset[str]]
                   ) -> list[dict[str, Any]]:
    """Withhold the out-of-scope endpoints of search results (records of fully readable clusters pass)."""
    if not scoped:
        return items
    sides = SIDES.get(lt.name, ())
    for item in items:
        ns = scoped.get(item.get("cluster"))  # type: ignore[arg-type]
        if ns is None:
            continue
        withheld = []
        for side in sides:
            if not side.identity or _get(item, side.namespace) in ns:
                continue
            withheld.append(side.name)
            for f in side.identity:
                if f in item:
                    item[f] = _withhold(item[f])
        if lt.name == "dns" and isinstance(item.get("servers"), list):
            for server in item["servers"]:
                if isinstance(server, dict) and server.get("namespace") not in ns:
                    for f in ("name", "name_aggr", "ip"):
                        if f in server:
                            server[f] = _withhold(server[f])
                    if "labels" in server:
                        server["labels"] = None
        if withheld:
            item["withheld"] = withheld
    return items


def redact_l3(items: list[dict[str, Any]], scoped: dict[str, frozenset[str]]) -> list[dict[str, Any]]:
    """The same for aggregated L3 flows (POST /api/v1/flows)."""
    if not scoped:
        return items
    for item in items:
        key = item.get("key") or {}
        ns = scoped.get(str(key.get("cluster")))
        if ns is None:
            continue
        withheld = []
        for side, ips in (("source", "source_ips"), ("destination", "destination_ips")):
            ep = key.get(side) or {}
            if ep.get("namespace") in ns:
                continue
            withheld.append("source" if side == "source" else "dest")
            for f in ("aggregated_name", "name"):
                if ep.get(f):
                    ep[f] = WITHHELD
            item[ips] = _withhold(item.get(ips))
            if side == "destination":
                item["dest_domains"] = _withhold(item.get("dest_domains"))
                svc = item.get("dest_service")
                if isinstance(svc, dict) and svc.get("namespace") not in ns and svc.get("name") not in (None, "-"):
                    svc["name"] = WITHHELD
        if withheld:
            item["withheld"] = withheld
    return items
