"""The kinds margay reads from a cluster, and where an API server serves each one.

Calico's kinds are served two ways: as `projectcalico.org/v3` by Calico's own (aggregated) API server, and as
the `crd.projectcalico.org/v1` CustomResourceDefinitions it stores them in. margay prefers v3 when the cluster
serves it and falls back to the CRDs.
"""

from __future__ import annotations

from dataclasses import dataclass

CALICO_V3 = "projectcalico.org/v3"
CALICO_CRD = "crd.projectcalico.org/v1"


@dataclass(frozen=True)
class Kind:
    kind: str  # e.g. "GlobalAlert"
    plural: str  # the resource name, e.g. "globalalerts"
    api_versions: tuple[str, ...]  # in order of preference; "v1" is the core group
    namespaced: bool

    def path(self, api_version: str, namespace: str = "") -> str:
        """The collection's REST path, e.g. /apis/crd.projectcalico.org/v1/globalalerts."""
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return base + (f"/namespaces/{namespace}" if namespace else "") + f"/{self.plural}"


def _k8s(kind: str, plural: str, api: str, namespaced: bool) -> Kind:
    return Kind(kind, plural, (api,), namespaced)


def _calico(kind: str, plural: str, namespaced: bool) -> Kind:
    return Kind(kind, plural, (CALICO_V3, CALICO_CRD), namespaced)


_ALL = [
    # Kubernetes (spec §12.2)
    _k8s("Pod", "pods", "v1", True),
    _k8s("Namespace", "namespaces", "v1", False),
    _k8s("ServiceAccount", "serviceaccounts", "v1", True),
    _k8s("Service", "services", "v1", True),
    _k8s("Endpoints", "endpoints", "v1", True),
    _k8s("NetworkPolicy", "networkpolicies", "networking.k8s.io/v1", True),
    # Calico policy and endpoint kinds (spec §12.2)
    _calico("GlobalNetworkPolicy", "globalnetworkpolicies", False),
    _calico("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", False),
    _calico("GlobalNetworkSet", "globalnetworksets", False),
    _calico("NetworkSet", "networksets", True),
    _calico("HostEndpoint", "hostendpoints", False),
    _calico("CalicoNetworkPolicy", "networkpolicies", True),
    _calico("StagedNetworkPolicy", "stagednetworkpolicies", True),
    _calico("StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", True),
    _calico("Tier", "tiers", False),
    # Calico configuration margay acts on
    _calico("GlobalAlert", "globalalerts", False),
    _calico("GlobalThreatFeed", "globalthreatfeeds", False),
    _calico("GlobalReport", "globalreports", False),
    _calico("GlobalReportType", "globalreporttypes", False),
    Kind("LogCollector", "logcollectors", ("operator.tigera.io/v1",), False),
    Kind("LogStorage", "logstorages", ("operator.tigera.io/v1",), False),
]

# Keyed by a name unique across groups: the Kubernetes kind, except Calico's namespaced NetworkPolicy.
KINDS: dict[str, Kind] = {k.kind: k for k in _ALL}

COMPLIANCE = ("Pod", "Namespace", "ServiceAccount", "Service", "Endpoints", "NetworkPolicy",
              "GlobalNetworkPolicy", "StagedGlobalNetworkPolicy", "GlobalNetworkSet", "NetworkSet", "HostEndpoint",
              "CalicoNetworkPolicy", "StagedNetworkPolicy", "StagedKubernetesNetworkPolicy", "Tier")
CALICO_CONFIG = ("GlobalAlert", "GlobalThreatFeed", "GlobalReport", "GlobalReportType", "LogCollector", "LogStorage")


def api_kind(name: str) -> str:
    """The kind as the API server names it (CalicoNetworkPolicy -> NetworkPolicy)."""
    return "NetworkPolicy" if name == "CalicoNetworkPolicy" else name
