"""pytest fixtures for the rig's Kubernetes peer: one real kube-apiserver + etcd per test session.

The API server's audit webhook posts over TLS straight to an in-process margay (`kube.sink`) with a cluster
token: its events land in cluster `kube-webhook`. Tests that ship the audit log with `margay agent` use the
sink's `kube-agent` token. The static users are the access-matrix cast (tests/access/conftest.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette

from margay.app import create_app
from margay.config import Settings
from margay.rig.kube import KubeAPIServer, Webhook
from margay.rig.tls import make_certificates
from margay.testing.server import ServerThread

# The people of the access matrix and their groups (a static token each), plus margay's own identity.
PEOPLE: dict[str, tuple[str, ...]] = {
    "alice": ("devs",), "bob": ("auditors",), "carol": (), "dave": ("ops",), "eve": ("devs-readonly",),
    "mallory": (), "frank": ("shop-team",), "gina": (), "hank": (), "ivan": (), "ivy": (), "margay": (),
}
WEBHOOK_CLUSTER = "kube-webhook"
AGENT_CLUSTER = "kube-agent"


@dataclass
class KubeRig:
    api: KubeAPIServer
    sink: ServerThread  # margay over HTTPS receiving the audit webhook
    sink_app: Starlette
    sink_admin: str  # admin token of the sink
    agent_token: str  # cluster token of the sink for cluster kube-agent
    workdir: Path
    tokens: dict[str, str] = field(default_factory=dict)  # person -> static bearer token

    def kubeconfig_for(self, who: str, path: Path) -> Path:
        return self.api.kubeconfig(path, self.tokens[who])


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeRig]:
    """The session's kube-apiserver (`.api`) with its audit webhook going to margay (`.sink`, HTTPS).

    Raises (the tests error, never skip) if the API server cannot start; the error names its log.
    """
    base = tmp_path_factory.mktemp("kube")
    workdir = base / "apiserver"
    ca, cert, key = make_certificates(workdir / "tls")  # shared by the API server and the sink
    webhook_token, agent_token = secrets.token_hex(24), secrets.token_hex(24)
    sink_tokens = base / "sink-tokens.yaml"
    sink_tokens.write_text(yaml.safe_dump([{"token": webhook_token, "cluster": WEBHOOK_CLUSTER},
                                           {"token": agent_token, "cluster": AGENT_CLUSTER}]))
    app = create_app(Settings(data_dir=base / "sink-data", tokens=sink_tokens, admin_token=True))
    tokens = {name: f"kube-{name}-{secrets.token_hex(12)}" for name in PEOPLE}
    with ServerThread(app, tls=(cert, key)) as sink:
        api = KubeAPIServer(users={tokens[n]: (n, groups) for n, groups in PEOPLE.items()},
                            webhook=Webhook(sink.url + "/api/v1/audit/logs/kube/bulk", webhook_token, ca))
        api.start(workdir)
        try:
            # margay's own identity gets what docs/access.md asks for: TokenReviews and SubjectAccessReviews
            # (system:auth-delegator) and reading namespaces (for namespace-scoped grants).
            user = [{"kind": "User", "name": "margay", "apiGroup": "rbac.authorization.k8s.io"}]
            bad = [r for r in api.apply([
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "margay-auth-delegator"}, "subjects": user,
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "system:auth-delegator"}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "margay-namespaces"},
                 "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "margay-namespaces"}, "subjects": user,
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "margay-namespaces"}}])
                if r.status_code not in (200, 201)]
            assert not bad, bad[0].text
            yield KubeRig(api=api, sink=sink, sink_app=app, sink_admin=app.state.margay.access.admin_token,
                          agent_token=agent_token, workdir=workdir, tokens=tokens)
        finally:
            api.stop()
