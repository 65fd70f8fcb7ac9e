"""Who may save a GlobalAlert: its author must read the alert's data set in full in every cluster (the alert
runs over all of them and copies matching records into events), checked at every create and update."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.testing.server import ServerThread

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
API = "/apis/projectcalico.org/v3"
R = "rbac.authorization.k8s.io/v1"
USERS = ("al", "full", "east", "scoped", "audit1")
ALERTS = {"apiGroups": ["projectcalico.org"], "resources": ["globalalerts", "globalalerts/status"],
          "verbs": ["get", "list", "create", "update"]}


def lma(resources: list[str], names: list[str]) -> dict[str, Any]:
    return {"apiGroups": ["lma.tigera.io"], "resources": resources, "resourceNames": names, "verbs": ["get"]}


def bound(user: str, role: str, rules: list[dict[str, Any]], namespace: str = "") -> list[dict[str, Any]]:
    """A ClusterRole with `rules`, bound to `user` cluster-wide, or in `namespace` only (a RoleBinding)."""
    meta = {"name": role, **({"namespace": namespace} if namespace else {})}
    return [{"apiVersion": R, "kind": "ClusterRole", "metadata": {"name": role}, "rules": rules},
            {"apiVersion": R, "kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
             "subjects": [{"kind": "User", "name": user}],
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}}]


RBAC = [*bound("al", "al", [ALERTS, lma(["east"], ["events"])]),  # the review's exfil: alerts, events, no flows
        *bound("full", "full", [ALERTS, lma(["*"], ["flows", "events"])]),
        *bound("east", "east", [ALERTS, lma(["east", "west"], ["flows", "events"])]),  # named clusters only
        *bound("scoped", "scoped", [ALERTS]),
        *bound("scoped", "scoped-flows", [lma(["*"], ["flows"])], namespace="team-a"),  # one namespace's flows
        *bound("audit1", "audit1", [ALERTS, lma(["*"], ["audit_kube"])])]  # one of the two audit types


def alert(name: str, data_set: str = "flows") -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": name},
            "spec": {"description": "x", "severity": 100, "dataSet": data_set, "period": "1m", "lookback": "30m"}}


@pytest.fixture
def srv(tmp_path: Path):
    tokens = [{"token": f"tok-{u}-0123456789abcdef", "user": u} for u in USERS]
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump(tokens))
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    settings = Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml",
                        admin_token=True, detect_interval=3600)
    app = create_app(settings, clock=FakeClock(NOW))
    with ServerThread(app) as server:
        server.app = app
        yield server


def client(server: ServerThread, who: str) -> httpx.Client:
    token = server.app.state.margay.access.admin_token if who == "admin" else f"tok-{who}-0123456789abcdef"
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}", "x-cluster-id": "east"})


def test_alert_author_must_read_the_data_set_everywhere(srv):
    stored = srv.app.state.margay.detection.docs
    for who in ("al", "east", "scoped"):  # no flows; flows of named clusters only; flows of one namespace
        with client(srv, who) as c:
            r = c.put(f"{API}/globalalerts/exfil", json=alert("exfil"))
            assert r.status_code == 403, (who, r.text)
            msg = r.json()["error"]["message"]
            assert "\n" not in msg and f"{who} may not read flows logs of every cluster" in msg, msg
            assert ("GlobalAlert", "exfil") not in stored
    with client(srv, "full") as c:  # flows of every cluster (resource *): allowed, and dry runs too
        assert c.put(f"{API}/globalalerts/exfil", json=alert("exfil")).status_code == 201
        assert c.post(f"{API}/globalalerts/-/dry-run", json={"alert": alert("exfil")}).status_code == 200
        r = c.put(f"{API}/globalalerts/logins", json=alert("logins", "audit"))
        assert r.status_code == 403 and "audit_ee/audit_kube" in r.json()["error"]["message"], r.text
    with client(srv, "audit1") as c:  # audit reads both audit types: one of them is not enough
        r = c.put(f"{API}/globalalerts/logins", json=alert("logins", "audit"))
        assert r.status_code == 403 and "may not read audit_ee logs" in r.json()["error"]["message"], r.text
    with client(srv, "admin") as c:  # the administrator, as before
        assert c.put(f"{API}/globalalerts/logins", json=alert("logins", "audit")).status_code == 201
    with client(srv, "al") as c:  # an existing alert edited by a lesser author: checked again, left as it was
        edited = alert("logins", "flows")
        r = c.put(f"{API}/globalalerts/logins", json=edited)
        assert r.status_code == 403, r.text
        assert stored[("GlobalAlert", "logins")]["spec"]["dataSet"] == "audit"
        r = c.put(f"{API}/globalalerts/exfil", json={**alert("exfil"), "spec": {**alert("exfil")["spec"],
                                                                                "severity": 1}})
        assert r.status_code == 403 and stored[("GlobalAlert", "exfil")]["spec"]["severity"] == 100
        # GlobalAlertTemplates are never run: the projectcalico.org verbs alone decide (al has none on them)
        assert c.put(f"{API}/globalalerttemplates/t", json={**alert("t"), "kind": "GlobalAlertTemplate"}
                     ).status_code == 403
