"""`margay access check`: may this user read this log type of this cluster? Asked the way margay asks.

`kubectl auth can-i get flows.lma.tigera.io` cannot answer it: `lma.tigera.io` is not a served API group, and
margay's question puts the cluster in the resource and the log type in the resource name. This asks exactly
margay's SubjectAccessReview (or evaluates the local RBAC YAML the same way) for every RBAC name of the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..logtypes import LogType
from .authorizer import GROUP
from .identity import Identity
from .kube import KubeClient
from .rbac import Policy


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rbac_name: str  # the RBAC name that granted it; when refused, every name asked, joined by '|'
    reason: str  # the API server's reason, or which evaluator decided

    def attributes(self, verb: str, cluster: str, namespace: str) -> str:
        where = f" namespace={namespace}" if namespace else ""
        label = "names" if "|" in self.rbac_name else "name"
        return f"verb={verb} group={GROUP} resource={cluster} {label}={self.rbac_name}{where}"


def check(who: Identity, lt: LogType, cluster: str, *, namespace: str = "", verb: str = "get",
          kube: KubeClient | None = None, policy: Policy | None = None) -> Decision:
    """Ask for each RBAC name of `lt` in turn (any one grants), with SubjectAccessReview or the local policy."""
    reason = ""
    for name in lt.rbac:
        if kube is not None:
            allowed, reason = kube.review_access(who, verb, GROUP, cluster, name, namespace)
        elif policy is not None:
            allowed = policy.allowed(who, verb, GROUP, cluster, name, namespace)
            reason = "local RBAC evaluator" if allowed else ""
        else:
            raise ValueError("check needs a KubeClient or a Policy")
        if allowed:
            return Decision(True, name, reason)
    return Decision(False, "|".join(lt.rbac), reason or "no RBAC rule grants it")
