"""A local Kubernetes RBAC evaluator: ClusterRole, ClusterRoleBinding, Role and RoleBinding YAML.

It decides the way kube-apiserver's RBAC authorizer does (plugin/pkg/auth/authorizer/rbac): a request
with no namespace is granted only by ClusterRoleBindings; a request in namespace N also by the
RoleBindings of N (to a Role of N or to a ClusterRole); verbs, API groups and resources match literally
or by `*`; resourceNames match literally and an empty list means all; aggregated ClusterRoles take the
rules of every ClusterRole their `aggregationRule` selects. `system:masters` is always allowed, as in
kube-apiserver.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .identity import MASTERS, SA_PREFIX, Identity
from .rules import NAMELESS_VERBS

log = logging.getLogger("margay.access")

RBAC_API = "rbac.authorization.k8s.io"
KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def allows(self, verb: str, group: str, resource: str, name: str) -> bool:
        """rbacv1helpers.{Verb,APIGroup,Resource,ResourceName}Matches, for a request without subresource. An
        empty name with a named verb (get, update, ...) is margay's "every name" question, which only a rule
        without resourceNames allows (`resourceNames: [""]` grants no name); with a nameless verb (list,
        create, ...) it is Kubernetes' own, matched literally."""
        return ((verb in self.verbs or "*" in self.verbs)
                and (group in self.api_groups or "*" in self.api_groups)
                and (resource in self.resources or "*" in self.resources)
                and (not self.resource_names
                     or (bool(name) or verb in NAMELESS_VERBS) and name in self.resource_names))


@dataclass(frozen=True)
class Subject:
    kind: str
    name: str
    namespace: str = ""

    def applies_to(self, who: Identity, binding_namespace: str) -> bool:
        """rbac.appliesToUser: users by name, groups by membership, service accounts by their user name."""
        if self.kind == "User":
            return who.name == self.name
        if self.kind == "Group":
            return self.name in who.groups
        if self.kind == "ServiceAccount":
            ns = self.namespace or binding_namespace
            return bool(ns) and who.name == f"{SA_PREFIX}{ns}:{self.name}"
        return False


@dataclass(frozen=True)
class Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str  # Role or ClusterRole
    role_name: str
    subjects: tuple[Subject, ...]


@dataclass
class Selector:
    """A metav1.LabelSelector: matchLabels AND every matchExpression (In, NotIn, Exists, DoesNotExist)."""

    labels: dict[str, str] = field(default_factory=dict)
    expressions: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.labels.items()):
            return False
        for key, op, values in self.expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass
class ClusterRole:
    name: str
    labels: dict[str, str]
    rules: tuple[Rule, ...]
    aggregation: list[Selector] | None = None


class Policy:
    """A set of RBAC objects, with aggregated ClusterRoles resolved."""

    def __init__(self, docs: Iterable[dict[str, Any]], source: str = "rbac") -> None:
        self.cluster_roles: dict[str, ClusterRole] = {}
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.bindings: list[Binding] = []
        for i, doc in enumerate(docs):
            self._add(doc, f"{source}: document {i + 1}")
        self._aggregate()

    # -- loading ----------------------------------------------------------------------------------
    def _add(self, doc: dict[str, Any], where: str) -> None:
        kind = doc.get("kind")
        if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in doc):
            for j, item in enumerate(doc.get("items") or []):
                self._add(item, f"{where} item {j + 1}")
            return
        if kind not in KINDS:
            return  # other objects in the same files (Namespaces, ServiceAccounts) are not ours
        api = str(doc.get("apiVersion", RBAC_API + "/v1"))
        if not api.startswith(RBAC_API + "/"):
            raise ConfigError(f"{where}: {kind} must have apiVersion {RBAC_API}/v1, not {api}")
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {kind} needs metadata.name")
        ns = meta.get("namespace") or ""
        if kind in ("Role", "RoleBinding") and not ns:
            ns = "default"  # what kubectl apply does without -n
        if kind == "ClusterRole":
            agg = doc.get("aggregationRule")
            selectors = None
            if isinstance(agg, dict):
                selectors = [_selector(s, where) for s in agg.get("clusterRoleSelectors") or []]
            self.cluster_roles[name] = ClusterRole(name, dict(meta.get("labels") or {}),
                                                   _rules(doc.get("rules"), where), selectors)
        elif kind == "Role":
            self.roles[(ns, name)] = _rules(doc.get("rules"), where)
        else:
            ref = doc.get("roleRef") or {}
            rk, rn = ref.get("kind"), ref.get("name")
            if rk not in ("Role", "ClusterRole") or not isinstance(rn, str) or not rn:
                raise ConfigError(f"{where}: roleRef needs kind Role or ClusterRole and a name")
            if kind == "ClusterRoleBinding" and rk == "Role":
                raise ConfigError(f"{where}: a ClusterRoleBinding can only refer to a ClusterRole")
            subjects = []
            for s in doc.get("subjects") or []:
                if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                    raise ConfigError(f"{where}: every subject needs a kind and a name")
                subjects.append(Subject(str(s.get("kind", "")), s["name"], str(s.get("namespace") or "")))
            self.bindings.append(Binding(name, ns if kind == "RoleBinding" else "", rk, rn, tuple(subjects)))

    def _aggregate(self) -> None:
        """Like the clusterrole-aggregation controller, run to a fixed point (so aggregation chains)."""
        aggregated = [r for r in self.cluster_roles.values() if r.aggregation is not None]
        for _ in range(len(aggregated) + 1):
            changed = False
            for role in aggregated:
                rules: list[Rule] = []
                for sel in role.aggregation or []:
                    for other in sorted(self.cluster_roles.values(), key=lambda r: r.name):
                        if other.name != role.name and sel.matches(other.labels):
                            rules += [r for r in other.rules if r not in rules]
                new = tuple(rules)
                if new != role.rules:
                    role.rules = new
                    changed = True
            if not changed:
                break

    # -- deciding ---------------------------------------------------------------------------------
    def _rules_of(self, b: Binding) -> tuple[Rule, ...]:
        if b.role_kind == "ClusterRole":
            role = self.cluster_roles.get(b.role_name)
            return role.rules if role else ()
        return self.roles.get((b.namespace, b.role_name), ())

    def allowed(self, who: Identity, verb: str, group: str, resource: str, name: str,
                namespace: str = "") -> bool:
        if who.is_writer:
            return False
        if MASTERS in who.groups:
            return True
        for b in self.bindings:
            if b.namespace and b.namespace != namespace:
                continue
            if not any(s.applies_to(who, b.namespace) for s in b.subjects):
                continue
            if any(r.allows(verb, group, resource, name) for r in self._rules_of(b)):
                return True
        return False

    def namespaces(self, who: Identity, verb: str, group: str, resource: str, name: str) -> frozenset[str]:
        """The namespaces in which a RoleBinding grants the request (ClusterRoleBindings are not counted)."""
        if who.is_writer:
            return frozenset()
        out = set()
        for b in self.bindings:
            if b.namespace and b.namespace not in out and any(s.applies_to(who, b.namespace) for s in b.subjects) \
                    and any(r.allows(verb, group, resource, name) for r in self._rules_of(b)):
                out.add(b.namespace)
        return frozenset(out)


