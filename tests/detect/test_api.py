"""The detector's resources through the API of a real server: CRUD and status, refusals naming the field,
RBAC with projectcalico.org names and verbs, the dry run; and resources loaded with --detect-resources."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect.scenarios import denied_flow_spike
from margay.testing.server import ServerThread

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
API = "/apis/projectcalico.org/v3"
TOKENS = [{"token": "tok-admin-0123456789abcdef", "user": "sec", "groups": ["secops"]},
          {"token": "tok-viewer-0123456789abcdef", "user": "viewer"},
          {"token": "tok-writer-0123456789abcdef", "cluster": "c1"}]


def role(name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
             "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
             "subjects": [{"kind": "User", "name": "sec" if name == "secops" else "viewer"}],
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}]


RBAC = [*role("secops", [{"apiGroups": ["projectcalico.org"], "verbs": ["*"],
                          "resources": ["globalalerts", "globalalerts/status", "globalthreatfeeds",
                                        "globalthreatfeeds/status", "globalalerttemplates"]},
                         {"apiGroups": ["lma.tigera.io"], "resources": ["*"], "resourceNames": ["flows", "events"],
                          "verbs": ["get"]}]),
        *role("viewer", [{"apiGroups": ["projectcalico.org"], "verbs": ["get", "list"],
                          "resources": ["globalalerts"]}])]

ALERT = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalAlert", "metadata": {"name": "denies"},
         "spec": {"description": "${count} denies from ${source_namespace}", "severity": 50, "dataSet": "flows",
                  "query": "action = deny", "aggregateBy": ["source_namespace"], "metric": "count",
                  "condition": "gte", "threshold": 100}}


@pytest.fixture
def srv(tmp_path: Path):
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump(TOKENS))
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "feeds.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": "push-ips"},
         "spec": {"content": "IPSet"}}))
    settings = Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml",
                        detect_resources=tmp_path / "res", detect_interval=3600)
    with ServerThread(create_app(settings, clock=FakeClock(NOW))) as server:
        yield server


def client(server: ServerThread, who: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer tok-{who}-0123456789abcdef"})


def test_crud_status_and_refusals(srv):
    with client(srv, "admin") as c:
        r = c.put(f"{API}/globalalerts/denies", content=yaml.safe_dump(ALERT))
        assert r.status_code == 201, r.text
        assert r.json()["status"]["healthy"] is True
        assert c.put(f"{API}/globalalerts/denies", json=ALERT).status_code == 200
        assert [i["metadata"]["name"] for i in c.get(f"{API}/globalalerts").json()["items"]] == ["denies"]
        assert c.get(f"{API}/globalalerts/denies/status").json()["lastExecuted"] is None
        feeds = c.get(f"{API}/globalthreatfeeds").json()["items"]
        assert [f["metadata"]["name"] for f in feeds] == ["push-ips"]
        assert c.delete(f"{API}/globalthreatfeeds/push-ips").status_code == 400  # from --detect-resources
        templates = c.get(f"{API}/globalalerttemplates").json()["items"]
        assert "margay.port-scan" in [t["metadata"]["name"] for t in templates]
        for bad, field in ((dict(ALERT, spec={**ALERT["spec"], "colour": 1}), "spec.colour"),
                           (dict(ALERT, spec={**ALERT["spec"], "query": "action == deny"}), "spec.query"),
                           (dict(ALERT, spec={k: v for k, v in ALERT["spec"].items() if k != "metric"}),
                            "spec.threshold"),
                           (dict(ALERT, spec={**ALERT["spec"], "period": "10s"}), "spec.period")):
            r = c.put(f"{API}/globalalerts/denies", json=bad)
            assert r.status_code == 400 and r.json()["error"]["message"].startswith(field), r.text
        assert c.put(f"{API}/globalalerts/other", json=ALERT).status_code == 400  # name mismatch
        assert c.put(f"{API}/globalalerts/x", content=b"{oops").status_code == 400
        assert c.get(f"{API}/nope").status_code == 404
        assert c.delete(f"{API}/globalalerts/denies").status_code == 200
        assert c.get(f"{API}/globalalerts/denies").status_code == 404


def test_rbac_uses_projectcalico_names_and_verbs(srv):
    with client(srv, "admin") as c:
        assert c.put(f"{API}/globalalerts/denies", json=ALERT).status_code == 201
    with client(srv, "viewer") as v:
        assert v.get(f"{API}/globalalerts").status_code == 200
        assert v.get(f"{API}/globalalerts/denies").status_code == 200
        r = v.put(f"{API}/globalalerts/denies", json=ALERT)
        assert r.status_code == 403 and "update globalalerts/denies" in r.json()["error"]["message"]
        assert v.get(f"{API}/globalthreatfeeds").status_code == 403
        assert v.get(f"{API}/globalalerts/denies/status").status_code == 403
    with client(srv, "writer") as w:
        assert w.get(f"{API}/globalalerts").status_code == 403
        # refused before its body is read or parsed: a deep or oversized body from a caller without the verb
        assert w.put(f"{API}/globalalerts/deep", content=b"a:\n" + b"  - " * 5000).status_code == 403
    assert httpx.get(f"{srv.url}{API}/globalalerts").status_code == 401
    with client(srv, "admin") as c:  # the verb held: a 400 for a body nested too deep, a 413 past the bound
        for deep in (b"a:\n" + b"  - " * 5000, b"[" * 3000):
            r = c.put(f"{API}/globalalerts/deep", content=deep)
            assert r.status_code == 400 and ("neither JSON nor YAML" in r.text or "too deep" in r.text), r.text
        r = c.put(f"{API}/globalalerts/big", content=b"#" * (2 << 20))
        assert r.status_code == 413, r.text


def test_dry_run_counts_events_without_saving(srv):
    t = int(NOW.timestamp())
    records = denied_flow_spike(t)["flows"]
    with client(srv, "writer") as w:
        r = w.post("/api/v1/flows/logs/bulk", content=b"\n".join(orjson.dumps(x) for x in records),
                   headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
    with client(srv, "admin") as c:
        r = c.post(f"{API}/globalalerts/-/dry-run", json={"alert": {k: v for k, v in ALERT.items()
                                                                    if k != "apiVersion"}, "from": "now-1h"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["events"] == 1 and body["by_cluster"] == {"c1": 1}
        assert body["sample"][0]["description"] == "120 denies from batch"
        assert c.get(f"{API}/globalalerts").json()["items"] == []  # nothing saved
        r = c.post(f"{API}/globalalerts/-/dry-run", json={"alert": {**ALERT, "spec": {**ALERT["spec"],
                                                                                     "severity": 500}}})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("spec.severity")
    with client(srv, "viewer") as v:
        assert v.post(f"{API}/globalalerts/-/dry-run", json={"alert": ALERT}).status_code == 403
