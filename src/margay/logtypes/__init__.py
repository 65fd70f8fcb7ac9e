"""The log type registry: every log type declared once (see base.py), looked up by name or RBAC name."""

from __future__ import annotations

from . import audit, bgp, compliance, dns, events, flows, l7, policy_activity, runtime, threatfeeds, waf
from .base import Field, Kind, LogType, QueryKey, Rollup, Side, quote_ident

REGISTRY: dict[str, LogType] = {
    lt.name: lt
    for lt in (flows.LOGTYPE, dns.LOGTYPE, audit.AUDIT_EE, audit.AUDIT_KUBE, bgp.LOGTYPE, events.LOGTYPE, l7.LOGTYPE,
               waf.LOGTYPE, policy_activity.LOGTYPE, runtime.LOGTYPE,
               compliance.SNAPSHOTS, compliance.REPORTS, compliance.BENCHMARKS, threatfeeds.IPSET,
               threatfeeds.DOMAINNAMESET)
}

SAMPLES: dict[str, list[str]] = {
    "flows": flows.SAMPLES, "dns": dns.SAMPLES, "audit_ee": audit.SAMPLES_EE, "audit_kube": audit.SAMPLES_KUBE,
    "bgp": bgp.SAMPLES, "events": events.SAMPLES, "l7": l7.SAMPLES, "waf": waf.SAMPLES,
    "policy_activity": policy_activity.SAMPLES, "runtime": runtime.SAMPLES,
    "snapshots": compliance.SAMPLES_SNAPSHOTS, "compliance_reports": compliance.SAMPLES_REPORTS,
    "benchmark_results": compliance.SAMPLES_BENCHMARKS,
    "threatfeeds_ipset": threatfeeds.SAMPLES_IPSET, "threatfeeds_domainnameset": threatfeeds.SAMPLES_DOMAINNAMESET,
}


def get(name: str) -> LogType:
    """A log type by margay name, index prefix or unambiguous RBAC name."""
    from ..errors import NotFound

    if name in REGISTRY:
        return REGISTRY[name]
    for lt in REGISTRY.values():
        if name == lt.index_prefix or (name in lt.rbac and name not in ("audit*", "audit")):
            return lt
    raise NotFound(f"unknown log type {name!r}; known: {', '.join(REGISTRY)}")


def by_rbac_name(resource_name: str) -> list[LogType]:
    """The log types an RBAC resource name grants (`audit*` grants both audit types)."""
    return [lt for lt in REGISTRY.values() if resource_name in lt.rbac]


__all__ = ["REGISTRY", "SAMPLES", "Field", "Kind", "LogType", "QueryKey", "Rollup", "Side", "get", "by_rbac_name", "quote_ident"]
