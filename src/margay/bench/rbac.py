"""RBAC over a fleet (`rbac` scenario, issue 25): how long margay takes, cold, to know what a caller may read of
1,000 clusters (flows and DNS) against the rig's real kube-apiserver, for callers granted everything, flows
everywhere, flows and DNS of half the clusters (one ClusterRole listing 500), flows of 300 clusters in two
namespaces only (a Role in each) and nothing.

Twice: margay allowed to impersonate (a wildcard SubjectAccessReview, then SelfSubjectRulesReviews: one
cluster-wide, one per namespace when a pair is not granted cluster-wide) and margay without (SubjectAccessReviews
alone, in stages; namespace grants off there, as the earlier figure was measured: with them every pair not
granted cluster-wide costs one more review per namespace). Wall ms per cold look, margay's CPU-ms (this
process, all threads) and the API server's, and the calls made.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from ..access.authorizer import KubeAuthorizer
from ..access.guard import Access
from ..access.identity import person
from ..access.kube import KubeClient, from_kubeconfig
from ..logtypes import REGISTRY
from ..rig.kube import KubeAPIServer
from .harness import Bench, cpu_seconds, percentile

CLUSTERS = [f"fleet-{i:04d}" for i in range(1, 1001)]
NAMESPACES = [f"team-{i:02d}" for i in range(10)]
RBAC = "rbac.authorization.k8s.io"
CALLERS = ("all", "flows", "half", "scoped", "nothing")


def _lma(resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": ["lma.tigera.io"], "resources": resources, "verbs": ["get"]}
    if names:
        rule["resourceNames"] = names
    return rule


def _bind(name: str, role: str, subject: dict[str, str], namespace: str = "", kind: str = "ClusterRole"
          ) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": meta, "subjects": [subject], "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role}}


def objects() -> list[dict[str, Any]]:
    def role(name: str, rules: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {"apiVersion": f"{RBAC}/v1", "kind": "Role" if namespace else "ClusterRole", "metadata": meta,
                "rules": rules}

    def user(name: str) -> dict[str, str]:
        return {"kind": "User", "name": name, "apiGroup": RBAC}

    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES]
    out += [role("fleet-all", [_lma(["*"])]), _bind("fleet-all", "fleet-all", user("all")),
            role("fleet-flows", [_lma(["*"], ["flows"])]), _bind("fleet-flows", "fleet-flows", user("flows")),
            role("fleet-half", [_lma(CLUSTERS[::2], ["flows", "dns"])]), _bind("fleet-half", "fleet-half", user("half"))]
    for ns in NAMESPACES[:2]:
        out += [role("fleet-scoped", [_lma(CLUSTERS[100:400], ["flows"])], ns),
                _bind("fleet-scoped", "fleet-scoped", user("scoped"), ns, kind="Role")]
    out += [role("margay-namespaces", [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}]),
            role("margay-impersonate", [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"],
                                         "verbs": ["impersonate"]}])]
    for who in ("margay-rules", "margay-reviews"):
        out += [_bind(f"{who}-delegator", "system:auth-delegator", user(who)),
                _bind(f"{who}-namespaces", "margay-namespaces", user(who))]
    out.append(_bind("margay-rules-impersonate", "margay-impersonate", user("margay-rules")))
    return out


def _measure(api: KubeAPIServer, client: KubeClient, access: Access, caller: str, runs: int) -> dict[str, float]:
    who = person(caller)
    pairs = [(REGISTRY[t], c) for t in ("flows", "dns") for c in CLUSTERS]
    walls: list[float] = []
    cpu = api_cpu = 0.0
    sars = rules = 0
    granted = 0
    assert api.proc is not None
    for _ in range(runs):
        client.decisions.clear()
        client.rules.clear()
        s0, r0 = client.reviews, client.rules_reviews
        c0, a0, t0 = time.process_time(), cpu_seconds(api.proc.pid), time.perf_counter()
        grants = access.grants(who, pairs)
        walls.append((time.perf_counter() - t0) * 1000)
        cpu += time.process_time() - c0
        api_cpu += cpu_seconds(api.proc.pid) - a0
        sars += client.reviews - s0
        rules += client.rules_reviews - r0
        granted = sum(1 for g in grants.values() if g)
    return {"p50_ms": round(percentile(walls, 0.5), 1), "max_ms": round(max(walls), 1),
            "cpu_ms": round(cpu * 1000 / runs, 1), "apiserver_cpu_ms": round(api_cpu * 1000 / runs, 1),
            "sars": sars // runs, "rules_reviews": rules // runs, "pairs_granted": granted}


def rbac(bench: Bench) -> dict[str, Any]:
    runs = 3 if bench.quick else 5
    tokens = {f"tok-{who}-{secrets.token_hex(8)}": (who, ()) for who in ("margay-rules", "margay-reviews")}
    api = KubeAPIServer(users=tokens, crds=False)
    api.start(bench.work_dir / "rbac-kube")
    out: dict[str, Any] = {"rbac_clusters": len(CLUSTERS), "rbac_namespaces": len(NAMESPACES)}
    try:
        bad = [r.text[:200] for r in api.apply(objects()) if r.status_code not in (200, 201)]
        if bad:
            raise RuntimeError(f"the RBAC objects were refused: {bad[:2]}")
        with api.client() as http:
            namespaces = [o["metadata"]["name"] for o in http.get("/api/v1/namespaces").json()["items"]]
        out["rbac_api_namespaces"] = len(namespaces)
        for mode in ("rules", "reviews"):
            kubeconfig = api.kubeconfig(Path(bench.work_dir) / f"rbac-{mode}.kubeconfig", api.token_of(f"margay-{mode}"))
            client = KubeClient(from_kubeconfig(kubeconfig), ttl=600)
            scoped = (lambda: namespaces) if mode == "rules" else None
            access = Access("kube", kube=client, authorizer=KubeAuthorizer(client, namespaces=scoped))
            try:
                for caller in CALLERS:
                    figures = _measure(api, client, access, caller, runs)
                    for key, value in figures.items():
                        out[f"rbac_{mode}_{key}_{caller}"] = value
                    bench.log(f"  rbac {mode}: {caller}: p50 {figures['p50_ms']} ms, {figures['cpu_ms']} CPU-ms "
                              f"(API server {figures['apiserver_cpu_ms']}), {figures['sars']} SARs, "
                              f"{figures['rules_reviews']} rules reviews, {figures['pairs_granted']} pairs granted")
            finally:
                client.close()
    finally:
        api.stop()
    out["notes"] = (f"{len(CLUSTERS):,} clusters x flows and DNS (2,000 pairs; DNS has two RBAC names), the rig's "
                    f"kube-apiserver with {len(namespaces)} namespaces, cold cache, {runs} looks per caller "
                    "(Access.grants, as whoami, a read of every cluster or the index list asks). Callers: all "
                    "(lma.tigera.io *), flows (every cluster, flows), half (one ClusterRole: 500 clusters, flows "
                    "and dns), scoped (a Role in 2 namespaces: 300 clusters, flows), nothing. rbac_rules_*: margay "
                    "may impersonate: one wildcard SubjectAccessReview, then SelfSubjectRulesReviews (cluster-wide, "
                    "then one per namespace for pairs not granted cluster-wide). rbac_reviews_*: margay may not "
                    "(SubjectAccessReviews alone, namespace grants off: with them each pair not granted "
                    "cluster-wide costs one review per namespace more). p50/max wall ms, margay's CPU-ms (the bench "
                    "process, all threads) and the API server's per look, calls per look, pairs granted.")
    return out
