"""The rbac scenario's RBAC objects grant what its notes say, as the local evaluator (which agrees with the
API server on the access matrix) reads them."""

from __future__ import annotations

from margay.access.identity import person
from margay.access.rbac import Policy
from margay.bench.rbac import CALLERS, CLUSTERS, NAMESPACES, objects
from margay.logtypes import REGISTRY


def test_the_callers_hold_the_grants_the_scenario_describes() -> None:
    policy = Policy(objects())

    def pairs(who: str, namespace: str = "") -> int:
        return sum(any(policy.allowed(person(who), "get", "lma.tigera.io", c, n, namespace)
                       for n in REGISTRY[t].rbac) for t in ("flows", "dns") for c in CLUSTERS)

    assert len(CLUSTERS) == 1000
    assert {who: pairs(who) for who in CALLERS} == {"all": 2000, "flows": 1000, "half": 1000, "scoped": 0,
                                                    "nothing": 0}
    assert [pairs("scoped", ns) for ns in NAMESPACES[:3]] == [300, 300, 0]
    may = {who: policy.allowed(person(who), "impersonate", "", "users", "alice") for who in ("margay-rules",
                                                                                            "margay-reviews")}
    assert may == {"margay-rules": True, "margay-reviews": False}
