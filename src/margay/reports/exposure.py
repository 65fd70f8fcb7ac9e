"""What a policy's allow rules open an endpoint to (spec §12.3): other namespaces and the internet.

*Other namespace*: an allow rule with an explicit namespace selector, or with neither selector nor CIDR (in a
GlobalNetworkPolicy any rule without a CIDR). *Internet*: an allow rule with neither selector nor CIDR, or a
public CIDR and no selector, or a selector matching a network set that holds a public address.
Kubernetes NetworkPolicy peers: none at all allows everything; `ipBlock` with a public CIDR is the
internet; a `namespaceSelector` is other namespaces.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .resources import Resources, labels_of
from .selector import parse_calico

_NAME_LABEL = "projectcalico.org/name"


@dataclass(frozen=True)
class Exposure:
    ingress_internet: bool = False
    egress_internet: bool = False
    ingress_other_namespace: bool = False
    egress_other_namespace: bool = False


def is_public(cidr: Any) -> bool:
    """A CIDR that reaches beyond private, loopback, link-local and shared address space."""
    try:
        net = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False
    return not (net.is_private or net.is_loopback or net.is_link_local or net.is_reserved) or net.prefixlen == 0


@dataclass(frozen=True)
class _NetSet:
    namespace: str  # "" for GlobalNetworkSets
    labels: dict[str, str]
    public: bool


def _netsets(state: Resources) -> list[_NetSet]:
    out = []
    for key in ("projectcalico.org/GlobalNetworkSet", "projectcalico.org/NetworkSet"):
        for (ns, _), obj in state.get(key, {}).items():
            nets = (obj.get("spec") or {}).get("nets") or []
            out.append(_NetSet(ns, labels_of(obj), any(is_public(n) for n in nets)))
    return out


def _selects_public_set(entity: dict[str, Any], policy_ns: str, sets: list[_NetSet],
                        ns_labels: dict[str, dict[str, str]]) -> bool:
    sel = entity.get("selector")
    if not sel:
        return False
    match = parse_calico(sel, "rule selector")
    ns_sel_text = entity.get("namespaceSelector")
    ns_sel = parse_calico(ns_sel_text, "rule namespaceSelector") if ns_sel_text else None
    for s in sets:
        if not s.public or not match(s.labels, not s.namespace):
            continue
        if ns_sel is not None:
            if ns_sel(ns_labels.get(s.namespace, {}) if s.namespace else {}, not s.namespace):
                return True
        elif not policy_ns or s.namespace == policy_ns:
            return True  # a namespaced policy's bare selector sees its own namespace's sets
    return False


def calico(obj: dict[str, Any], policy_ns: str, ingress: bool, egress: bool, state: Resources) -> Exposure:
    """The exposure of a Calico (Global)NetworkPolicy's allow rules in the directions it enforces."""
    spec = obj.get("spec") or {}
    sets = _netsets(state)
    ns_labels = {name: {**labels_of(o), _NAME_LABEL: name} for (_, name), o in state.get("Namespace", {}).items()}
    flags = {"ingress": [False, False], "egress": [False, False]}  # [internet, other namespace]
    for direction, peer_key, enforced in (("ingress", "source", ingress), ("egress", "destination", egress)):
        if not enforced:
            continue
        for rule in spec.get(direction) or []:
            if not isinstance(rule, dict) or rule.get("action") != "Allow":
                continue
            entity = rule.get(peer_key) or {}
            has_sel = bool(entity.get("selector") or entity.get("namespaceSelector") or entity.get("serviceAccounts"))
            nets = entity.get("nets") or []
            f = flags[direction]
            if not has_sel and not nets:
                f[0] = f[1] = True
                continue
            if (nets and not has_sel and any(is_public(n) for n in nets)) or _selects_public_set(
                    entity, policy_ns, sets, ns_labels):
                f[0] = True
            if entity.get("namespaceSelector") or (not policy_ns and not nets):
                f[1] = True
    return Exposure(flags["ingress"][0], flags["egress"][0], flags["ingress"][1], flags["egress"][1])


def kubernetes(obj: dict[str, Any], ingress: bool, egress: bool) -> Exposure:
    """The exposure of a Kubernetes NetworkPolicy's rules (all of them allow)."""
    spec = obj.get("spec") or {}
    flags = {"ingress": [False, False], "egress": [False, False]}
    for direction, peers_key, enforced in (("ingress", "from", ingress), ("egress", "to", egress)):
        if not enforced:
            continue
        for rule in spec.get(direction) or []:
            peers = (rule or {}).get(peers_key) or []
            f = flags[direction]
            if not peers:
                f[0] = f[1] = True
                continue
            for peer in peers:
                block = (peer or {}).get("ipBlock") or {}
                if block.get("cidr") and is_public(block["cidr"]):
                    f[0] = True
                if (peer or {}).get("namespaceSelector") is not None:
                    f[1] = True
    return Exposure(flags["ingress"][0], flags["egress"][0], flags["ingress"][1], flags["egress"][1])
