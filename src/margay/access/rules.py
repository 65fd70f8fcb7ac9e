"""A caller's RBAC rules, as the API server lists them (SelfSubjectRulesReview made while impersonating the
caller): one review answers every (cluster, log type) pair of a fleet that SubjectAccessReviews answer one at
a time.

A rules review is namespaced: it lists the rules of the caller's ClusterRoleBindings plus those of its
RoleBindings in the namespace asked. For a real namespace N that is exactly what a SubjectAccessReview with
`namespace: N` evaluates. For the cluster-wide question (no namespace, ClusterRoleBindings only) margay asks
about a namespace with a fresh random name and then checks it does not exist: no namespace, no RoleBindings,
so the rules are the ClusterRoleBindings' alone. The answer is used only as far as it is exact:

- an allow follows from a listed rule, as kube-apiserver's RBAC matches it (`rbac.Rule.allows`), and counts
  only when the namespace asked is the one meant (a real N, or a probe namespace proven absent) and every
  authorizer listed its rules (`incomplete: false`): a webhook, which cannot list them, may also deny — one
  placed before RBAC denies what an RBAC rule allows — so an incomplete listing decides nothing;
- a deny counts only when the listing is complete: `incomplete` (an authorizer that cannot list rules, e.g. a
  webhook, or a node) or an `evaluationError` leaves it to SubjectAccessReviews.

Rules depend only on the user name and groups (RBAC, ABAC and the node authorizer ignore uid and extra; a
webhook, which might not, makes the listing incomplete), so margay impersonates the name and groups alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .identity import AUTHENTICATED, Identity

# Verbs whose requests carry no name in Kubernetes (the empty name is what the API server itself asks): for
# them "" is the exact question; for the others margay's "" means every name (see Compiled, KubeClient.access).
NAMELESS_VERBS = frozenset({"list", "watch", "create", "deletecollection"})
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"


@dataclass(frozen=True)
class Compiled:
    """One resource rule with its lists as sets; an empty `names` means every name. Asked about the empty
    name with a verb whose requests are named (margay's "every name" question), only a rule without names
    allows: `resourceNames: [""]` grants no name."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]

    def allows(self, verb: str, group: str, resource: str, name: str) -> bool:
        return ((verb in self.verbs or "*" in self.verbs) and (group in self.groups or "*" in self.groups)
                and (resource in self.resources or "*" in self.resources)
                and (not self.names or (bool(name) or verb in NAMELESS_VERBS) and name in self.names))


@dataclass(frozen=True)
class Rules:
    """What a rules review said about a caller in one scope, and how far it may be trusted."""

    rules: tuple[Compiled, ...] = ()
    complete: bool = False  # every authorizer listed its rules without error: what no rule allows is denied
    proven: bool = False  # the rules are those of the scope meant: what a rule allows is allowed ...
    listed: bool = False  # ... when every authorizer listed its rules (none that might deny was left out)

    def decide(self, verb: str, group: str, resource: str, name: str) -> bool | None:
        """True or False where the review's answer is exact, None where a SubjectAccessReview must decide."""
        if any(r.allows(verb, group, resource, name) for r in self.rules):
            return True if self.proven and self.listed else None
        return False if self.complete else None


UNKNOWN = Rules()  # no usable review (refused, unreachable, an identity margay cannot impersonate)


def impersonation(who: Identity) -> list[tuple[str, str]] | None:
    """The Impersonate-* headers that make the API server see `who` as a SubjectAccessReview of `who` does,
    or None when impersonation cannot: anonymous or unauthenticated callers (impersonating adds
    system:authenticated to a named user without it) and names or groups a header cannot carry."""
    if who.is_writer or who.name == ANONYMOUS or UNAUTHENTICATED in who.groups or AUTHENTICATED not in who.groups:
        return None
    values = [who.name, *who.groups]
    if not all(v and v.isascii() and v.isprintable() and v == v.strip() for v in values):
        return None
    return [("Impersonate-User", who.name)] + [("Impersonate-Group", g) for g in who.groups]


def parse(doc: dict[str, Any], *, proven: bool) -> Rules:
    """A SelfSubjectRulesReview's status as Rules (malformed rules make the listing incomplete)."""
    status = doc.get("status")
    if not isinstance(status, dict):
        return UNKNOWN
    listed = status.get("incomplete") is False
    complete = listed and not status.get("evaluationError")
    out = []
    for raw in status.get("resourceRules") or []:
        lists = [raw.get(k) or [] if isinstance(raw, dict) else None
                 for k in ("verbs", "apiGroups", "resources", "resourceNames")]
        if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists):
            complete = False
            continue
        verbs, groups, resources, names = (frozenset(v or ()) for v in lists)
        out.append(Compiled(verbs, groups, resources, names))
    return Rules(tuple(out), complete=complete, proven=proven, listed=listed)
