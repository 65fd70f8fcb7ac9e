"""`--kubeconfig` mode against the rig's real kube-apiserver: the local evaluator and SubjectAccessReview agree on
every case of the matrix's RBAC (groups, service accounts, aggregation, namespace RoleBindings); revocation,
outages and `margay access check`."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from margay.access.identity import Identity, person
from margay.access.kube import KubeClient, from_kubeconfig
from margay.access.rbac import Policy
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import REGISTRY
from margay.testing.server import ServerThread

from .cases import CLUSTERS, GROUP, NAMES, NAMESPACES, VERBS, cast
from .conftest import RBAC, kube_people

pytestmark = pytest.mark.rig


def test_local_evaluator_and_api_server_agree_on_every_case(
        subject_access_reviews: dict[tuple[Identity, str, str, str, str], bool]) -> None:
    policy = Policy(RBAC)
    cases = list(subject_access_reviews)
    assert len(cases) == len(set(cast())) * len(VERBS) * len(CLUSTERS) * len(NAMES) * len(NAMESPACES)
    answers = [(policy.allowed(c[0], c[1], GROUP, c[2], c[3], c[4]), subject_access_reviews[c]) for c in cases]
    disagree = [(c[0].name, *c[1:], a) for c, a in zip(cases, answers, strict=True) if a[0] != a[1]]
    allowed = sum(a[1] for a in answers)
    scoped = [c for c, a in zip(cases, answers, strict=True) if a[1] and c[4] and not
              policy.allowed(c[0], c[1], GROUP, c[2], c[3], "")]
    print(f"\naccess agreement: {len(cases) - len(disagree)}/{len(cases)} cases agree "
          f"({100 * (len(cases) - len(disagree)) / len(cases):.1f} %); {allowed} allowed, "
          f"{len(scoped)} allowed only through a namespace RoleBinding")
    assert not disagree, f"{len(disagree)} disagreements, e.g. {disagree[:10]}"
    assert allowed > 100 and scoped, "the cases must exercise grants, including namespace-only ones"


def test_revoked_binding_and_token_stop_working_within_the_cache(kube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = "revoke-" + secrets.token_hex(4)
    sa_token = kube.api.service_account_token("revocation", name)
    kube.api.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [GROUP], "resources": ["east"], "resourceNames": ["flows"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "revocation"}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}])
    ttl = 2.0
    client = KubeClient(from_kubeconfig(kube.kubeconfig_for("margay", tmp_path / "kubeconfig")), ttl=ttl)
    try:
        who = client.review_token(sa_token)
        assert who is not None and who.name == f"system:serviceaccount:revocation:{name}"
        assert client.access(who, "get", GROUP, "east", "flows") is True
        with kube.api.client() as http:
            assert http.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}").status_code == 200
            assert client.access(who, "get", GROUP, "east", "flows") is True  # cached for up to ttl
            assert http.delete(f"/api/v1/namespaces/revocation/serviceaccounts/{name}").status_code == 200
        time.sleep(ttl + 0.2)
        assert client.access(who, "get", GROUP, "east", "flows") is False
        deadline = time.monotonic() + 15  # the API server may cache the token's validation briefly
        while client.review_token(sa_token) is not None and time.monotonic() < deadline:
            time.sleep(ttl)
        assert client.review_token(sa_token) is None, "a deleted service account's token still authenticates"
    finally:
        client.close()


def test_matrix_margay_answers_503_with_retry_after_when_the_api_server_is_gone(kube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = kube.kubeconfig_for("margay", tmp_path / "kubeconfig")
    cfg = yaml.safe_load(path.read_text())
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{dead}"
    path.write_text(yaml.safe_dump(cfg))
    app = create_app(Settings(data_dir=tmp_path / "data", kubeconfig=path))
    with ServerThread(app) as server:
        r = httpx.post(server.url + "/api/v1/flows/logs", json={},
                       headers={"authorization": f"Bearer {kube.tokens['alice']}", "x-cluster-id": "east"})
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after") == "2"
    assert "unreachable" in r.json()["error"]["message"]


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "margay", "access", "check", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_access_check_command_against_the_api_server(kube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kube_people(kube)
    kc = str(kube.kubeconfig_for("margay", tmp_path / "kubeconfig"))
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(yaml.safe_dump_all(RBAC))
    for source in (["--kubeconfig", kc], ["--rbac", str(rbac)]):
        yes = _check("alice", "flows", "east", *source)
        assert yes.returncode == 0 and yes.stdout.startswith("yes"), yes.stdout + yes.stderr
        assert "resource=east name=flows" in yes.stdout
        no = _check("alice", "flows", "west", *source)
        assert no.returncode == 1 and no.stdout.startswith("no"), no.stdout + no.stderr
        # frank's grant is a RoleBinding in namespace shop: no cluster-wide, yes within shop
        assert _check("frank", "dns", "east", "-g", "shop-team", *source).returncode == 1
        scoped = _check("frank", "dns", "east", "-g", "shop-team", "-n", "shop", *source)
        assert scoped.returncode == 0 and "namespace=shop" in scoped.stdout, scoped.stdout
        table = _check("dave", "all", "lab", "-g", "ops", *source)
        assert table.returncode == 0
        rows = {line.split()[0]: line.split()[1] for line in table.stdout.splitlines()}
        granted = ("dns", "bgp", "waf", "policy_activity", "runtime")
        assert rows == {t: ("yes" if t in granted else "no") for t in REGISTRY}, table.stdout
    kube_yes = _check("alice", "flows", "east", "--kubeconfig", kc)
    assert "RBAC: allowed by ClusterRoleBinding" in kube_yes.stdout, kube_yes.stdout


def test_access_check_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text(yaml.safe_dump_all(RBAC))
    for args, text in [(("alice", "flowz", "east", "--rbac", str(rbac)), "unknown log type 'flowz'"),
                       (("alice", "flows", "ea*st", "--rbac", str(rbac)), "invalid cluster name"),
                       (("alice", "flows", "east"), "exactly one of --kubeconfig"),
                       (("alice", "flows", "east", "--rbac", str(tmp_path / "none")), "no such file"),
                       (("alice", "flows", "east", "--rbac", str(rbac), "--verb", "delete"), "unknown --verb")]:
        r = _check(*args)
        message = " ".join(r.stderr.split())  # the console wraps long lines
        assert r.returncode == 2 and text in message and "Traceback" not in message, r.stderr


FLEET = [f"c{i:04d}" for i in range(1000)]


def test_a_fleet_of_clusters_costs_reviews_by_grant_not_by_cluster(kube, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """1,000 clusters: a caller granted every cluster costs one SubjectAccessReview (the wildcard), one granted
    a type everywhere two; a caller granted a few clusters is asked about the rest concurrently. Every answer
    is the local evaluator's answer for the same RBAC objects."""
    from margay.access.authorizer import KubeAuthorizer
    from margay.access.guard import Access

    from .conftest import binding, cluster_role, lma

    tag = secrets.token_hex(3)
    few = FLEET[:7]
    objects = [
        cluster_role(f"fleet-all-{tag}", [lma(["*"])]),
        binding(f"fleet-all-{tag}", f"fleet-all-{tag}", {"kind": "User", "name": f"all-{tag}"}),
        cluster_role(f"fleet-flows-{tag}", [lma(["*"], ["flows"])]),
        binding(f"fleet-flows-{tag}", f"fleet-flows-{tag}", {"kind": "User", "name": f"flows-{tag}"}),
        cluster_role(f"fleet-few-{tag}", [lma(few)]),
        binding(f"fleet-few-{tag}", f"fleet-few-{tag}", {"kind": "User", "name": f"few-{tag}"}),
    ]
    assert all(r.status_code in (200, 201) for r in kube.api.apply(objects))
    policy = Policy(objects)
    client = KubeClient(from_kubeconfig(kube.kubeconfig_for("margay", tmp_path / "kubeconfig")), ttl=60)
    access = Access("kube", kube=client, authorizer=KubeAuthorizer(client))
    types = [REGISTRY["flows"], REGISTRY["dns"]]
    try:
        figures = {}
        # (caller, log types asked, at most this many reviews; None: checked below)
        for name, asked, most in ((f"all-{tag}", types, 1), (f"flows-{tag}", types[:1], 2),
                                  (f"flows-{tag}", types, 1 + 3 + 2 * len(FLEET)), (f"few-{tag}", types, None)):
            who = person(name)
            client.decisions.clear()  # cold
            before, t0 = client.reviews, time.perf_counter()
            grants = access.grants(who, [(lt, c) for lt in asked for c in FLEET])
            spent, cost = time.perf_counter() - t0, client.reviews - before
            figures[f"{name.split('-')[0]}/{len(asked)}"] = (cost, round(spent, 3))
            expect = {(lt.name, c): any(policy.allowed(who, "get", GROUP, c, n, "") for n in lt.rbac)
                      for lt in asked for c in FLEET}
            assert {k: bool(g) for k, g in grants.items()} == expect, name
            if most is not None:
                assert cost <= most, (name, cost)
            again = client.reviews
            assert access.grants(who, [(lt, c) for lt in asked for c in FLEET]) == grants
            assert client.reviews == again, "a second look within the cache's ttl asks nothing"
        # the few-clusters caller: 1 wildcard + 3 names everywhere + each cluster whole + the names of the others
        assert figures["few/2"][0] <= 1 + 3 + len(FLEET) + 3 * (len(FLEET) - len(few)), figures
        print(f"\nfleet RBAC over {len(FLEET)} clusters, cold cache (reviews, seconds): {figures}")
    finally:
        client.close()
