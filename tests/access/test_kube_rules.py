"""Rules reviews (SelfSubjectRulesReview, impersonating the caller) against the rig's real kube-apiserver:
where they decide, they agree with SubjectAccessReview on every case of the matrix; a fleet of 1,000 clusters
with partial grants costs a handful of calls; where they cannot decide (margay may not impersonate, an RBAC
evaluation error) SubjectAccessReviews do, with the same answers."""

from __future__ import annotations

import itertools
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from margay.access.authorizer import KubeAuthorizer
from margay.access.guard import Access
from margay.access.identity import Identity, person
from margay.access.kube import KubeClient, from_kubeconfig
from margay.access.rbac import Policy
from margay.access.rules import impersonation, parse
from margay.logtypes import REGISTRY

from .cases import GROUP, NAMESPACES, Case, cast
from .conftest import binding, cluster_role, kube_people, lma

pytestmark = pytest.mark.rig

RBAC_API = "rbac.authorization.k8s.io/v1"
FLEET = [f"f{i:04d}" for i in range(1000)]
# What docs/access.md asks margay's identity to hold for rules reviews (besides auth-delegator and namespaces).
IMPERSONATE = [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]}]


def margay_identity(kube: Any, path: Path, *, impersonate: bool) -> Path:
    """A kubeconfig for a service account holding exactly the documented ClusterRoles (with or without
    impersonation), so the tests prove the documented permissions are enough."""
    name = f"margay-{'imp' if impersonate else 'plain'}"
    sa = {"kind": "ServiceAccount", "name": name, "namespace": "margay-system"}
    objects = [
        {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "margay-namespaces-read"},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]},
        binding(f"{name}-auth-delegator", "system:auth-delegator", sa),
        binding(f"{name}-namespaces", "margay-namespaces-read", sa),
    ]
    if impersonate:
        objects += [{"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "margay-rules-reviews"},
                     "rules": IMPERSONATE}, binding(f"{name}-rules", "margay-rules-reviews", sa)]
    token = kube.api.service_account_token("margay-system", name)
    bad = [r.text for r in kube.api.apply(objects) if r.status_code not in (200, 201)]
    assert not bad, bad[:2]
    return kube.api.kubeconfig(path, token)


@pytest.fixture(scope="module")
def rules_client(kube, tmp_path_factory: pytest.TempPathFactory) -> KubeClient:  # type: ignore[no-untyped-def]
    kube_people(kube)
    path = margay_identity(kube, tmp_path_factory.mktemp("rules") / "kubeconfig", impersonate=True)
    client = KubeClient(from_kubeconfig(path), ttl=600)
    yield client
    client.close()


def test_rules_agree_with_subject_access_review_on_every_case(
        rules_client: KubeClient, subject_access_reviews: dict[Case, bool]) -> None:
    """The matrix's people (groups, service accounts, an aggregated ClusterRole, namespace RoleBindings): every
    case the rules decide is the API server's SubjectAccessReview answer, and for these RBAC-only grants the
    rules decide every case. (The reviews are the session's, asked once over the same RBAC objects.)"""
    people = cast()
    scopes = list(itertools.product(people, NAMESPACES))
    with ThreadPoolExecutor(4) as pool:
        rules = dict(zip(scopes, pool.map(lambda s: rules_client.rules_for(*s), scopes), strict=True))
    assert rules_client.rules_reviews == len(scopes)
    cases = list(subject_access_reviews)
    assert {(c[0], c[4]) for c in cases} == set(scopes)
    sar = [subject_access_reviews[c] for c in cases]
    decided = [rules[(who, ns)].decide(verb, GROUP, cluster, name)
               for who, verb, cluster, name, ns in cases]
    disagree = [(c[0].name, *c[1:]) for c, d, s in zip(cases, decided, sar, strict=True) if d != s]
    print(f"\nrules vs SubjectAccessReview: {len(cases) - len(disagree)}/{len(cases)} agree, {sum(sar)} allowed, "
          f"{len(scopes)} rules reviews")
    assert not disagree, f"{len(disagree)} cases differ (None: undecided), e.g. {disagree[:10]}"
    assert sum(sar) > 100
    assert any(s and c[4] and not rules[(c[0], "")].decide(c[1], GROUP, c[2], c[3])
               for c, s in zip(cases, sar, strict=True)), "the cases must include grants by RoleBinding only"


