"""The rig's kube-apiserver: authentication, RBAC on lma.tigera.io, real Calico objects, and audit reaching
margay both ways (the webhook over TLS, `margay agent` tailing the log) exactly once with kind and apiVersion."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from margay.client import Client
from margay.testing.agent import AgentProcess, read_all

from .fixture_kube import AGENT_CLUSTER, PEOPLE, WEBHOOK_CLUSTER, KubeRig

pytestmark = pytest.mark.rig


def review(kube: KubeRig, token: str) -> dict[str, Any]:
    with kube.api.client() as http:
        r = http.post("/apis/authentication.k8s.io/v1/tokenreviews",
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert r.status_code == 201, r.text
    return dict(r.json()["status"])


def test_starts_and_reports_its_times(kube: KubeRig) -> None:
    api = kube.api
    print(f"\nkube-apiserver: ready {api.ready_seconds:.1f}s after spawn; start() incl. certificates, etcd "
          f"and CRDs {api.startup_seconds:.1f}s")
    with api.client() as http:
        version = http.get("/version").json()
    assert version["gitVersion"].startswith("v1.36.")
    assert api.startup_seconds < 120


def test_static_and_service_account_tokens(kube: KubeRig) -> None:
    status = review(kube, kube.tokens["alice"])
    assert status["authenticated"] is True
    assert status["user"]["username"] == "alice"
    assert set(status["user"]["groups"]) == {"devs", "system:authenticated"}
    assert review(kube, "not-a-token-" + secrets.token_hex(8)).get("authenticated") is not True
    sa = kube.api.service_account_token("rig-tokens", "reader")
    status = review(kube, sa)
    assert status["user"]["username"] == "system:serviceaccount:rig-tokens:reader"
    assert {"system:serviceaccounts", "system:serviceaccounts:rig-tokens"} <= set(status["user"]["groups"])


def test_every_calico_kind_is_served(kube: KubeRig) -> None:
    with kube.api.client() as http:
        kinds = {r["kind"] for r in http.get("/apis/crd.projectcalico.org/v1").json()["resources"]}
    assert {"GlobalAlert", "GlobalThreatFeed", "GlobalReport", "GlobalReportType", "GlobalNetworkPolicy",
            "NetworkPolicy", "Tier", "NetworkSet", "GlobalNetworkSet", "HostEndpoint",
            "StagedNetworkPolicy"} <= kinds


def test_calico_objects_are_real(kube: KubeRig) -> None:
    name = "rig-" + secrets.token_hex(4)
    objects = [
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalAlert", "metadata": {"name": name},
         "spec": {"description": "many denied flows", "severity": 80, "dataSet": "flows",
                  "query": "action=deny", "metric": "count", "condition": "gt", "threshold": 100}},
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalThreatFeed", "metadata": {"name": name},
         "spec": {"content": "IPSet", "pull": {"http": {"url": "https://feeds.example.com/ips.txt"}}}},
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "Tier", "metadata": {"name": name},
         "spec": {"order": 100}},
    ]
    answers = kube.api.apply(objects)
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    with kube.api.client() as http:
        got = http.get(f"/apis/crd.projectcalico.org/v1/globalalerts/{name}").json()
        assert got["spec"]["threshold"] == 100 and got["kind"] == "GlobalAlert"
        # The CRD's schema is enforced: a severity that is not an integer is refused.
        bad = http.post("/apis/crd.projectcalico.org/v1/globalalerts",
                        json={"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalAlert",
                              "metadata": {"name": name + "-bad"}, "spec": {"severity": "high"}})
        assert bad.status_code == 422, bad.text


def test_subject_access_review_on_lma_with_groups_and_namespaces(kube: KubeRig) -> None:
    name = "rig-sar-" + secrets.token_hex(4)
    rules = [{"apiGroups": ["lma.tigera.io"], "resources": ["east"], "resourceNames": ["flows"], "verbs": ["get"]}]
    answers = kube.api.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": name},
         "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}])
    assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers]

    def sar(user: str, groups: list[str], namespace: str, resource: str = "east") -> bool:
        attrs = {"group": "lma.tigera.io", "resource": resource, "name": "flows", "verb": "get"}
        if namespace:
            attrs["namespace"] = namespace
        with kube.api.client() as http:
            r = http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                          json={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                "spec": {"user": user, "groups": groups, "resourceAttributes": attrs}})
        assert r.status_code == 201, r.text
        return bool(r.json()["status"].get("allowed"))

    assert sar("sar-only", ["devs"], name) is True  # the RoleBinding's namespace, via the group
    assert sar("sar-only", ["devs"], "") is False  # a RoleBinding never grants cluster-wide
    assert sar("sar-only", ["devs"], "default") is False
    assert sar("sar-only", [], name) is False  # not in the group
    assert sar("sar-only", ["devs"], name, resource="west") is False
    assert sar("root", ["system:masters"], "") is True


def _ids(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["auditID"], e["stage"]) for e in events]


def test_audit_reaches_margay_both_ways_exactly_once(kube: KubeRig, tmp_path: Path) -> None:
    """Webhook (kube-apiserver -> margay over HTTPS with its token) and agent (tailing audit.log) each store
    every event of the log exactly once, with kind and apiVersion, compared by (auditID, stage)."""
    agent = AgentProcess(tmp_path / "agent", kube.sink.url, sources={"audit_kube": kube.api.audit_log},
                         env={"SSL_CERT_FILE": str(kube.api.ca_file), "MARGAY_AGENT_TOKEN": kube.agent_token,
                              "MARGAY_AGENT_BATCH_AGE": "0.5"},
                         args=("--cluster", AGENT_CLUSTER))
    marker = "rig-audit-" + secrets.token_hex(4)
    with agent:
        ns = marker + "-ns"
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
             "data": {"a": "1"}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "GlobalNetworkSet", "metadata": {"name": marker},
             "spec": {"nets": ["198.51.100.0/24"]}},
        ]
        assert all(r.status_code in (200, 201) for r in kube.api.apply(objects))
        with kube.api.client(kube.tokens["mallory"]) as http:  # refused requests are audited too
            assert http.get(f"/api/v1/namespaces/{ns}/configmaps").status_code == 403
            for i in range(20):
                http.get(f"/api/v1/namespaces/{ns}/configmaps/c{i}")
        with kube.api.client() as http:
            for i in range(30):
                http.post(f"/api/v1/namespaces/{ns}/configmaps",
                          json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
            http.delete(f"/api/v1/namespaces/{ns}/configmaps/c0")
            assert http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": marker}}).status_code == 201
        deadline = time.monotonic() + 30
        while True:  # every event up to the marker namespace's creation is in the log
            events = kube.api.audit_events()
            last = [i for i, e in enumerate(events) if (e.get("objectRef") or {}).get("name") == marker
                    and e.get("verb") == "create" and (e.get("objectRef") or {}).get("resource") == "namespaces"]
            if last or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert last, "the marker namespace's create never reached the audit log"
        logged = _ids(events[: last[0] + 1])
        assert len(set(logged)) == len(logged), "the audit log itself repeats an (auditID, stage)"
        assert all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" for e in events)

        client = Client(kube.sink.url, kube.sink_admin, verify=kube.api.ssl_context())
        stored: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + 60
        for cluster in (WEBHOOK_CLUSTER, AGENT_CLUSTER):
            while True:
                stored[cluster] = read_all(client, "audit_kube", 0, time.time() + 3600, cluster=cluster)
                if set(logged) <= set(_ids(stored[cluster])) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    problems = []
    for cluster, items in stored.items():
        ids = _ids(items)
        missing = set(logged) - set(ids)
        dupes = {k for k in ids if ids.count(k) > 1}
        unknown = {(i["auditID"], i["stage"]) for i in items} - set(_ids(kube.api.audit_events()))
        if missing:
            problems.append(f"{cluster}: {len(missing)} of {len(logged)} logged events missing")
        if dupes:
            problems.append(f"{cluster}: {len(dupes)} events stored more than once")
        if unknown:
            problems.append(f"{cluster}: {len(unknown)} stored events are not in the audit log")
        bad = [i for i in items if i.get("kind") != "Event" or i.get("apiVersion") != "audit.k8s.io/v1"]
        if bad:
            problems.append(f"{cluster}: {len(bad)} events without kind/apiVersion, e.g. {bad[0]}")
    print(f"\naudit: {len(logged)} logged events; stored via webhook {len(stored[WEBHOOK_CLUSTER])}, "
          f"via agent {len(stored[AGENT_CLUSTER])}")
    assert not problems, "\n".join(problems)


def test_webhook_batches_margay_cannot_take_are_retried(kube: KubeRig) -> None:
    """While the sink's disk guard refuses ingest (507 + Retry-After) the API server keeps the batch and
    retries; once space is back the events arrive, once each."""
    m = kube.sink_app.state.margay
    saved = m.disk.min_free_bytes, m.disk.free
    marker = "rig-retry-" + secrets.token_hex(4)
    client = Client(kube.sink.url, kube.sink_admin, verify=kube.api.ssl_context())
    refused_before = _refused(kube)
    try:
        m.disk.min_free_bytes, m.disk.free = 1, (lambda _path: 0)
        with kube.api.client() as http:
            assert http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": marker}}).status_code == 201
        deadline = time.monotonic() + 30
        while _refused(kube) == refused_before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _refused(kube) > refused_before, "the webhook never hit the full disk"
        time.sleep(2)  # a few refused attempts
    finally:
        m.disk.min_free_bytes, m.disk.free = saved
    deadline = time.monotonic() + 60
    while True:
        found = client.search("audit_kube", {"selector": f'name = "{marker}"'}, [WEBHOOK_CLUSTER])
        if found["total_hits"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found["total_hits"] == 1, f"the refused batch was not retried: {found['total_hits']} hits"
    assert _refused(kube) - refused_before >= 1


def _refused(kube: KubeRig) -> int:
    r = httpx.get(kube.sink.url + "/-/metrics", verify=kube.api.ssl_context(),
                  headers={"authorization": f"Bearer {kube.sink_admin}"})
    for line in r.text.splitlines():
        if line.startswith("margay_disk_refused_batches_total"):
            return int(float(line.split()[-1]))
    return 0


def test_people_of_the_cast_are_static_users(kube: KubeRig) -> None:
    for name, groups in PEOPLE.items():
        status = review(kube, kube.tokens[name])
        assert status["user"]["username"] == name
        assert set(status["user"]["groups"]) == {*groups, "system:authenticated"}


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_deploy_manifests_apply_to_the_api_server(kube: KubeRig) -> None:
    """deploy/*.yaml pass the real API server's validation and admission (server-side apply, dry run), and the
    server's RBAC lets margay do its TokenReviews and SubjectAccessReviews."""
    import yaml

    docs = [d for p in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert namespaces, "deploy/ has no Namespace"
    assert all(r.status_code in (200, 201) for r in kube.api.apply(namespaces))  # for real: the rest lives in it
    answers = kube.api.apply(docs, dry_run=True)
    failed = [f"{d['kind']}/{d['metadata']['name']}: {r.status_code} {r.text[:300]}"
              for d, r in zip(docs, answers, strict=True) if r.status_code not in (200, 201)]
    assert not failed, "\n".join(failed)
    with kube.api.client() as http:  # a dry run stores nothing
        assert http.get("/apis/apps/v1/namespaces/margay/deployments/margay-server").status_code == 404
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    assert all(r.status_code in (200, 201) for r in kube.api.apply(rbac))
    server_sa = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    with kube.api.client() as http:
        for group, resource in (("authentication.k8s.io", "tokenreviews"),
                                ("authorization.k8s.io", "subjectaccessreviews")):
            r = http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json={
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": f"system:serviceaccount:margay:{server_sa}",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:margay"],
                         "resourceAttributes": {"group": group, "resource": resource, "verb": "create"}}})
            assert r.json()["status"].get("allowed") is True, f"{server_sa} may not create {resource}"
