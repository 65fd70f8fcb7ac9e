"""A reader's grant as data: which rows of a query it may see and which of their fields are withheld.

Namespace-scoped reads (beyond Calico). A reader granted a log type of a cluster only through RoleBindings
in namespaces N sees the records one of whose endpoints (`LogType.sides`, declared per type) is in N:
- flows, L7 and events: source or destination namespace in N; DNS: the client's; audit: objectRef's;
- BGP: nothing (its records have no namespace).
In a visible record, every field naming an endpoint outside N is withheld: replaced by "<withheld>" (objects
by null), and the record lists the withheld sides under "withheld"; the type's `shared` fields (process
names, event text) are withheld whenever any endpoint is, and so are the keys no field of the type declares
(kept and returned as sent: a WAF record's `headers`, say, may name either endpoint). A query, aggregation, sort or filter hint that
names a field of an endpoint reads only the records where that endpoint is in N, so neither counts nor
hints nor sort values reveal withheld names.

A `Restriction` travels in the Query; each engine turns `selector()` into its own filter (SQL or query
DSL) and passes results through `withhold()`: no API path applies access on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Forbidden
from ..logtypes.base import LogType, Side, own_keys
from .selector import And, Compare, InSet, Node, Not, Or

WITHHELD = "<withheld>"


@dataclass(frozen=True)
class Restriction:
    """The clusters of a read that are readable only in part: cluster -> readable namespaces.

    `required`: the sides whose fields the request names; only rows where those sides are in scope count.
    `rows`: a further filter the grant imposes whatever the namespaces, e.g. the compliance reports whose
    GlobalReport and GlobalReportType the reader may get (access/reports.py).
    """

    scoped: Mapping[str, frozenset[str]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    rows: Node | None = None

    def __bool__(self) -> bool:
        return bool(self.scoped)

    def naming(self, lt: LogType, keys: Iterable[str]) -> Restriction:
        """This restriction, narrowed to the rows where every endpoint that `keys` name is in scope."""
        if not self.scoped:
            return self
        resolved = {lt.aliases.get(k, k) for k in keys}
        required = set(self.required)
        for side in lt.sides:
            fields = tuple(f"{side.nested}.{f}" for f in side.identity) if side.nested else side.identity
            if not any(k == f or k.startswith(f + ".") for k in resolved for f in fields):
                continue
            if side.nested or not side.selects:
                raise Forbidden(f"namespace-scoped readers cannot query, sort or aggregate by "
                                f"{', '.join(sorted(k for k in resolved if k.split('.')[0] == side.nested))} "
                                f"(it names {side.name}s outside your namespaces)")
            required.add(side.name)
        if any(k == f or k.startswith(f + ".") for k in resolved for f in lt.shared):
            required |= {s.name for s in lt.sides if s.selects}
        return Restriction(self.scoped, frozenset(required), self.rows)

    def selector(self, lt: LogType, clusters: Iterable[str]) -> Node | None:
        """The rows visible over `clusters` (None: all of them)."""
        scope = self._scope(lt, clusters)
        if self.rows is None:
            return scope
        return self.rows if scope is None else And((self.rows, scope))

    def _scope(self, lt: LogType, clusters: Iterable[str]) -> Node | None:
        if not self.scoped:
            return None
        clusters = list(clusters)
        full = [c for c in clusters if c not in self.scoped]
        sides = [s for s in lt.sides if s.selects]
        parts: list[Node] = []
        if full:
            parts.append(InSet("cluster", tuple(full)))
        for cluster in sorted(c for c in clusters if c in self.scoped):
            ns = tuple(sorted(self.scoped[cluster]))
            if not sides or not ns:
                continue
            visible: Node = Or(tuple(InSet(s.namespace, ns) for s in sides)) if len(sides) > 1 else \
                InSet(sides[0].namespace, ns)
            must = [InSet(s.namespace, ns) for s in sides if s.name in self.required]
            parts.append(And((Compare("cluster", "=", cluster), visible, *must)))
        if not parts:
            return InSet("cluster", ())  # matches nothing
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def withhold(self, lt: LogType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Withhold the out-of-scope endpoints of records (records of fully readable clusters pass)."""
        if not self.scoped:
            return items
        declared = frozenset(own_keys(lt))
        for item in items:
            ns = self.scoped.get(item.get("cluster"))  # type: ignore[arg-type]
            if ns is not None:
                _withhold_record(lt, item, ns, declared)
        return items

    def withhold_l3(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The same for aggregated L3 flows (Linseed's POST /flows items)."""
        if not self.scoped:
            return items
        for item in items:
            key = item.get("key") or {}
            ns = self.scoped.get(str(key.get("cluster")))
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
                item[ips] = _value(item.get(ips))
                if side == "destination":
                    item["dest_domains"] = _value(item.get("dest_domains"))
                    svc = item.get("dest_service")
                    if isinstance(svc, dict) and svc.get("name") not in (None, "-", ""):
                        svc["name"] = WITHHELD
            if withheld:
                if isinstance(item.get("process"), dict):
                    item["process"] = {"name": WITHHELD}
                for key in ("enforced_policies", "pending_policies"):  # both sides' policies (flows' `policies`)
                    if key in item:
                        item[key] = None
                item["withheld"] = withheld
        return items


NONE = Restriction()


def _get(item: dict[str, Any], key: str) -> Any:
    value: Any = item
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _value(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        return [WITHHELD] if value else value
    return WITHHELD


def _withhold_fields(item: dict[str, Any], fields: Iterable[str]) -> None:
    for f in fields:
        # `source.name`: a key of a single object (WAF logs' endpoints); `rules.message`: of each object of a list
        *parents, leaf = f.split(".")
        here: list[Any] = [item]
        for p in parents:
            below: list[Any] = []
            for h in here:
                if isinstance(h, dict):
                    v = h.get(p)
                    below += v if isinstance(v, list) else [v]
            here = below
        for h in here:
            if isinstance(h, dict) and leaf in h:
                h[leaf] = _value(h[leaf])


def _withhold_record(lt: LogType, item: dict[str, Any], ns: frozenset[str], declared: frozenset[str]) -> None:
    withheld = []
    for side in lt.sides:
        if side.nested:
            withheld += _withhold_nested(side, item.get(side.nested), ns)
            continue
        if not side.identity or _get(item, side.namespace) in ns:
            continue
        withheld.append(side.name)
        _withhold_fields(item, side.identity)
    if withheld:
        _withhold_fields(item, lt.shared)
        for key in [k for k in item if k not in declared]:  # kept as sent, declared by no field: may name either side
            item[key] = _value(item[key])
        item["withheld"] = list(dict.fromkeys(withheld))


def _withhold_nested(side: Side, items: Any, ns: frozenset[str]) -> list[str]:
    if not isinstance(items, list):
        return []
    out = []
    for sub in items:
        if isinstance(sub, dict) and sub.get(side.namespace) not in ns:
            _withhold_fields(sub, side.identity)
            out.append(side.name)
    return out


# -- which fields a request names ---------------------------------------------------------------------
def selector_keys(node: Node | None) -> set[str]:
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
    """Every field named anywhere in an aggregation tree (`field`, `fields`, sort keys, scripts' params)."""
    out: set[str] = set()
    if isinstance(aggs, dict):
        for k, v in aggs.items():
            if k == "field" and isinstance(v, str):
                out.add(v)
            elif k == "fields" and isinstance(v, list):
                out |= {x for x in v if isinstance(x, str)} | agg_fields(v)
            else:
                out |= agg_fields(v)
    elif isinstance(aggs, list):
        for v in aggs:
            out |= agg_fields(v)
    return out