def _fleet_rbac(tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """1,000 clusters: a caller granted flows and DNS of half of them (one ClusterRole listing 500 clusters),
    one granted flows of 300 clusters in two namespaces only (a Role in each), one granted everything, one
    granted nothing, and one whose second binding names a ClusterRole that does not exist."""
    half = FLEET[::2]
    namespaces = [f"fleet-{tag}-a", f"fleet-{tag}-b"]
    objects: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                                     for ns in namespaces]
    objects += [cluster_role(f"half-{tag}", [lma(half, ["flows", "dns"])]),
                binding(f"half-{tag}", f"half-{tag}", {"kind": "User", "name": f"half-{tag}"}),
                cluster_role(f"all-{tag}", [lma(["*"])]),
                binding(f"all-{tag}", f"all-{tag}", {"kind": "User", "name": f"all-{tag}"}),
                cluster_role(f"broken-{tag}", [lma(FLEET[:10], ["flows"])]),
                binding(f"broken-{tag}", f"broken-{tag}", {"kind": "User", "name": f"broken-{tag}"}),
                binding(f"broken2-{tag}", f"missing-{tag}", {"kind": "User", "name": f"broken-{tag}"})]
    for ns in namespaces:
        objects += [{"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": f"scoped-{tag}", "namespace": ns},
                     "rules": [lma(FLEET[100:400], ["flows"])]},
                    {"apiVersion": RBAC_API, "kind": "RoleBinding",
                     "metadata": {"name": f"scoped-{tag}", "namespace": ns},
                     "subjects": [{"kind": "User", "name": f"scoped-{tag}"}],
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"scoped-{tag}"}}]
    return objects, namespaces


def _namespaces(kube: Any) -> list[str]:
    with kube.api.client() as http:
        return [o["metadata"]["name"] for o in http.get("/api/v1/namespaces").json()["items"]]


def _check_grants(client: KubeClient, access: Access, policy: Policy, who: Identity,
                  clusters: list[str]) -> tuple[int, int, float]:
    """Cold grants of flows and DNS over `clusters`, compared with the local evaluator's; (reviews, rules
    reviews, seconds) spent."""
    types = [REGISTRY["flows"], REGISTRY["dns"]]
    client.decisions.clear()
    client.rules.clear()
    reviews, rules, t0 = client.reviews, client.rules_reviews, time.perf_counter()
    grants = access.grants(who, [(lt, c) for lt in types for c in clusters])
    spent = (client.reviews - reviews, client.rules_reviews - rules, round(time.perf_counter() - t0, 3))
    expect = {}
    for lt in types:
        for c in clusters:
            full = any(policy.allowed(who, "get", GROUP, c, n, "") for n in lt.rbac)
            ns: frozenset[str] = frozenset()
            if not full:
                ns = ns.union(*(policy.namespaces(who, "get", GROUP, c, n) for n in lt.rbac))
            expect[(lt.name, c)] = (full, ns)
    assert {k: (g.full, g.namespaces) for k, g in grants.items()} == expect, who.name
    before = client.reviews + client.rules_reviews
    assert access.grants(who, [(lt, c) for lt in types for c in clusters]) == grants
    assert client.reviews + client.rules_reviews == before, "a second look within the ttl asks nothing"
    return spent


