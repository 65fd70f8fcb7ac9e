"""The access matrix's cases asked of the rig's real kube-apiserver (tests/access/test_kube_real.py and
test_kube_rules.py): every person of the cast, verb, cluster, resource name and namespace."""

from __future__ import annotations

import itertools

from margay.access.identity import Identity, person
from margay.logtypes import REGISTRY

from .conftest import TOKENS

GROUP = "lma.tigera.io"
NAMES = sorted({n for lt in REGISTRY.values() for n in lt.rbac} | {"junk"})
CLUSTERS = ("east", "west", "lab", "elsewhere")
NAMESPACES = ("", "shop", "monitoring", "default")
VERBS = ("get", "create", "list")

Case = tuple[Identity, str, str, str, str]  # (who, verb, cluster, name, namespace)


def cast() -> list[Identity]:
    people = [person(e["user"], e.get("groups", [])) for e in TOKENS.values() if "user" in e]
    return people + [person("root", ["system:masters"]), person("nobody"),
                     person("system:serviceaccount:shop:app"), person("x", ["shop-team", "auditors"])]


def cases() -> list[Case]:
    return list(itertools.product(cast(), VERBS, CLUSTERS, NAMES, NAMESPACES))
