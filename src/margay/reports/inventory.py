"""The inventory report (spec §12.3): endpoints, namespaces and services in scope through an interval, and
whether policy protected them for the whole of it; its CSV downloads carry exactly Calico's columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .csvout import render_csv
from .evaluate import (
    Endpoint,
    Policy,
    PolicyCache,
    Scope,
    apply,
    host_endpoint,
    namespace_labels,
    pod_endpoint,
    sa_labels,
    services,
)
from .state import Timeline


@dataclass
class _Seen:
    namespace: str
    service_account: str
    ingress: bool = True
    egress: bool = True
    envoy: bool = True
    aggr_name: str = ""
    exposed: list[bool] = field(default_factory=lambda: [False, False, False, False])  # "at any time"
    policies: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


def _see(seen: dict[str, _Seen], eps: list[Endpoint], scope: Scope, nsl: dict[str, dict[str, str]],
         sas: dict[tuple[str, str], dict[str, str]], svcs: dict[str, list[str]]) -> None:
    for ep in eps:
        if not scope.includes(ep, nsl, sas):
            continue
        s = seen.setdefault(ep.id, _Seen(ep.namespace, ep.service_account))
        s.ingress &= ep.ingress
        s.egress &= ep.egress
        s.envoy &= ep.envoy
        s.aggr_name = ep.aggr_name
        x = ep.exposure
        for i, flag in enumerate((x.ingress_internet, x.egress_internet, x.ingress_other_namespace,
                                  x.egress_other_namespace)):
            s.exposed[i] |= flag
        _union(s.policies, ep.policies)
        _union(s.services, svcs.get(ep.id, []))


def _union(into: list[str], more: list[str]) -> None:
    for x in more:
        if x not in into:
            into.append(x)


def compute(report_spec: dict[str, Any], tl: Timeline) -> dict[str, Any]:
    """The report document's inventory parts (endpoints, namespaces, services and their summaries).

    An endpoint is in scope when the scope matches it at any time of the interval; it is protected when a
    policy of that direction applied at every instant it existed in scope; policies and services are the
    union over the interval; Envoy must be present throughout.
    """
    scope = Scope.from_spec(report_spec.get("endpoints"))
    seen: dict[str, _Seen] = {}
    cache = PolicyCache()
    # Each state is evaluated per namespace (and once for the host endpoints), and only where something
    # that decides it changed since the previous state: updating `seen` again with the same endpoints is a
    # no-op (flags ANDed and ORed, lists unioned), so skipping an unchanged namespace changes nothing.
    last: dict[str, tuple[Any, ...]] = {}
    shared: tuple[Any, ...] | None = None
    version = 0
    svcs: dict[str, list[str]] = {}
    for _, _, state in tl.states():
        pols = cache.of(state)
        glob = [p for _, p in pols if not p.namespace]
        pols_of: dict[str, list[tuple[dict[str, Any], Policy]]] = {}
        for obj, p in pols:
            if p.namespace:
                pols_of.setdefault(p.namespace, []).append((obj, p))
        # what every namespace's evaluation reads: global policies, service endpoints, service accounts, and
        # the namespaces and network sets that policies' selectors and exposure read
        now = (tuple(o for o, p in pols if not p.namespace), *(tuple(state.get(k, {}).values()) for k in (
            "Endpoints", "ServiceAccount", "Namespace", "projectcalico.org/GlobalNetworkSet",
            "projectcalico.org/NetworkSet")))
        if now != shared:
            shared, version = now, version + 1
            svcs = services(state)
        nsl, sas = namespace_labels(state), sa_labels(state)
        pods: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for (ns, name), pod in state.get("Pod", {}).items():
            pods.setdefault(ns, []).append((name, pod))
        heps = state.get("projectcalico.org/HostEndpoint", {})
        groups: list[tuple[str, tuple[Any, ...]]] = [("", (version, tuple(heps.values())))]
        groups += [(ns, (version, tuple(o for o, _ in pols_of.get(ns, [])), state.get("Namespace", {}).get(("", ns)),
                         tuple(p for _, p in members))) for ns, members in pods.items()]
        for ns, key in groups:
            if last.get(ns) == key:
                continue
            last[ns] = key
            if ns:
                eps = [ep for name, pod in sorted(pods[ns]) if (ep := pod_endpoint(ns, name, pod)) is not None]
                apply(state, eps, glob + [p for _, p in pols_of.get(ns, [])], nsl, sas)
            else:
                eps = [host_endpoint(name, hep) for (_, name), hep in sorted(heps.items())]
                apply(state, eps, glob, nsl, sas)
            _see(seen, eps, scope, nsl, sas, svcs)
    eps_out = [{"endpoint": k, "ingressProtected": s.ingress, "egressProtected": s.egress,
                "envoyEnabled": s.envoy, "appliedPolicies": sorted(s.policies), "services": sorted(s.services),
                "ingressFromInternet": s.exposed[0], "egressToInternet": s.exposed[1],
                "ingressFromOtherNamespace": s.exposed[2], "egressToOtherNamespace": s.exposed[3],
                "flowLogAggregationName": s.aggr_name}
               for k, s in sorted(seen.items())]
    by_ns: dict[str, list[_Seen]] = {}
    by_svc: dict[str, list[_Seen]] = {}
    for s in seen.values():
        if s.namespace:
            by_ns.setdefault(s.namespace, []).append(s)
        for svc in s.services:
            by_svc.setdefault(svc, []).append(s)
    ns_out = [{"namespace": ns, "ingressProtected": all(x.ingress for x in ss),
               "egressProtected": all(x.egress for x in ss), "envoyEnabled": all(x.envoy for x in ss)}
              for ns, ss in sorted(by_ns.items())]
    svc_out = [{"service": svc, "ingressProtected": all(x.ingress for x in ss),
                "envoyEnabled": all(x.envoy for x in ss)} for svc, ss in sorted(by_svc.items())]
    return {
        "endpoints": eps_out,
        "endpointsSummary": {
            "numTotal": len(eps_out), "numIngressProtected": sum(e["ingressProtected"] for e in eps_out),
            "numEgressProtected": sum(e["egressProtected"] for e in eps_out),
            "numServiceAccounts": len({(s.namespace, s.service_account) for s in seen.values() if s.namespace}),
            "numEnvoyEnabled": sum(e["envoyEnabled"] for e in eps_out),
            "numIngressFromInternet": sum(e["ingressFromInternet"] for e in eps_out),
            "numEgressToInternet": sum(e["egressToInternet"] for e in eps_out),
            "numIngressFromOtherNamespace": sum(e["ingressFromOtherNamespace"] for e in eps_out),
            "numEgressToOtherNamespace": sum(e["egressToOtherNamespace"] for e in eps_out)},
        "namespaces": ns_out,
        "namespacesSummary": {
            "numTotal": len(ns_out), "numIngressProtected": sum(n["ingressProtected"] for n in ns_out),
            "numEgressProtected": sum(n["egressProtected"] for n in ns_out),
            "numEnvoyEnabled": sum(n["envoyEnabled"] for n in ns_out)},
        "services": svc_out,
        "servicesSummary": {"numTotal": len(svc_out), "numIngressProtected": sum(s["ingressProtected"] for s in svc_out),
                            "numEnvoyEnabled": sum(s["envoyEnabled"] for s in svc_out)},
    }


# -- downloads (csvout.py writes them: Calico's columns, RFC 4180 quoting, formulas neutralised) ----------------


def scope_columns(report: dict[str, Any]) -> dict[str, Any]:
    """The scope columns every report type's summary.csv starts with."""
    ep = (report.get("reportSpec") or {}).get("endpoints") or {}
    ns, sa = ep.get("namespaces") or {}, ep.get("serviceAccounts") or {}
    return {"startTime": report["startTime"], "endTime": report["endTime"],
            "endpointSelector": ep.get("selector", ""), "namespaceNames": ns.get("names") or [],
            "namespaceSelector": ns.get("selector", ""), "serviceAccountNames": sa.get("names") or [],
            "serviceAccountSelectors": sa.get("selector", "")}