@pytest.mark.parametrize("impersonate", [True, False], ids=["rules", "reviews-only"])
def test_a_fleet_with_partial_grants_is_answered_exactly(kube, tmp_path: Path, impersonate: bool) -> None:  # type: ignore[no-untyped-def]
    """Every grant (full, scoped to namespaces, none) of flows and DNS is the local evaluator's for the same
    objects. With impersonation, over 1,000 clusters, a partial grant costs one wildcard review and rules
    reviews (one cluster-wide, one per namespace for the pairs not granted cluster-wide); without, or where
    the rules are not exact (an evaluation error), SubjectAccessReviews decide (over 20 clusters: thousands
    of reviews otherwise)."""
    tag = secrets.token_hex(3)
    objects, _ = _fleet_rbac(tag)
    assert all(r.status_code in (200, 201) for r in kube.api.apply(objects))
    policy = Policy(objects)
    namespaces = _namespaces(kube)
    path = margay_identity(kube, tmp_path / "kubeconfig", impersonate=impersonate)
    client = KubeClient(from_kubeconfig(path), ttl=600)
    access = Access("kube", kube=client, authorizer=KubeAuthorizer(client, namespaces=lambda: namespaces))
    fleet = FLEET if impersonate else FLEET[::50]
    try:
        figures = {name: _check_grants(client, access, policy, person(f"{name}-{tag}"), fleet)
                   for name in ("half", "scoped", "all", "nothing")}
        figures["broken"] = _check_grants(client, access, policy, person(f"broken-{tag}"), FLEET[:20])
        print(f"\nflows + DNS, cold cache, {len(namespaces)} namespaces (SARs, rules reviews, s): {figures}")
        if impersonate:
            # one wildcard review, one cluster-wide rules review, then one per namespace for scoped reads
            for name in ("half", "scoped", "nothing"):
                assert figures[name][:2] == (1, 1 + len(namespaces)), figures
            assert figures["all"][:2] == (1, 0), figures
            # an evaluation error (a binding to a missing role) leaves the rules' denials to reviews
            assert figures["broken"][0] > 20 * len(namespaces), figures
        else:
            assert client.rules_reviews <= 1, "a refused rules review pauses them"
            assert figures["nothing"][0] > len(fleet) * len(namespaces), figures
    finally:
        client.close()


