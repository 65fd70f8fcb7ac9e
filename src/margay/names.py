"""The one rule for names that reach storage: a cluster name is a Kubernetes DNS-1123 subdomain (Calico's rule).

A managed cluster's name is the name of its ManagedCluster resource, so it obeys Kubernetes' rule for object
names: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253
characters. Every edge (x-cluster-id, /es/ index names, body fields, config files, the tokens file) checks a
cluster name with `valid_cluster` before anything uses it; nothing else ever becomes a file path.
"""

from __future__ import annotations

import re

from .errors import QueryError

MAX_CLUSTER = 253
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
CLUSTER_RULE = ("a cluster name is a Kubernetes DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
                f"starting and ending with a letter or digit, at most {MAX_CLUSTER} characters")


def is_cluster_name(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= MAX_CLUSTER
            and _DNS1123_SUBDOMAIN.fullmatch(name) is not None)


def valid_cluster(name: object, *, where: str = "cluster") -> str:
    """`name` when it is a valid cluster name, else a 400 naming the rule (and where the name came from)."""
    if not is_cluster_name(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise QueryError(f"invalid cluster name {shown} in {where}: {CLUSTER_RULE}",
                         details={"field": where, "rule": "dns-1123-subdomain"})
    assert isinstance(name, str)
    return name
