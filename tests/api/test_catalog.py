"""GET /api/v1/whoami tells "no logs yet" apart from an RBAC denial (`empty` and `logs` per log type)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "audit-only"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["*"], "resourceNames": ["audit*"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "bob"},
     "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "audit-only"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "dev-flows"},
     "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["dev"], "resourceNames": ["flows"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "carol"},
     "subjects": [{"kind": "User", "name": "carol", "apiGroup": "rbac.authorization.k8s.io"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "dev-flows"}},
]
BOB = "tok-bob-0123456789abcdef"
CAROL = "tok-carol-0123456789abcd"


def whoami(url: str, token: str) -> dict[str, object]:
    r = httpx.get(url + "/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _app(tmp_path: Path, token: str, user: str) -> Any:
    """A server with local RBAC (RBAC above), an admin token and one user's token."""
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump([{"token": token, "user": user}]))
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    return create_app(Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml",
                               rbac=tmp_path / "rbac.yaml", admin_token=True))


def test_an_empty_server_says_it_is_empty_not_forbidden(tmp_path: Path) -> None:
    app = _app(tmp_path, BOB, "bob")
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        for token in (admin, BOB):  # nothing stored: no one is denied anything, there is nothing yet
            me = whoami(server.url, token)
            assert me["empty"] is True and me["clusters"] == [] and "all_clusters" not in me
            assert me["logs"] == dict.fromkeys(("flows", "dns", "audit", "bgp", "events", "l7", "waf", "policy_activity",
                                                "runtime"), "none_yet")
        r = httpx.post(server.url + "/api/v1/flows/logs/bulk", content="\n".join(SAMPLES["flows"]).encode(),
                       headers={"authorization": f"Bearer {admin}", "x-cluster-id": "prod",
                                "content-type": "application/x-ndjson"}, timeout=30)
        assert r.status_code == 200 and r.json()["failed"] == 0
        me = whoami(server.url, admin)
        assert me["empty"] is False and me["logs"]["flows"] == "readable" and me["logs"]["dns"] == "none_yet"
        bob = whoami(server.url, BOB)  # flows exist and bob may not read them; audit logs do not exist yet
        assert bob["empty"] is False and bob["logs"]["flows"] == "denied" and bob["logs"]["audit"] == "none_yet"
        assert bob["clusters"] == ["prod"]  # audit* on every cluster: readable once audit logs arrive


def test_whoami_tells_nothing_of_logs_the_caller_may_not_read(tmp_path: Path) -> None:
    """carol may read flows of cluster dev only: flows sent by prod must not turn her "no flows yet" into
    "denied" (that would tell her prod's flows exist), and whoami does not count the clusters she cannot read."""
    app = _app(tmp_path, CAROL, "carol")
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        for cluster, kind in (("prod", "flows"), ("dev", "dns")):
            r = httpx.post(server.url + f"/api/v1/{kind}/logs/bulk", content="\n".join(SAMPLES[kind]).encode(),
                           headers={"authorization": f"Bearer {admin}", "x-cluster-id": cluster,
                                    "content-type": "application/x-ndjson"}, timeout=30)
            assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        carol = whoami(server.url, CAROL)
        assert carol["clusters"] == ["dev"] and "all_clusters" not in carol
        assert carol["logs"]["flows"] == "none_yet"  # dev has sent no flows; prod's are not hers to know of
        assert carol["logs"]["dns"] == "denied"  # she may read DNS logs of no cluster
