"""An authenticated margay (tokens file + local RBAC) loaded with every log type of three clusters."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from margay.access.identity import Identity
from margay.access.kube import KubeClient, from_kubeconfig
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.testing.server import ServerThread

CLUSTERS = ("east", "west", "lab")
RBAC_API = "rbac.authorization.k8s.io/v1"

# People and writers of the tokens file (tokens are long enough not to warn).
TOKENS: dict[str, dict[str, Any]] = {
    "alice": {"user": "alice", "groups": ["devs"]},
    "bob": {"user": "bob", "groups": ["auditors"]},
    "carol": {"user": "carol"},
    "dave": {"user": "dave", "groups": ["ops"]},
    "grafana": {"user": "system:serviceaccount:monitoring:grafana"},
    "eve": {"user": "eve", "groups": ["devs-readonly"]},
    "mallory": {"user": "mallory"},
    "frank": {"user": "frank", "groups": ["shop-team"]},
    "gina": {"user": "gina"},
    "hank": {"user": "hank"},
    "ivan": {"user": "ivan"},
    "ivy": {"user": "ivy"},
    "writer-east": {"cluster": "east"},
}


def token_of(name: str) -> str:
    return f"tok-{name}-0123456789abcdef"


def cluster_role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": RBAC_API, "kind": "ClusterRole",
            "metadata": {"name": name, **({"labels": labels} if labels else {})}, "rules": rules}


def lma(resources: list[str], names: list[str] | None = None, verbs: list[str] | None = None,
        groups: list[str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"apiGroups": groups or ["lma.tigera.io"], "resources": resources, "verbs": verbs or ["get"]}
    if names is not None:
        r["resourceNames"] = names
    return r


def binding(name: str, role: str, subject: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    return {"apiVersion": RBAC_API, "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "subjects": [subject], "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                               "name": role}}


RBAC: list[dict[str, Any]] = [
    cluster_role("flows-east", [lma(["east"], ["flows"])]),
    binding("alice-flows-east", "flows-east", {"kind": "User", "name": "alice"}),
    cluster_role("audit-only", [lma(["*"], ["audit*"])]),
    binding("auditors", "audit-only", {"kind": "Group", "name": "auditors"}),
    cluster_role("all-of-west", [lma(["west"], [])]),
    binding("carol-west", "all-of-west", {"kind": "User", "name": "carol"}),
    {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "ops"},
     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"margay.io/aggregate-to-ops": "true"}}]}},
    cluster_role("ops-dns", [lma(["lab"], ["ee_dns"])], labels={"margay.io/aggregate-to-ops": "true"}),
    cluster_role("ops-bgp", [lma(["lab"], ["bgp"], verbs=["*"], groups=["*"])],
                 labels={"margay.io/aggregate-to-ops": "true"}),
    # WAF logs: Calico's lma.tigera.io resourceName `waf` (its dashboards' collection name).
    cluster_role("ops-waf", [lma(["lab"], ["waf"])], labels={"margay.io/aggregate-to-ops": "true"}),
    # Policy activity and runtime reports: Linseed's handlers' resource names `policyactivity`, `runtimereports`.
    cluster_role("ops-activity", [lma(["lab"], ["policyactivity", "runtimereports"])],
                 labels={"margay.io/aggregate-to-ops": "true"}),
    binding("ops", "ops", {"kind": "Group", "name": "ops"}),
    cluster_role("events-everywhere", [lma(["*"], ["ee_events"])]),
    binding("grafana", "events-everywhere", {"kind": "ServiceAccount", "name": "grafana", "namespace": "monitoring"}),
    cluster_role("wrong-verb", [lma(["*"], [], verbs=["list", "watch"])]),
    cluster_role("wrong-group", [lma(["*"], [], groups=["projectcalico.org"])]),
    binding("eve-1", "wrong-verb", {"kind": "Group", "name": "devs-readonly"}),
    binding("eve-2", "wrong-group", {"kind": "User", "name": "eve"}),
    # frank: namespace-scoped (RoleBinding in shop) -- not a cluster-wide grant.
    cluster_role("logs-east", [lma(["east"], [])]),
    binding("shop-team-logs", "logs-east", {"kind": "Group", "name": "shop-team"}, namespace="shop"),
    # gina: flows of east in namespace shop only, and all of east's L7 logs (a scoped and a full grant).
    cluster_role("flows-east-only", [lma(["east"], ["flows"])]),
    binding("gina-shop-flows", "flows-east-only", {"kind": "User", "name": "gina"}, namespace="shop"),
    cluster_role("l7-east", [lma(["east"], ["l7"])]),
    binding("gina-l7", "l7-east", {"kind": "User", "name": "gina"}),
    # frank also writes GlobalAlerts (projectcalico.org), and so may dry-run one over the logs he reads.
    cluster_role("alert-author", [lma(["globalalerts"], verbs=["create"], groups=["projectcalico.org"])]),
    binding("frank-alerts", "alert-author", {"kind": "Group", "name": "shop-team"}),
    # hank: crossed grants -- the Kubernetes audit log of east and the Calico audit log of west.
    cluster_role("audit-kube-east", [lma(["east"], ["audit_kube"])]),
    cluster_role("audit-ee-west", [lma(["west"], ["audit_ee"])]),
    binding("hank-kube-east", "audit-kube-east", {"kind": "User", "name": "hank"}),
    binding("hank-ee-west", "audit-ee-west", {"kind": "User", "name": "hank"}),
    # ivan: may read and delete (Linseed's DELETE /events/bulk) the events of east touching namespace shop.
    cluster_role("events-east-delete", [lma(["east"], ["events"], verbs=["get", "delete"])]),
    binding("ivan-shop-events", "events-east-delete", {"kind": "User", "name": "ivan"}, namespace="shop"),
    # dave also operates the server: the metrics name every cluster, so they need a grant of their own.
    cluster_role("operators", [lma(["operator"], ["metrics"])]),
    binding("dave-operates", "operators", {"kind": "Group", "name": "ops"}),
    # Compliance reports (access/reports.py): the cluster's lma grant, then Calico's own resources.
    # carol: every GlobalReport and GlobalReportType (and may run reports now: update).
    cluster_role("reports-all", [lma(["globalreports"], verbs=["get", "list", "update"], groups=["projectcalico.org"]),
                                 lma(["globalreporttypes"], verbs=["get"], groups=["projectcalico.org"])]),
    binding("carol-reports", "reports-all", {"kind": "User", "name": "carol"}),
    # ivy: west's compliance reports, listing, two GlobalReports by name, and only the inventory report type:
    # daily-inventory (the samples' report) in full, weekly-audit (policy-audit) as a summary only.
    cluster_role("reports-west", [lma(["west"], ["compliance_reports"])]),
    cluster_role("reports-some", [
        lma(["globalreports"], verbs=["list"], groups=["projectcalico.org"]),
        lma(["globalreports"], ["daily-inventory", "weekly-audit"], groups=["projectcalico.org"]),
        lma(["globalreporttypes"], ["inventory"], groups=["projectcalico.org"])]),
    binding("ivy-reports-west", "reports-west", {"kind": "User", "name": "ivy"}),
    binding("ivy-reports", "reports-some", {"kind": "User", "name": "ivy"}),
]

# What Kubernetes RBAC grants (cluster-wide), written out by hand from RBAC above: (log type, cluster).
ALL_TYPES = tuple(REGISTRY)
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "alice": {("flows", "east")},
    "bob": {(t, c) for t in ("audit_ee", "audit_kube") for c in CLUSTERS},
    "carol": {(t, "west") for t in ALL_TYPES},
    "dave": {("dns", "lab"), ("bgp", "lab"), ("waf", "lab"), ("policy_activity", "lab"), ("runtime", "lab")},
    "grafana": {("events", c) for c in CLUSTERS},
    "eve": set(),
    "mallory": set(),
    "hank": {("audit_kube", "east"), ("audit_ee", "west")},
    "ivy": {("compliance_reports", "west")},
    "writer-east": set(),
    "admin": {(t, c) for t in ALL_TYPES for c in CLUSTERS},
}


class Rig:
    def __init__(self, url: str, admin: str, tokens_file: Path) -> None:
        self.url = url
        self.admin = admin
        self.tokens_file = tokens_file
        self.http = httpx.Client(base_url=url, timeout=30)
        self.counts: dict[str, int] = {}  # records stored per log type in each cluster
        self.people: dict[str, str] = {}  # kube mode: person -> bearer token the API server knows

    def token(self, who: str) -> str:
        return self.admin if who == "admin" else self.people.get(who) or token_of(who)

    def post(self, who: str | None, path: str, body: Any = None, cluster: str | None = None,
             **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            headers["authorization"] = f"Bearer {self.token(who)}"
        if cluster is not None:
            headers["x-cluster-id"] = cluster
        return self.http.post(path, json=body, headers=headers, **kw)

    def get(self, who: str | None, path: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(who)}"} if who else {}
        return self.http.get(path, headers=headers)


def kube_people(kube: Any) -> dict[str, str]:
    """Put RBAC into the real API server and return each person's API-server token (same users, same groups)."""
    answers = kube.api.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                              for ns in ("shop", "monitoring")] + RBAC)
    bad = [r.text for r in answers if r.status_code not in (200, 201)]
    assert not bad, bad[:3]
    assert kube.api.aggregate_cluster_roles() >= 1  # the controller manager's job; the rig has none
    people: dict[str, str] = {}
    for name, entry in TOKENS.items():
        if "cluster" in entry:
            continue
        user = entry["user"]
        if user.startswith("system:serviceaccount:"):
            ns, sa = user.split(":")[2:4]
            people[name] = kube.api.service_account_token(ns, sa)
        else:
            assert user == name and set(kube.api.users[kube.tokens[name]][1]) == set(entry.get("groups", [])), \
                f"the rig's static user {name} differs from the matrix's"
            people[name] = kube.tokens[name]
    return people


