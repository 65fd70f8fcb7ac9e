"""May this caller read this log type of this cluster? One interface, a local and a Kubernetes answer.

The check is Calico Enterprise's (spec §9.1): API group `lma.tigera.io`, resource = cluster name,
resourceName = the log type's RBAC name, verb `get`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from .cache import TTLCache
from .identity import MASTERS, Identity
from .kube import KubeClient
from .rbac import PolicySource

GROUP = "lma.tigera.io"


class Authorizer(Protocol):
    def allowed(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get",
                namespace: str = "", group: str = GROUP) -> bool:
        """The SubjectAccessReview answer for (verb, lma.tigera.io, cluster, rbac_name[, namespace]); another
        `group` asks about (verb, group, resource=cluster, name=rbac_name), e.g. projectcalico.org resources."""
        ...

    def namespaces(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get") -> frozenset[str]:
        """Namespaces in which a RoleBinding grants the request (for namespace-scoped reads)."""
        ...

    def prefetch(self, user: Identity, clusters: list[str], rbac_names: list[str], *, verb: str = "get") -> None:
        """Make the answers for every (cluster, name) pair cheap to ask next (a no-op where they already are)."""
        ...


class AllowAll:
    """Authentication off: every caller may read everything."""

    def allowed(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get",
                namespace: str = "", group: str = GROUP) -> bool:
        return True

    def namespaces(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get") -> frozenset[str]:
        return frozenset()

    def prefetch(self, user: Identity, clusters: list[str], rbac_names: list[str], *, verb: str = "get") -> None:
        return None


class LocalAuthorizer:
    """Kubernetes RBAC evaluated from YAML files; decisions cached briefly (cleared on reload)."""

    def __init__(self, source: PolicySource | None, *, ttl: float = 5.0, maxsize: int = 10_000) -> None:
        self.source = source
        self.cache: TTLCache[object] = TTLCache(maxsize, ttl)
        if source is not None:
            source.on_reload = self.cache.clear

    def allowed(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get",
                namespace: str = "", group: str = GROUP) -> bool:
        if self.source is None:
            return MASTERS in user.groups and not user.is_writer
        policy = self.source.current()
        key = ("allowed", user, verb, group, cluster, rbac_name, namespace)
        hit = self.cache.get(key)
        if hit is None:
            hit = policy.allowed(user, verb, group, cluster, rbac_name, namespace)
            self.cache.put(key, hit)
        return bool(hit)

    def namespaces(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get") -> frozenset[str]:
        if self.source is None:
            return frozenset()
        policy = self.source.current()
        key = ("namespaces", user, verb, cluster, rbac_name)
        hit = self.cache.get(key)
        if not isinstance(hit, frozenset):
            hit = policy.namespaces(user, verb, GROUP, cluster, rbac_name)
            self.cache.put(key, hit)
        return hit

    def prefetch(self, user: Identity, clusters: list[str], rbac_names: list[str], *, verb: str = "get") -> None:
        return None  # evaluated in memory: each answer is already cheap


class KubeAuthorizer:
    """SubjectAccessReview against the API server (KubeClient caches the answers).

    Namespace-scoped grants: with `namespaces` (the names of the API server's namespaces, where RoleBindings
    live) a caller without a cluster-wide grant is asked about in each namespace, one cached review each.
    """

    def __init__(self, kube: KubeClient, namespaces: Callable[[], Iterable[str]] | None = None) -> None:
        self.kube = kube
        self._namespaces = namespaces

    def allowed(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get",
                namespace: str = "", group: str = GROUP) -> bool:
        if user.is_writer:
            return False
        return self.kube.access(user, verb, group, cluster, rbac_name, namespace)

    def namespaces(self, user: Identity, cluster: str, rbac_name: str, *, verb: str = "get") -> frozenset[str]:
        if user.is_writer or self._namespaces is None:
            return frozenset()
        return self.kube.namespaces_allowed(user, verb, GROUP, cluster, rbac_name, list(self._namespaces()))

    def prefetch(self, user: Identity, clusters: list[str], rbac_names: list[str], *, verb: str = "get") -> None:
        if not user.is_writer:
            self.kube.prefetch(user, verb, GROUP, clusters, rbac_names)