SUMMARY_COLUMNS = ["startTime", "endTime", "endpointSelector", "namespaceNames", "namespaceSelector",
                   "serviceAccountNames", "serviceAccountSelectors", "endpointsNumInScope",
                   "endpointsNumIngressProtected", "endpointsNumEgressProtected", "namespacesNumInScope",
                   "namespacesNumIngressProtected", "namespacesNumEgressProtected", "serviceAccountsNumInScope"]


def downloads(report: dict[str, Any]) -> dict[str, str]:
    """summary.csv, endpoints.csv, namespaces.csv and services.csv of an inventory report document."""
    es, ns = report["endpointsSummary"], report["namespacesSummary"]
    summary = {**scope_columns(report),
               "endpointsNumInScope": es["numTotal"], "endpointsNumIngressProtected": es["numIngressProtected"],
               "endpointsNumEgressProtected": es["numEgressProtected"], "namespacesNumInScope": ns["numTotal"],
               "namespacesNumIngressProtected": ns["numIngressProtected"],
               "namespacesNumEgressProtected": ns["numEgressProtected"],
               "serviceAccountsNumInScope": es["numServiceAccounts"]}
    return {
        "summary.csv": render_csv(SUMMARY_COLUMNS, [summary], single=True),
        "endpoints.csv": render_csv(["endpoint", "ingressProtected", "egressProtected", "envoyEnabled",
                                     "appliedPolicies", "services"], report["endpoints"]),
        "namespaces.csv": render_csv(["namespace", "ingressProtected", "egressProtected", "envoyEnabled"],
                                     report["namespaces"]),
        "services.csv": render_csv(["service", "ingressProtected", "envoyEnabled"], report["services"]),
    }