def write_tokens(path: Path, tokens: dict[str, dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump([{"token": token_of(n), **e} for n, e in tokens.items()]))


@pytest.fixture(scope="package", params=["local", pytest.param("kube", marks=pytest.mark.rig)])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The matrix's margay, twice: local RBAC from YAML (`--tokens --rbac`), and `--kubeconfig` against the rig's
    real kube-apiserver holding the same RBAC objects and people (TokenReview + SubjectAccessReview)."""
    base = tmp_path_factory.mktemp("access")
    tokens_file = base / "tokens.yaml"
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    people: dict[str, str] = {}
    if request.param == "local":
        write_tokens(tokens_file, TOKENS)
        settings = Settings(data_dir=base / "data", tokens=tokens_file, rbac=base / "rbac.yaml", admin_token=True)
    else:
        kube = request.getfixturevalue("kube")
        people = kube_people(kube)
        # Only the writer stays in margay's tokens file; people are TokenReviewed by the API server.
        write_tokens(tokens_file, {n: e for n, e in TOKENS.items() if "cluster" in e})
        settings = Settings(data_dir=base / "data", tokens=tokens_file, admin_token=True,
                            kubeconfig=kube.kubeconfig_for("margay", base / "kubeconfig"))
    app = create_app(settings)
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        r = Rig(server.url, admin, tokens_file)
        r.people = people
        for name, lt in REGISTRY.items():
            for cluster in CLUSTERS:
                res = r.http.post("/api/v1" + lt.bulk_path, content="\n".join(SAMPLES[name]).encode(),
                                  headers={"authorization": f"Bearer {admin}", "x-cluster-id": cluster,
                                           "content-type": "text/plain" if name == "bgp" else "application/x-ndjson"})
                assert res.status_code == 200, res.text
                r.counts[name] = res.json()["succeeded"]
        yield r
        r.http.close()


@pytest.fixture(scope="package")
def subject_access_reviews(kube: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[
        tuple[Identity, str, str, str, str], bool]:
    """The real API server's SubjectAccessReview answer for every case of the matrix (tests/access/cases.py,
    16,896 uncached reviews over the matrix's RBAC): asked once, then held up against the local evaluator
    (test_kube_real) and against the rules reviews (test_kube_rules). The RBAC the cases touch is the
    matrix's alone: other tests add objects for callers of their own (tagged names) only."""
    from .cases import GROUP, cases

    kube_people(kube)  # the matrix's RBAC objects, namespaces and service accounts, in the API server
    path = kube.kubeconfig_for("margay", tmp_path_factory.mktemp("agree") / "kubeconfig")
    client = KubeClient(from_kubeconfig(path), ttl=0.001)
    try:
        asked = cases()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda c: client.review_access(c[0], c[1], GROUP, c[2], c[3], c[4])[0], asked))
        assert client.reviews == len(asked)
        return dict(zip(asked, answers, strict=True))
    finally:
        client.close()
