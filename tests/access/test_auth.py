"""Authentication: 401 without a valid token on every endpoint but /-/health; revocation; cluster-safe writes."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from margay.access.tokens import TokenFile, hashed, parse_tokens
from margay.app import create_app
from margay.cli import app as cli
from margay.config import Settings
from margay.errors import ConfigError
from margay.logtypes import SAMPLES
from margay.testing.server import ServerProcess, ServerThread

from .conftest import RBAC, TOKENS, Rig, token_of, write_tokens

FLOW = SAMPLES["flows"][0].encode()
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Rig]:
    write_tokens(tmp_path / "tokens.yaml", TOKENS)
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml"))
    with ServerThread(app) as server:
        rig = Rig(server.url, "", tmp_path / "tokens.yaml")
        yield rig
        rig.http.close()


def every_route() -> list[tuple[str, str]]:
    out = []
    for r in create_app().routes:
        for method in sorted(getattr(r, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, r.path.replace("{field}", "cluster")))
    return out


def test_every_endpoint_but_health_needs_a_token(fresh: Rig) -> None:
    routes = every_route()
    assert ("GET", "/-/health") in routes
    for method, path in routes:
        for headers in ({}, {"authorization": "Bearer not-a-known-token-at-all"}, {"authorization": "Basic eDp5"},
                        {"authorization": "Bearer"}):
            r = fresh.http.request(method, path, headers=headers, content=FLOW if method == "POST" else None)
            if path == "/-/health":
                assert r.status_code == 200
                continue
            if path == "/" or path.startswith("/ui/"):  # the UI's shell and vendored files carry no data (web/pages.py)
                assert r.status_code != 401 and "web-5d8c9" not in r.text
                continue
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["error"]["type"] == "unauthorized" and r.headers["www-authenticate"].startswith("Bearer")
            assert "web-5d8c9" not in r.text


def test_revoked_token_is_refused_at_once(fresh: Rig) -> None:
    assert fresh.post("alice", "/api/v1/flows/logs", {}, cluster="east").status_code == 200
    write_tokens(fresh.tokens_file, {k: v for k, v in TOKENS.items() if k != "alice"})
    r = fresh.post("alice", "/api/v1/flows/logs", {}, cluster="east")
    assert r.status_code == 401 and "items" not in r.text
    assert fresh.post("carol", "/api/v1/flows/logs", {}, cluster="west").status_code == 200


def test_hashed_tokens_are_accepted(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump([{"token": hashed("s3cret-but-long-enough"), "user": "ann", "groups": ["g"]}]))
    tf = TokenFile(f)
    who = tf.lookup("s3cret-but-long-enough")
    assert who is not None and who.name == "ann" and who.groups == ("g", "system:authenticated")
    assert tf.lookup(hashed("s3cret-but-long-enough")) is None  # the hash is not itself a token


@pytest.mark.parametrize("doc", ["- token: abcdefghijklmnopq\n", "- {token: abcdefghijklmnopq, user: a, cluster: b}\n",
                                 "- {token: 'sha256:zz', user: a}\n", "{a: 1}\n", "- {user: a}\n"])
def test_bad_tokens_files(doc: str) -> None:
    with pytest.raises(ConfigError):
        parse_tokens(doc)


def test_cluster_token_writes_only_its_cluster(fresh: Rig) -> None:
    w = "writer-east"
    r = fresh.post(w, "/api/v1/flows/logs/bulk", None, cluster="west", content=FLOW, headers=NDJSON)
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    r = fresh.post(w, "/api/v1/flows/logs/bulk", None, cluster="cluster", content=FLOW, headers=NDJSON)
    assert r.status_code == 403  # the default cluster name is another cluster too
    assert fresh.post(w, "/api/v1/flows/logs/bulk", None, cluster="east", content=FLOW, headers=NDJSON).status_code == 200
    # No x-cluster-id: the server stamps the token's cluster.
    assert fresh.post(w, "/api/v1/flows/logs/bulk", None, content=FLOW, headers=NDJSON).status_code == 200
    # A reader with `get` cannot write, and the writer cannot read.
    assert fresh.post("alice", "/api/v1/flows/logs/bulk", None, cluster="east", content=FLOW,
                      headers=NDJSON).status_code == 403
    assert fresh.post(w, "/api/v1/flows/logs", {}, cluster="east").status_code == 403
    assert fresh.post("alice", "/api/v1/flows/logs", {"time_range": {"from": "2000-01-01T00:00:00Z"}},
                      cluster="east").json()["total_hits"] == 2


@pytest.mark.parametrize(("bulk", "read", "name"), [
    ("/api/v1/policy_activity/logs/bulk", "/api/v1/policy_activity/logs", "policy_activity"),
    ("/api/v1/runtime/reports/bulk", "/api/v1/runtime/reports", "runtime")])
def test_cluster_token_writes_policy_activity_and_runtime_reports_only_to_its_cluster(
        fresh: Rig, bulk: str, read: str, name: str) -> None:
    w, doc = "writer-east", "\n".join(SAMPLES[name]).encode()
    r = fresh.post(w, bulk, None, cluster="west", content=doc, headers=NDJSON)
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    assert fresh.post(w, bulk, None, cluster="east", content=doc, headers=NDJSON).status_code == 200
    assert fresh.post(w, read, {}, cluster="east").status_code == 403  # the writer cannot read
    # alice reads east's flows only: no grant of `policyactivity` / `runtimereports`.
    r = fresh.post("alice", read, {"time_range": {"from": "2000-01-01T00:00:00Z"}}, cluster="east")
    assert r.status_code == 403 and "web-5d8c9" not in r.text  # (the reads allowed: test_matrix.py)
    # frank reads all of east's logs, but only in namespace shop: these types have no namespace side.
    r = fresh.post("frank", read, {"time_range": {"from": "2000-01-01T00:00:00Z"}}, cluster="east")
    assert r.status_code == 403 and "web-5d8c9" not in r.text, r.text


def test_people_write_with_create_on_lma(tmp_path: Path) -> None:
    rbac = RBAC + [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "w"},
                    "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["east"], "resourceNames": ["flows"],
                               "verbs": ["create"]}]},
                   {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "w"},
                    "subjects": [{"kind": "User", "name": "mallory"}],
                    "roleRef": {"kind": "ClusterRole", "name": "w", "apiGroup": "rbac.authorization.k8s.io"}}]
    write_tokens(tmp_path / "tokens.yaml", TOKENS)
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(rbac))
    app = create_app(Settings(data_dir=tmp_path / "d", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml"))
    with ServerThread(app) as server:
        rig = Rig(server.url, "", tmp_path / "tokens.yaml")
        assert rig.post("mallory", "/api/v1/flows/logs/bulk", None, cluster="east", content=FLOW,
                        headers=NDJSON).status_code == 200
        assert rig.post("mallory", "/api/v1/dns/logs/bulk", None, cluster="east", content=FLOW,
                        headers=NDJSON).status_code == 403
        assert rig.post("mallory", "/api/v1/flows/logs", {}, cluster="east").status_code == 403
        # /es/_bulk checks the same name per type (it once checked "*": a grant on flows wrote nothing there)
        dns = orjson.dumps(orjson.loads(SAMPLES["dns"][0]))
        body = b"".join(orjson.dumps({"index": {"_index": f"tigera_secure_ee_{t}.east."}}) + b"\n" + d + b"\n"
                        for t, d in (("flows", FLOW.strip()), ("dns", dns)))
        r = rig.post("mallory", "/es/_bulk", None, cluster="east", content=body, headers=NDJSON)
        assert r.status_code == 200 and [i["index"]["status"] for i in r.json()["items"]] == [201, 403], r.text
        rig.http.close()


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["serve", "--no-auth", "--host", "0.0.0.0", "--port", "0", "--data-dir",
                                 str(tmp_path / "d")])
    assert r.exit_code == 2 and "loopback" in r.output
    with pytest.raises(ConfigError):
        create_app(Settings(data_dir=tmp_path / "d", host="0.0.0.0", auth="none"))
    r = CliRunner().invoke(cli, ["serve", "--no-auth", "--tokens", "x.yaml", "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 2


def test_in_process_apps_without_auth_settings_stay_open(tmp_path: Path) -> None:
    m = create_app(Settings(data_dir=tmp_path / "d")).state.margay
    assert not m.access.enabled
    m.close()


def test_serve_generates_an_admin_token(tmp_path: Path) -> None:
    import httpx

    with ServerProcess(tmp_path / "data", auth=True) as proc:
        token_file = tmp_path / "data" / "admin-token"
        assert proc.token and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert proc.token in proc.log.read_text()
        assert httpx.get(proc.url + "/-/health").status_code == 200
        assert httpx.get(proc.url + "/api/v1/indices").status_code == 401
        r = httpx.get(proc.url + "/api/v1/indices", headers={"authorization": f"Bearer {proc.token}"})
        assert r.status_code == 200
        r = httpx.post(proc.url + "/api/v1/flows/logs/bulk", content=FLOW,
                       headers={**NDJSON, "authorization": f"Bearer {proc.token}", "x-cluster-id": "east"})
        assert r.status_code == 200
    # Restarting keeps the same token.
    with ServerProcess(tmp_path / "data", auth=True) as again:
        assert again.token == proc.token


def test_token_lookup_uses_the_long_token_names() -> None:
    assert len(token_of("x")) >= 16


def test_index_patterns_expand_to_readable_pairs_only(tmp_path: Path) -> None:
    """The function the Elasticsearch-compatible API calls: Access.expand(identity, pattern, partitions)."""
    from margay.access.identity import person
    from margay.errors import Forbidden

    write_tokens(tmp_path / "tokens.yaml", TOKENS)
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    m = create_app(Settings(data_dir=tmp_path / "d", tokens=tmp_path / "tokens.yaml",
                            rbac=tmp_path / "rbac.yaml")).state.margay
    stored = [(t, c, "20240101") for t in ("flows", "dns", "audit_ee", "audit_kube") for c in ("east", "west")]
    alice, bob = person("alice", ["devs"]), person("bob", ["auditors"])

    def names(who: object, pattern: str) -> set[tuple[str, str]]:
        return {(lt.name, c) for lt, c, _ in m.access.expand(who, pattern, stored)}  # type: ignore[arg-type]

    assert names(alice, "tigera_secure_ee_*") == {("flows", "east")}
    assert names(alice, "*") == names(alice, "_all") == {("flows", "east")}
    assert names(bob, "tigera_secure_ee_audit*") == {(t, c) for t in ("audit_ee", "audit_kube") for c in ("east", "west")}
    assert names(bob, "tigera_secure_ee_audit*,-tigera_secure_ee_audit_kube.*") == {("audit_ee", "east"),
                                                                                    ("audit_ee", "west")}
    assert names(alice, "tigera_secure_ee_flows.east.20240101") == {("flows", "east")}
    with pytest.raises(Forbidden):
        m.access.expand(alice, "tigera_secure_ee_flows.west.*", stored)
    with pytest.raises(Forbidden):
        m.access.expand(alice, "tigera_secure_ee_dns*,tigera_secure_ee_flows.w*", stored)
    assert m.access.expand(alice, "nothing-matches-*", stored) == []
    m.close()
