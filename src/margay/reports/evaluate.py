"""Policy evaluation over one cluster state (spec §12.3): the endpoints (pods, host endpoints), which
enforced policies select each of them, ingress/egress, and a GlobalReport's endpoint scope.

Staged policies never enforce, so they protect nothing. Calico's own labels are added as Calico does:
`projectcalico.org/namespace`, `projectcalico.org/orchestrator` and `projectcalico.org/serviceaccount` on
pods, `projectcalico.org/name` on namespaces and service accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ParseError
from . import exposure
from .exposure import Exposure
from .resources import Resources, labels_of
from .selector import Predicate, parse_calico, parse_k8s

_NS_LABEL, _SA_LABEL, _ORCH = "projectcalico.org/namespace", "projectcalico.org/serviceaccount", "projectcalico.org/orchestrator"
_NAME_LABEL = "projectcalico.org/name"


@dataclass
class Endpoint:
    id: str  # Pod.v1(ns/name) or HostEndpoint(name), as Calico's ResourceID renders (Calico v3 kinds bare)
    namespace: str  # "" for host endpoints
    service_account: str
    labels: dict[str, str]
    envoy: bool
    aggr_name: str  # the flow-log aggregation name (generateName + "*" for pods of a controller)
    policies: list[str] = field(default_factory=list)
    ingress: bool = False
    egress: bool = False
    exposure: Exposure = Exposure()


@dataclass(frozen=True)
class Policy:
    id: str
    namespace: str  # "" for global policies
    applies: Predicate  # over endpoint labels
    ns_selector: Predicate | None
    sa_selector: Predicate | None
    ingress: bool
    egress: bool
    pods_only: bool  # Kubernetes NetworkPolicies select pods of their namespace only
    exposure: Exposure


def _types(spec: dict[str, Any], key: str, where: str) -> tuple[bool, bool]:
    types = spec.get(key)
    if types is None:
        return True, bool(spec.get("egress"))
    if not isinstance(types, list) or not all(t in ("Ingress", "Egress") for t in types):
        raise ParseError(f"{where}.spec.{key}: expected a list of Ingress and Egress")
    return "Ingress" in types, "Egress" in types


def policies(state: Resources, cache: PolicyCache | None = None) -> list[Policy]:
    """Every enforced policy of a state, its selectors parsed (malformed ones raise naming the policy)."""
    return [p for _, p in (cache or PolicyCache()).of(state)]


class PolicyCache:
    """Parsed policies across the states of a timeline. States share the objects that did not change, so a
    policy is parsed again only when its object changed, or the network sets or namespaces its exposure
    reads did (compared by identity first, by value when not the same object)."""

    def __init__(self) -> None:
        self._context: tuple[Any, ...] | None = None
        self._parsed: dict[int, tuple[dict[str, Any], Policy]] = {}

    def of(self, state: Resources) -> list[tuple[dict[str, Any], Policy]]:
        """(object, Policy) of every enforced policy, in a fixed order (kind, namespace, name)."""
        context = tuple(tuple(state.get(k, {}).values()) for k in (
            "projectcalico.org/GlobalNetworkSet", "projectcalico.org/NetworkSet", "Namespace"))
        if context != self._context:
            self._context, self._parsed = context, {}
        out = []
        for key in ("projectcalico.org/GlobalNetworkPolicy", "projectcalico.org/NetworkPolicy",
                    "networking.k8s.io/NetworkPolicy"):
            for (ns, name), obj in sorted(state.get(key, {}).items()):
                hit = self._parsed.get(id(obj))
                if hit is None or hit[0] is not obj:
                    hit = (obj, _policy(key, ns, name, obj, state))
                    self._parsed[id(obj)] = hit
                out.append(hit)
        return out


def _policy(key: str, ns: str, name: str, obj: dict[str, Any], state: Resources) -> Policy:
    if key == "networking.k8s.io/NetworkPolicy":
        where = f"NetworkPolicy {ns}/{name}"
        spec = obj.get("spec") or {}
        if not isinstance(spec, dict):
            raise ParseError(f"{where}.spec: expected an object")
        ingress, egress = _types(spec, "policyTypes", where)
        pod_sel = parse_k8s(spec.get("podSelector", {}), f"{where}.spec.podSelector")
        assert pod_sel is not None
        return Policy(f"NetworkPolicy.networking.k8s.io/v1({ns}/{name})", ns, pod_sel, None, None,
                      ingress, egress, True, exposure.kubernetes(obj, ingress, egress))
    kind = key.split("/")[1]
    where = f"{kind} {ns + '/' if ns else ''}{name}"
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise ParseError(f"{where}.spec: expected an object")
    ingress, egress = _types(spec, "types", where)
    ns_sel = spec.get("namespaceSelector")
    sa_sel = spec.get("serviceAccountSelector")
    return Policy(
        f"{kind}({ns + '/' if ns else ''}{name})", ns,
        parse_calico(spec.get("selector"), f"{where}.spec.selector"),
        parse_calico(ns_sel, f"{where}.spec.namespaceSelector") if ns_sel else None,
        parse_calico(sa_sel, f"{where}.spec.serviceAccountSelector") if sa_sel else None,
        ingress, egress, False, exposure.calico(obj, ns, ingress, egress, state))


def namespace_labels(state: Resources) -> dict[str, dict[str, str]]:
    return {name: {**labels_of(obj), _NAME_LABEL: name} for (_, name), obj in state.get("Namespace", {}).items()}


def sa_labels(state: Resources) -> dict[tuple[str, str], dict[str, str]]:
    return {ref: {**labels_of(obj), _NAME_LABEL: ref[1]} for ref, obj in state.get("ServiceAccount", {}).items()}


def endpoints(state: Resources) -> list[Endpoint]:
    """The pods (not host-networked, not finished) and host endpoints of a state."""
    out = [ep for (ns, name), pod in sorted(state.get("Pod", {}).items())
           if (ep := pod_endpoint(ns, name, pod)) is not None]
    return out + [host_endpoint(name, hep)
                  for (_, name), hep in sorted(state.get("projectcalico.org/HostEndpoint", {}).items())]


def pod_endpoint(ns: str, name: str, pod: dict[str, Any]) -> Endpoint | None:
    """A pod as an endpoint; None when it is host-networked or finished."""
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    containers = {c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)}
    inits = {c.get("name") for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    labels = {**labels_of(pod), _NS_LABEL: ns, _ORCH: "k8s", _SA_LABEL: sa}
    generate = (pod.get("metadata") or {}).get("generateName")
    return Endpoint(f"Pod.v1({ns}/{name})", ns, sa, labels, "istio-proxy" in containers and "istio-init" in inits,
                    f"{generate}*" if isinstance(generate, str) and generate else name)


def host_endpoint(name: str, hep: dict[str, Any]) -> Endpoint:
    return Endpoint(f"HostEndpoint({name})", "", "", labels_of(hep), False, name)


def apply(state: Resources, eps: list[Endpoint], pols: list[Policy] | None = None,
          ns_labels: dict[str, dict[str, str]] | None = None,
          sas: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
    """Fill each endpoint's applied policies and ingress/egress protection (from `pols`, default every
    enforced policy of the state; callers evaluating one namespace pass the global ones and its own)."""
    pols = policies(state) if pols is None else pols
    ns_labels = namespace_labels(state) if ns_labels is None else ns_labels
    sas = sa_labels(state) if sas is None else sas
    for ep in eps:
        nsl = ns_labels.get(ep.namespace, {_NAME_LABEL: ep.namespace}) if ep.namespace else {}
        sal = sas.get((ep.namespace, ep.service_account), {_NAME_LABEL: ep.service_account})
        for p in pols:
            if p.namespace and p.namespace != ep.namespace:
                continue
            if p.pods_only and not ep.namespace:
                continue
            if not p.applies(ep.labels, not ep.namespace):
                continue
            if p.ns_selector is not None and not p.ns_selector(nsl, not ep.namespace):
                continue
            if p.sa_selector is not None and (not ep.namespace or not p.sa_selector(sal, False)):
                continue
            ep.policies.append(p.id)
            ep.ingress |= p.ingress
            ep.egress |= p.egress
            x, y = ep.exposure, p.exposure
            ep.exposure = Exposure(x.ingress_internet or y.ingress_internet, x.egress_internet or y.egress_internet,
                                   x.ingress_other_namespace or y.ingress_other_namespace,
                                   x.egress_other_namespace or y.egress_other_namespace)


@dataclass(frozen=True)
class Scope:
    """A GlobalReport's `spec.endpoints`: selector, namespaces{names,selector}, serviceAccounts{names,selector}."""

    selector: Predicate
    ns_names: frozenset[str] | None
    ns_selector: Predicate | None
    sa_names: frozenset[str] | None
    sa_selector: Predicate | None

    @classmethod
    def from_spec(cls, spec: Any, where: str = "spec.endpoints") -> Scope:
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise ParseError(f"{where}: expected an object")
        parts: list[tuple[frozenset[str] | None, Predicate | None]] = []
        for key in ("namespaces", "serviceAccounts"):
            sub = spec.get(key)
            if sub is None:
                parts.append((None, None))
                continue
            if not isinstance(sub, dict):
                raise ParseError(f"{where}.{key}: expected an object with names and/or selector")
            names = sub.get("names")
            if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                raise ParseError(f"{where}.{key}.names: expected a list of names")
            sel = sub.get("selector")
            parts.append((frozenset(names) if names is not None else None,
                          parse_calico(sel, f"{where}.{key}.selector") if sel else None))
        return cls(parse_calico(spec.get("selector"), f"{where}.selector"), parts[0][0], parts[0][1],
                   parts[1][0], parts[1][1])

    def includes(self, ep: Endpoint, ns_labels: dict[str, dict[str, str]],
                 sas: dict[tuple[str, str], dict[str, str]]) -> bool:
        if not self.selector(ep.labels, not ep.namespace):
            return False
        if self.ns_names is not None or self.ns_selector is not None:
            if not ep.namespace:
                return False
            if self.ns_names is not None and ep.namespace not in self.ns_names:
                return False
            if self.ns_selector is not None and not self.ns_selector(ns_labels.get(ep.namespace, {}), False):
                return False
        if self.sa_names is not None or self.sa_selector is not None:
            if not ep.namespace:
                return False
            if self.sa_names is not None and ep.service_account not in self.sa_names:
                return False
            if self.sa_selector is not None and not self.sa_selector(
                    sas.get((ep.namespace, ep.service_account), {}), False):
                return False
        return True


def services(state: Resources) -> dict[str, list[str]]:
    """Endpoint id -> the services (Service.v1(ns/name)) whose Endpoints address it."""
    out: dict[str, list[str]] = {}
    for (ns, name), obj in sorted(state.get("Endpoints", {}).items()):
        for subset in obj.get("subsets") or []:
            for key in ("addresses", "notReadyAddresses"):
                for addr in (subset or {}).get(key) or []:
                    ref = (addr or {}).get("targetRef") or {}
                    if ref.get("kind") == "Pod" and ref.get("name"):
                        ep = f"Pod.v1({ref.get('namespace') or ns}/{ref['name']})"
                        svc = f"Service.v1({ns}/{name})"
                        if svc not in out.setdefault(ep, []):
                            out[ep].append(svc)
    return out