def _strings(value: Any, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {what} must be a list of strings")
    return tuple(value)


def _rules(raw: Any, where: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: rules must be a list")
    out = []
    for i, r in enumerate(raw):
        w = f"{where} rule {i + 1}"
        if not isinstance(r, dict):
            raise ConfigError(f"{w}: expected a mapping")
        if r.get("nonResourceURLs"):
            continue  # never matches a resource request
        out.append(Rule(_strings(r.get("verbs"), "verbs", w), _strings(r.get("apiGroups"), "apiGroups", w),
                        _strings(r.get("resources"), "resources", w),
                        _strings(r.get("resourceNames"), "resourceNames", w)))
    return tuple(out)


def _selector(raw: Any, where: str) -> Selector:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: clusterRoleSelectors entries must be label selectors")
    sel = Selector(labels={str(k): str(v) for k, v in (raw.get("matchLabels") or {}).items()})
    for e in raw.get("matchExpressions") or []:
        op = e.get("operator") if isinstance(e, dict) else None
        if op not in ("In", "NotIn", "Exists", "DoesNotExist") or not isinstance(e.get("key"), str):
            raise ConfigError(f"{where}: matchExpressions need a key and operator In, NotIn, Exists or DoesNotExist")
        sel.expressions.append((e["key"], op, _strings(e.get("values"), "values", where)))
    return sel


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of a file, or of every *.yaml/*.yml/*.json file under a folder."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()) \
        if path.is_dir() else [path]
    docs: list[dict[str, Any]] = []
    for f in files:
        try:
            docs += [d for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]
        except OSError as exc:
            raise ConfigError(f"RBAC file {f}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"RBAC file {f}: not valid YAML: {exc}") from None
    return docs


def _stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    out = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


class PolicySource:
    """A Policy loaded from a path and reloaded (at most every `interval` seconds) when the files change."""

    def __init__(self, path: Path, *, interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 on_reload: Callable[[], None] | None = None) -> None:
        self.path = path
        if not path.exists():
            raise ConfigError(f"--rbac {path}: no such file or folder")
        self.interval = interval
        self.clock = clock
        self.on_reload = on_reload
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self.policy = Policy(load_documents(path), str(path))
        self._checked = clock()

    def current(self) -> Policy:
        now = self.clock()
        if now - self._checked >= self.interval:
            with self._lock:
                self._checked = now
                stamp = _stamp(self.path)
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self.policy = Policy(load_documents(self.path), str(self.path))
                        log.info("RBAC reloaded from %s", self.path)
                    except ConfigError as exc:
                        self.policy = Policy([])  # fail closed
                        log.error("%s; every read is denied until it is fixed", exc.message)
                    if self.on_reload:
                        self.on_reload()
        return self.policy
