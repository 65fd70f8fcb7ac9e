"""The network-access report (spec §12.3): inventory's endpoints with what their policies expose them to,
and the traffic flow logs show to and from each (per aggregation prefix), summed in the engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..logtypes import REGISTRY
from ..query.model import Query
from ..store.backend import Backend
from .csvout import render_csv
from .inventory import scope_columns

FLOWS = REGISTRY["flows"]
FlowKey = tuple[str, str, str, bool]  # (kind, namespace, name, name is an aggregation prefix)


def _side(ep: dict[str, Any]) -> FlowKey:
    kind = {"wep": "Pod", "hep": "HostEndpoint", "net": "Network"}.get(ep.get("type") or "", "")
    ns = ep.get("namespace") or ""
    ns = "" if ns == "-" else ns
    if ep.get("type") == "ns":
        kind = "NetworkSet" if ns else "GlobalNetworkSet"
    return kind, ns, ep.get("aggregated_name") or "-", True


def render(key: FlowKey) -> str:
    """A flow endpoint as Calico renders one: Pod.v1(ns/name-*), HostEndpoint(name), NetworkSet(ns/name)."""
    kind, ns, name, _ = key
    shown = {"Pod": "Pod.v1"}.get(kind, kind)
    return f"{shown}({ns}/{name})" if ns else f"{shown}({name})"


PAIR_FIELDS = ["source_type", "source_namespace", "source_name_aggr", "dest_type", "dest_namespace", "dest_name_aggr"]


def endpoint_pairs(backend: Backend, cluster: str, start: datetime, end: datetime) -> list[tuple[FlowKey, FlowKey]]:
    """Every distinct (source, destination) pair of the interval's flow logs at their aggregation prefixes,
    grouped in the engine (Backend.distinct), never read row by row."""
    pairs: set[tuple[FlowKey, FlowKey]] = set()
    for st, sns, sname, dt, dns, dname in backend.distinct(Query(FLOWS, [cluster], start=start, end=end), PAIR_FIELDS):
        pairs.add((_side({"type": st, "namespace": sns, "aggregated_name": sname}),
                   _side({"type": dt, "namespace": dns, "aggregated_name": dname})))
    return sorted(pairs)


def traffic(endpoints: list[dict[str, Any]], pairs: list[tuple[FlowKey, FlowKey]]) -> None:
    """Add trafficAggregationPrefix and the endpoints sending to / receiving from each endpoint (Calico's
    lookup: the endpoint's own name first, then its aggregation name)."""
    ingress: dict[FlowKey, set[str]] = {}
    egress: dict[FlowKey, set[str]] = {}
    for src, dst in pairs:
        if dst[0] in ("Pod", "HostEndpoint"):
            ingress.setdefault(dst, set()).add(render(src))
        if src[0] in ("Pod", "HostEndpoint"):
            egress.setdefault(src, set()).add(render(dst))
    for ep in endpoints:
        ident = ep["endpoint"]
        kind = "Pod" if ident.startswith("Pod.v1(") else "HostEndpoint"
        inner = ident[ident.index("(") + 1:-1]
        ns, _, name = inner.rpartition("/")
        prefix, ins, outs = "", set(), set()
        for key in ((kind, ns, name, False), (kind, ns, ep.get("flowLogAggregationName") or name, True)):
            if key in ingress or key in egress:
                prefix, ins, outs = key[2], ingress.get(key, set()), egress.get(key, set())
                break
        ep["trafficAggregationPrefix"] = prefix
        ep["endpointsGeneratingTrafficToThisEndpoint"] = sorted(ins)
        ep["endpointsReceivingTrafficFromThisEndpoint"] = sorted(outs)


SUMMARY_COLUMNS = ["startTime", "endTime", "endpointSelector", "namespaceNames", "namespaceSelector",
                   "serviceAccountNames", "serviceAccountSelectors", "endpointsNumIngressProtected",
                   "endpointsNumEgressProtected", "endpointsNumIngressUnprotected", "endpointsNumEgressUnprotected",
                   "endpointsNumIngressFromInternet", "endpointsNumEgressToInternet",
                   "endpointsNumIngressFromOtherNamespace", "endpointsNumEgressToOtherNamespace",
                   "endpointsNumEnvoyEnabled"]
ENDPOINT_COLUMNS = ["endpoint", "ingressProtected", "egressProtected", "ingressFromInternet", "egressToInternet",
                    "ingressFromOtherNamespace", "egressToOtherNamespace", "envoyEnabled", "appliedPolicies",
                    "trafficAggregationPrefix", "endpointsGeneratingTrafficToThisEndpoint",
                    "endpointsReceivingTrafficFromThisEndpoint"]


def downloads(report: dict[str, Any]) -> dict[str, str]:
    """summary.csv and endpoints.csv of a network-access report document."""
    s = report["endpointsSummary"]
    row = {**scope_columns(report),
           "endpointsNumIngressProtected": s["numIngressProtected"], "endpointsNumEgressProtected": s["numEgressProtected"],
           "endpointsNumIngressUnprotected": s["numTotal"] - s["numIngressProtected"],
           "endpointsNumEgressUnprotected": s["numTotal"] - s["numEgressProtected"],
           "endpointsNumIngressFromInternet": s["numIngressFromInternet"],
           "endpointsNumEgressToInternet": s["numEgressToInternet"],
           "endpointsNumIngressFromOtherNamespace": s["numIngressFromOtherNamespace"],
           "endpointsNumEgressToOtherNamespace": s["numEgressToOtherNamespace"],
           "endpointsNumEnvoyEnabled": s["numEnvoyEnabled"]}
    return {"summary.csv": render_csv(SUMMARY_COLUMNS, [row], single=True),
            "endpoints.csv": render_csv(ENDPOINT_COLUMNS, report["endpoints"])}
