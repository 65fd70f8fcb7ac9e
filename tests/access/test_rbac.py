"""The local RBAC evaluator against cases written from the Kubernetes RBAC documentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from margay.access.identity import NO_AUTH, person, writer
from margay.access.rbac import Policy, PolicySource
from margay.errors import ConfigError

G = "lma.tigera.io"


def role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
         aggregate: list[dict[str, Any]] | None = None, namespace: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role" if namespace else "ClusterRole",
                           "metadata": {"name": name, **({"namespace": namespace} if namespace else {}),
                                        **({"labels": labels} if labels else {})},
                           "rules": list(rules)}
    if aggregate is not None:
        doc["aggregationRule"] = {"clusterRoleSelectors": aggregate}
        doc["rules"] = []
    return doc


def rule(resources: list[str], names: list[str] | None = None, verbs: list[str] | None = None,
         groups: list[str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"apiGroups": groups or [G], "resources": resources, "verbs": verbs or ["get"]}
    if names is not None:
        r["resourceNames"] = names
    return r


def bind(name: str, role_name: str, *subjects: dict[str, str], namespace: str | None = None,
         role_kind: str = "ClusterRole") -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "subjects": list(subjects),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name}}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def sa(name: str, namespace: str | None = None) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


ALICE = person("alice", ["devs"])
# (description, RBAC documents, who, (cluster, resourceName, verb, namespace), expected)
CASES: list[tuple[str, list[dict[str, Any]], Any, tuple[str, str, str, str], bool]] = [
    ("the seed's example: app-cluster flows and dns",
     [role("r", rule(["app-cluster"], ["flows", "dns"])), bind("b", "r", user("alice"))],
     ALICE, ("app-cluster", "dns", "get", ""), True),
    ("resourceNames match literally: ee_dns is not dns",
     [role("r", rule(["app-cluster"], ["flows", "dns"])), bind("b", "r", user("alice"))],
     ALICE, ("app-cluster", "ee_dns", "get", ""), False),
    ("resources are cluster names: another cluster is denied",
     [role("r", rule(["app-cluster"], ["flows"])), bind("b", "r", user("alice"))],
     ALICE, ("cluster", "flows", "get", ""), False),
    ("empty resourceNames means every name", [role("r", rule(["east"], [])), bind("b", "r", user("alice"))],
     ALICE, ("east", "anything", "get", ""), True),
    ("omitted resourceNames means every name", [role("r", rule(["east"])), bind("b", "r", user("alice"))],
     ALICE, ("east", "audit_kube", "get", ""), True),
    ("resourceNames ['*'] is a literal, not a wildcard", [role("r", rule(["east"], ["*"])), bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), False),
    ("`audit*` as a resourceName is literal too", [role("r", rule(["east"], ["audit*"])), bind("b", "r", user("alice"))],
     ALICE, ("east", "audit*", "get", ""), True),
    ("resources ['*'] covers every cluster", [role("r", rule(["*"], ["flows"])), bind("b", "r", user("alice"))],
     ALICE, ("any-cluster", "flows", "get", ""), True),
    ("verbs ['*'] covers get", [role("r", rule(["east"], ["flows"], verbs=["*"])), bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), True),
    ("another verb does not grant get", [role("r", rule(["east"], ["flows"], verbs=["list", "watch"])),
                                        bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), False),
    ("apiGroups ['*'] covers lma.tigera.io", [role("r", rule(["east"], ["flows"], groups=["*"])),
                                             bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), True),
    ("another API group does not grant", [role("r", rule(["east"], ["flows"], groups=["projectcalico.org"])),
                                         bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), False),
    ("the core group '' is not lma.tigera.io", [role("r", rule(["east"], ["flows"], groups=[""])),
                                               bind("b", "r", user("alice"))],
     ALICE, ("east", "flows", "get", ""), False),
    ("group subject", [role("r", rule(["east"])), bind("b", "r", group("devs"))], ALICE, ("east", "flows", "get", ""), True),
    ("other group", [role("r", rule(["east"])), bind("b", "r", group("ops"))], ALICE, ("east", "flows", "get", ""), False),
    ("system:authenticated covers every person",
     [role("r", rule(["east"])), bind("b", "r", group("system:authenticated"))], ALICE, ("east", "flows", "get", ""), True),
    ("user names are case-sensitive", [role("r", rule(["east"])), bind("b", "r", user("Alice"))],
     ALICE, ("east", "flows", "get", ""), False),
    ("service account subject",
     [role("r", rule(["east"])), bind("b", "r", sa("grafana", "monitoring"))],
     person("system:serviceaccount:monitoring:grafana"), ("east", "flows", "get", ""), True),
    ("service account of another namespace",
     [role("r", rule(["east"])), bind("b", "r", sa("grafana", "monitoring"))],
     person("system:serviceaccount:default:grafana"), ("east", "flows", "get", ""), False),
    ("system:serviceaccounts:<ns> group",
     [role("r", rule(["east"])), bind("b", "r", group("system:serviceaccounts:monitoring"))],
     person("system:serviceaccount:monitoring:x"), ("east", "flows", "get", ""), True),
    ("system:serviceaccounts group covers every service account",
     [role("r", rule(["east"])), bind("b", "r", group("system:serviceaccounts"))],
     person("system:serviceaccount:a:b"), ("east", "flows", "get", ""), True),
    ("a ClusterRoleBinding's SA subject without namespace matches nothing",
     [role("r", rule(["east"])), bind("b", "r", sa("grafana"))],
     person("system:serviceaccount:default:grafana"), ("east", "flows", "get", ""), False),
    ("a RoleBinding's SA subject defaults to the binding's namespace",
     [role("r", rule(["east"])), bind("b", "r", sa("grafana"), namespace="monitoring")],
     person("system:serviceaccount:monitoring:grafana"), ("east", "flows", "get", "monitoring"), True),
    ("a RoleBinding grants nothing cluster-wide",
     [role("r", rule(["east"])), bind("b", "r", user("alice"), namespace="shop")], ALICE, ("east", "flows", "get", ""), False),
    ("a RoleBinding to a ClusterRole grants in its namespace",
     [role("r", rule(["east"])), bind("b", "r", user("alice"), namespace="shop")], ALICE, ("east", "flows", "get", "shop"), True),
    ("... and only there",
     [role("r", rule(["east"])), bind("b", "r", user("alice"), namespace="shop")], ALICE, ("east", "flows", "get", "db"), False),
    ("a RoleBinding to a Role of the same namespace",
     [role("r", rule(["east"]), namespace="shop"), bind("b", "r", user("alice"), namespace="shop", role_kind="Role")],
     ALICE, ("east", "flows", "get", "shop"), True),
    ("a RoleBinding cannot use a Role of another namespace",
     [role("r", rule(["east"]), namespace="db"), bind("b", "r", user("alice"), namespace="shop", role_kind="Role")],
     ALICE, ("east", "flows", "get", "shop"), False),
    ("a ClusterRoleBinding also grants inside every namespace",
     [role("r", rule(["east"])), bind("b", "r", user("alice"))], ALICE, ("east", "flows", "get", "shop"), True),
    ("a binding to a missing role grants nothing", [bind("b", "nope", user("alice"))], ALICE, ("east", "flows", "get", ""), False),
    ("no binding, no access", [role("r", rule(["*"], verbs=["*"], groups=["*"]))], ALICE, ("east", "flows", "get", ""), False),
    ("aggregation by matchLabels",
     [role("agg", aggregate=[{"matchLabels": {"margay.io/aggregate-to-logs": "true"}}]),
      role("part", rule(["east"], ["flows"]), labels={"margay.io/aggregate-to-logs": "true"}),
      bind("b", "agg", user("alice"))], ALICE, ("east", "flows", "get", ""), True),
    ("aggregation ignores roles without the label",
     [role("agg", aggregate=[{"matchLabels": {"margay.io/aggregate-to-logs": "true"}}]),
      role("part", rule(["east"], ["flows"]), labels={"margay.io/aggregate-to-logs": "false"}),
      bind("b", "agg", user("alice"))], ALICE, ("east", "flows", "get", ""), False),
    ("aggregation by matchExpressions In",
     [role("agg", aggregate=[{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}]),
      role("part", rule(["east"], ["dns"]), labels={"tier": "b"}),
      bind("b", "agg", user("alice"))], ALICE, ("east", "dns", "get", ""), True),
    ("aggregation by matchExpressions NotIn matches a role without the key",
     [role("agg", aggregate=[{"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}]),
      role("part", rule(["east"], ["dns"])), bind("b", "agg", user("alice"))], ALICE, ("east", "dns", "get", ""), True),
    ("aggregation by Exists / DoesNotExist",
     [role("agg", aggregate=[{"matchExpressions": [{"key": "logs", "operator": "Exists"},
                                                   {"key": "off", "operator": "DoesNotExist"}]}]),
      role("p1", rule(["east"], ["flows"]), labels={"logs": "1", "off": "1"}),
      role("p2", rule(["east"], ["dns"]), labels={"logs": "1"}),
      bind("b", "agg", user("alice"))], ALICE, ("east", "flows", "get", ""), False),
    ("... the matching one counts",
     [role("agg", aggregate=[{"matchExpressions": [{"key": "logs", "operator": "Exists"},
                                                   {"key": "off", "operator": "DoesNotExist"}]}]),
      role("p1", rule(["east"], ["flows"]), labels={"logs": "1", "off": "1"}),
      role("p2", rule(["east"], ["dns"]), labels={"logs": "1"}),
      bind("b", "agg", user("alice"))], ALICE, ("east", "dns", "get", ""), True),
    ("selectors are ORed",
     [role("agg", aggregate=[{"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "1"}}]),
      role("p", rule(["east"], ["l7"]), labels={"b": "1"}), bind("b", "agg", user("alice"))],
     ALICE, ("east", "l7", "get", ""), True),
    ("an aggregated role's own rules are replaced by the aggregate",
     [{**role("agg", aggregate=[{"matchLabels": {"a": "1"}}]), "rules": [rule(["east"], ["flows"])]},
      bind("b", "agg", user("alice"))], ALICE, ("east", "flows", "get", ""), False),
    ("aggregation chains (steady state of the controller)",
     [role("top", aggregate=[{"matchLabels": {"lvl": "top"}}]),
      {**role("mid", aggregate=[{"matchLabels": {"lvl": "mid"}}]), "metadata": {"name": "mid", "labels": {"lvl": "top"}}},
      role("leaf", rule(["east"], ["events"]), labels={"lvl": "mid"}), bind("b", "top", user("alice"))],
     ALICE, ("east", "events", "get", ""), True),
    ("system:masters is never denied", [], person("root", ["system:masters"]), ("east", "flows", "get", ""), True),
    ("a writer token never reads", [role("r", rule(["*"])), bind("b", "r", group("system:authenticated"))],
     writer("east"), ("east", "flows", "get", ""), False),
]


@pytest.mark.parametrize(("docs", "who", "request_", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kubernetes_rbac_cases(docs: list[dict[str, Any]], who: Any, request_: tuple[str, str, str, str],
                               expected: bool) -> None:
    cluster, name, verb, namespace = request_
    assert Policy(docs).allowed(who, verb, G, cluster, name, namespace) is expected


def test_namespaces_lists_rolebinding_namespaces_only() -> None:
    docs = [role("r", rule(["east"], ["flows"])), bind("b1", "r", user("alice"), namespace="shop"),
            bind("b2", "r", group("devs"), namespace="payments"), bind("b3", "r", user("bob"), namespace="db"),
            role("w", rule(["west"], ["flows"])), bind("b4", "w", user("alice"))]
    p = Policy(docs)
    assert p.namespaces(ALICE, "get", G, "east", "flows") == {"shop", "payments"}
    assert p.namespaces(ALICE, "get", G, "west", "flows") == frozenset()
    assert p.allowed(ALICE, "get", G, "west", "flows")


def test_loads_multi_document_files_lists_and_folders(tmp_path: Path) -> None:
    (tmp_path / "rbac").mkdir()
    (tmp_path / "rbac" / "roles.yaml").write_text(yaml.safe_dump_all([
        role("r", rule(["east"], ["flows"])), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}]))
    (tmp_path / "rbac" / "sub").mkdir()
    (tmp_path / "rbac" / "sub" / "bindings.yml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "List", "items": [bind("b", "r", user("alice"))]}))
    src = PolicySource(tmp_path / "rbac")
    assert src.current().allowed(ALICE, "get", G, "east", "flows")


def test_reload_on_change_and_fail_closed(tmp_path: Path) -> None:
    f = tmp_path / "rbac.yaml"
    f.write_text(yaml.safe_dump_all([role("r", rule(["east"])), bind("b", "r", user("alice"))]))
    now = [0.0]
    src = PolicySource(f, interval=1.0, clock=lambda: now[0])
    assert src.current().allowed(ALICE, "get", G, "east", "flows")
    f.write_text(yaml.safe_dump_all([role("r", rule(["east"]))]))
    now[0] += 2
    assert not src.current().allowed(ALICE, "get", G, "east", "flows")
    f.write_text("kind: [broken")
    now[0] += 2
    assert not src.current().allowed(NO_AUTH.__class__("x"), "get", G, "east", "flows")


@pytest.mark.parametrize("doc", [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
     "roleRef": {"kind": "Role", "name": "r"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
     "rules": [{"verbs": "get"}]},
    {"apiVersion": "v1", "kind": "ClusterRole", "metadata": {"name": "r"}},
])
def test_invalid_objects_are_config_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Policy([doc])


def test_an_empty_resource_name_is_not_every_name(tmp_path: Path) -> None:
    """`resourceNames: [""]` grants the empty name alone. For a named verb margay's empty name means every
    name (ReportRights.may_view_all: get on every GlobalReport and GlobalReportType), which such a rule must
    not grant; for a nameless verb (list, create) the empty name is Kubernetes' own question, allowed."""
    from margay.access.authorizer import LocalAuthorizer
    from margay.access.guard import Access
    from margay.access.reports import ReportRights

    calico = ["projectcalico.org"]
    docs = [role("r", rule(["globalreports", "globalreporttypes"], [""], ["get", "list"], calico),
                 rule(["globalalerts"], [""], ["create"], calico)), bind("b", "r", user("alice"))]
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(docs))
    access = Access("tokens", authorizer=LocalAuthorizer(PolicySource(tmp_path / "rbac.yaml")))
    rights = ReportRights(access, ALICE)
    assert not rights.may_view_all() and not rights.may_view("inventory", "weekly")
    assert rights.may_list()
    access.may_manage(ALICE, "create", "globalalerts")  # nameless: allowed, no exception
    p = Policy(docs)
    assert not p.allowed(ALICE, "get", "projectcalico.org", "globalreports", "")
    assert p.allowed(ALICE, "list", "projectcalico.org", "globalreports", "")
