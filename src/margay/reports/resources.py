"""The resource kinds compliance snapshots list (spec §12.2), and reading them from `kubectl get -o yaml|json`
dumps. A live list+watch source feeds the same `Resources` (a kind key -> {(namespace, name): object})."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from ..errors import ParseError


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    group: str  # "" for the core API
    version: str
    resource: str  # the plural, as audit objectRef.resource names it
    namespaced: bool

    @property
    def key(self) -> str:
        """Unique across API groups: Calico's NetworkPolicy and Kubernetes' NetworkPolicy differ."""
        return f"{self.group}/{self.kind}" if self.group else self.kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_C, _K, _CORE = "projectcalico.org", "networking.k8s.io", ""
KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("Tier", _C, "v3", "tiers", False),
    ResourceKind("GlobalNetworkPolicy", _C, "v3", "globalnetworkpolicies", False),
    ResourceKind("StagedGlobalNetworkPolicy", _C, "v3", "stagedglobalnetworkpolicies", False),
    ResourceKind("GlobalNetworkSet", _C, "v3", "globalnetworksets", False),
    ResourceKind("NetworkSet", _C, "v3", "networksets", True),
    ResourceKind("HostEndpoint", _C, "v3", "hostendpoints", False),
    ResourceKind("NetworkPolicy", _C, "v3", "networkpolicies", True),
    ResourceKind("StagedNetworkPolicy", _C, "v3", "stagednetworkpolicies", True),
    ResourceKind("StagedKubernetesNetworkPolicy", _C, "v3", "stagedkubernetesnetworkpolicies", True),
    ResourceKind("NetworkPolicy", _K, "v1", "networkpolicies", True),
    ResourceKind("Service", _CORE, "v1", "services", True),
    ResourceKind("Endpoints", _CORE, "v1", "endpoints", True),
    ResourceKind("Namespace", _CORE, "v1", "namespaces", False),
    ResourceKind("Pod", _CORE, "v1", "pods", True),
    ResourceKind("ServiceAccount", _CORE, "v1", "serviceaccounts", True),
)
BY_KEY = {k.key: k for k in KINDS}
BY_RESOURCE = {(k.group, k.resource): k for k in KINDS}

Ref = tuple[str, str]  # (namespace or "", name)
Resources = dict[str, dict[Ref, dict[str, Any]]]


def kind_of(obj: dict[str, Any]) -> ResourceKind | None:
    """The snapshot kind of an object by its apiVersion and kind; None for kinds compliance ignores."""
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return None
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    if group == "crd.projectcalico.org":
        group = _C
    return BY_KEY.get(f"{group}/{kind}" if group else kind)


def ref_of(rk: ResourceKind, obj: dict[str, Any], where: str) -> Ref:
    """(namespace, name) of an object, checked: a name is required, a namespace exactly for namespaced kinds."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ParseError(f"{where}.metadata: expected an object")
    name = meta.get("name")
    if not isinstance(name, str) or not name or len(name) > 253:
        raise ParseError(f"{where}.metadata.name: expected a non-empty name of at most 253 characters")
    ns = meta.get("namespace", "")
    if rk.namespaced and (not isinstance(ns, str) or not ns):
        raise ParseError(f"{where}.metadata.namespace: a {rk.kind} is namespaced; give its namespace")
    labels = meta.get("labels")
    if labels is not None and (not isinstance(labels, dict)
                               or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        raise ParseError(f"{where}.metadata.labels: expected an object of string values")
    return (ns if rk.namespaced and isinstance(ns, str) else "", name)


def _documents(data: bytes, source: str) -> list[Any]:
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            return [orjson.loads(data)]
        except orjson.JSONDecodeError:
            pass  # flow-style YAML: read as YAML below, which reports the line
    try:
        return [d for d in yaml.safe_load_all(data) if d is not None]
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" line {line + 1}" if line is not None else ""
        raise ParseError(f"{source}{at}: not YAML or JSON: {str(e).splitlines()[0]}") from None


def load_dump(data: bytes, source: str = "dump") -> Resources:
    """Every in-scope resource of a `kubectl get -o yaml|json` dump (List kinds or single objects, several
    YAML documents allowed). Objects of other kinds are skipped; malformed ones raise naming the item."""
    out: Resources = {}
    for d, doc in enumerate(_documents(data, source)):
        where = f"{source} document {d + 1}"
        if not isinstance(doc, dict):
            raise ParseError(f"{where}: expected an object (a List or a resource)")
        items: Iterable[tuple[str, Any]]
        if isinstance(doc.get("kind"), str) and doc["kind"].endswith("List"):
            raw = doc.get("items")
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                raise ParseError(f"{where}.items: expected a list")
            items = ((f"{where}.items[{i}]", it) for i, it in enumerate(raw))
        else:
            items = [(where, doc)]
        for at, obj in items:
            if not isinstance(obj, dict):
                raise ParseError(f"{at}: expected an object")
            if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("apiVersion"), str):
                raise ParseError(f"{at}.kind: every item needs kind and apiVersion")
            rk = kind_of(obj)
            if rk is None:
                continue
            out.setdefault(rk.key, {})[ref_of(rk, obj, at)] = obj
    return out


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return dict(labels) if isinstance(labels, dict) else {}