def test_a_revoked_grant_stops_within_the_ttl(kube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tag = secrets.token_hex(3)
    objects = [cluster_role(f"rev-{tag}", [lma(FLEET[:3], ["flows"])]),
               binding(f"rev-{tag}", f"rev-{tag}", {"kind": "User", "name": f"rev-{tag}"})]
    assert all(r.status_code in (200, 201) for r in kube.api.apply(objects))
    ttl = 2.0
    client = KubeClient(from_kubeconfig(margay_identity(kube, tmp_path / "kc", impersonate=True)), ttl=ttl)
    who = person(f"rev-{tag}")
    try:
        client.prefetch(who, "get", GROUP, FLEET[:5], ["flows", "dns"])
        assert client.rules_reviews == 1
        assert client.access(who, "get", GROUP, FLEET[0], "flows") is True
        assert client.access(who, "get", GROUP, FLEET[4], "flows") is False
        with kube.api.client() as http:
            assert http.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/rev-{tag}").status_code == 200
        assert client.access(who, "get", GROUP, FLEET[0], "flows") is True  # cached for up to ttl
        time.sleep(ttl + 0.2)
        client.prefetch(who, "get", GROUP, FLEET[:5], ["flows", "dns"])
        assert client.access(who, "get", GROUP, FLEET[0], "flows") is False
    finally:
        client.close()


def test_impersonation_only_for_identities_the_api_server_sees_alike() -> None:
    assert impersonation(person("alice", ["devs"])) == [
        ("Impersonate-User", "alice"), ("Impersonate-Group", "devs"), ("Impersonate-Group", "system:authenticated")]
    # impersonating a user without system:authenticated would add it: SubjectAccessReviews decide instead
    assert impersonation(Identity("alice", ("devs",))) is None
    assert impersonation(person("system:anonymous")) is None
    assert impersonation(Identity("x", ("system:unauthenticated", "system:authenticated"))) is None
    assert impersonation(person("zoë")) is None  # not a header value
    assert impersonation(person("a\r\nImpersonate-Group: system:masters")) is None
    assert impersonation(Identity("margay:cluster:east", cluster="east")) is None  # writers read nothing


@pytest.mark.parametrize("impersonate", [True, False], ids=["rules", "reviews-only"])
def test_an_empty_resource_name_grants_no_other_name(kube, tmp_path: Path, impersonate: bool) -> None:  # type: ignore[no-untyped-def]
    """`resourceNames: [""]` matches only a request for the empty name, yet a SubjectAccessReview asking about
    the empty name (margay's "every name" question) is allowed by it: the caller below may read no log type of
    any cluster, and must not get every name of f0000 (or of every cluster) from the wider-answer cache. For
    a nameless verb (list) the empty name is the real question: allowed, as the API server allows it."""
    tag = secrets.token_hex(3)
    objects = [cluster_role(f"empty-{tag}", [lma([FLEET[0]], [""]), lma(["*"], [""]), lma([FLEET[2]], [""], ["list"])]),
               binding(f"empty-{tag}", f"empty-{tag}", {"kind": "User", "name": f"empty-{tag}"})]
    assert all(r.status_code in (200, 201) for r in kube.api.apply(objects))
    client = KubeClient(from_kubeconfig(margay_identity(kube, tmp_path / "kc", impersonate=impersonate)), ttl=600)
    who = person(f"empty-{tag}")
    names = ["flows", "dns", "audit", "policyactivity"]
    try:
        assert client.review_access(who, "get", GROUP, FLEET[0], "flows")[0] is False  # what the API server says
        client.prefetch(who, "get", GROUP, FLEET[:5], names)
        got = {(c, n): client.access(who, "get", GROUP, c, n) for c in FLEET[:5] for n in names}
        assert not any(got.values()), sorted(k for k, v in got.items() if v)
        client.decisions.clear()
        client.rules.clear()
        # asked about every name of a cluster first (prefetch's per-cluster stage), then about one name
        for cluster in (FLEET[0], FLEET[1]):
            client.access(who, "get", GROUP, cluster, "")
            assert client.access(who, "get", GROUP, cluster, "dns") is False, cluster
        # a list request has no name: there the empty name is the API server's own question, and allowed
        assert client.review_access(who, "list", GROUP, FLEET[2], "")[0] is True
        assert client.access(who, "list", GROUP, FLEET[2], "") is True
        assert client.access(who, "list", GROUP, FLEET[3], "") is False
        if impersonate:
            rules = client.rules_for(who, "")
            assert (rules.decide("list", GROUP, FLEET[2], ""), rules.decide("get", GROUP, FLEET[0], "")) == (True, False)
    finally:
        client.close()


def test_an_incomplete_listing_decides_neither_way() -> None:
    """`incomplete: true` means an authorizer did not list its rules: a webhook (kube-apiserver's says so for
    every caller). One placed before RBAC may deny what an RBAC rule allows — a SubjectAccessReview then
    answers no — so with an incomplete listing the rules' allows are not trusted either (SubjectAccessReviews
    decide); an RBAC evaluation error alone (a binding to a missing role) still lets its listed allows count."""
    rule = {"verbs": ["get"], "apiGroups": [GROUP], "resources": ["east"], "resourceNames": ["flows"]}
    webhook = parse({"status": {"resourceRules": [rule], "incomplete": True,
                                "evaluationError": "webhook authorizer does not support user rule resolution"}},
                    proven=True)
    assert webhook.decide("get", GROUP, "east", "flows") is None
    assert webhook.decide("get", GROUP, "west", "flows") is None
    missing_role = parse({"status": {"resourceRules": [rule], "incomplete": False,
                                     "evaluationError": 'clusterrole.rbac.authorization.k8s.io "x" not found'}},
                         proven=True)
    assert missing_role.decide("get", GROUP, "east", "flows") is True
    assert missing_role.decide("get", GROUP, "west", "flows") is None
    exact = parse({"status": {"resourceRules": [rule], "incomplete": False}}, proven=True)
    assert (exact.decide("get", GROUP, "east", "flows"), exact.decide("get", GROUP, "west", "flows")) == (True, False)
