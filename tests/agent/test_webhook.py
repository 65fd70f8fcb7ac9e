"""Who may post to the agent's audit webhook (its token, or a loopback listen), what /-/status shows off
loopback, and the bound on the webhook bodies held at once (503 + Retry-After past it)."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from margay.agent.http import SecretFile, create_app, is_loopback, webhook_refusal
from margay.agent.runner import Agent
from margay.agent.settings import AgentSettings
from margay.app import create_app as server_app
from margay.client import Client
from margay.config import Settings
from margay.errors import ConfigError
from margay.testing.agent import AgentProcess, read_all
from margay.testing.server import ServerThread

from .test_sources import NOW, event, eventlist, wait_for

OFF = {name: "" for name in ("flows", "dns", "l7", "bird", "bird6", "audit_ee", "audit_kube")}


def forged(audit_id: str) -> bytes:
    """What a pod reaching the agent's port would post: a system:masters user deleting secrets."""
    ev = {**event(7), "auditID": audit_id, "verb": "delete",
          "user": {"username": "alice@corp", "groups": ["system:masters"]},
          "objectRef": {"resource": "secrets", "namespace": "kube-system", "name": "everything"}}
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev]})


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("agent.example", False),
    ("testclient", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_webhook_rule(tmp_path: Path) -> None:
    # No token: served on a loopback listen only.
    assert webhook_refusal(True, None, None) is None
    status, message = webhook_refusal(False, None, "anything") or (0, "")
    assert status == 403 and "webhook_token_file" in message
    # A token: every post carries it, wherever the agent listens.
    path = tmp_path / "webhook-token"
    path.write_text("s3cret-apiserver-token\n")
    token = SecretFile(path)
    for loopback in (True, False):
        assert webhook_refusal(loopback, token, "s3cret-apiserver-token") is None
        missing = webhook_refusal(loopback, token, None)
        assert missing is not None and missing[0] == 401 and "webhook_token_file" in missing[1]
        wrong = webhook_refusal(loopback, token, "s3cret-apiserver-tokeN")
        assert wrong is not None and wrong[0] == 401
        assert webhook_refusal(loopback, token, "") is not None
    # Re-read when it changes (a rotated Secret); fails closed while it is missing or empty.
    path.write_text("rotated-token-of-another-length")
    assert webhook_refusal(False, token, "rotated-token-of-another-length") is None
    assert webhook_refusal(False, token, "s3cret-apiserver-token") is not None
    path.unlink()
    assert (webhook_refusal(False, token, "rotated-token-of-another-length") or (0,))[0] == 503
    path.write_text("")
    assert (webhook_refusal(False, token, "") or (0,))[0] == 503
    # At start, a missing or empty file is a configuration error, not a webhook open to anyone.
    with pytest.raises(ConfigError, match="empty"):
        SecretFile(path)
    with pytest.raises(ConfigError, match="webhook_token_file"):
        SecretFile(tmp_path / "nowhere")
    path.write_text("CHANGE-ME-webhook\n")  # deploy/agent.yaml's placeholder is no secret
    with pytest.raises(ConfigError, match="placeholder"):
        SecretFile(path)


class Remote:
    """The agent's app called in-process from a pod's address (10.0.0.5): not a local caller."""

    def __init__(self, app: object) -> None:
        self.transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))  # type: ignore[arg-type]

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _call(self, method: str, path: str, **kw: object) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://agent:9081") as c:
                r = await c.request(method, path, **kw)  # type: ignore[arg-type]
                await r.aread()
                return r
        return asyncio.run(go())

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self._call("GET", path, **kw)

    def post(self, path: str, **kw: object) -> httpx.Response:
        return self._call("POST", path, **kw)


def _agent(tmp_path: Path, **settings: str) -> Agent:
    s = AgentSettings.load({"server": "http://127.0.0.1:9", "state_dir": str(tmp_path / "state"), **OFF,
                            "listen": "0.0.0.0:0", **settings}, environ={})
    return Agent(s)


def test_off_loopback_the_webhook_needs_its_token_and_status_hides_the_server(tmp_path: Path) -> None:
    # No token, listening on every address: refused, nothing spooled, and /-/status without the server's URL.
    agent = _agent(tmp_path / "a", server="http://margay.internal:8080")
    with Remote(create_app(agent, loopback=False)) as http:
        r = http.post("/audit/webhook", content=forged("forged-1"))
        assert r.status_code == 403 and "webhook_token_file" in r.json()["error"]["message"]
        assert http.post("/audit/webhook/ee", content=forged("forged-2")).status_code == 403
        status = http.get("/-/status").json()
        assert "margay.internal" not in json.dumps(status) and "server" not in status and "redacted" in status
        assert "margay.internal" not in http.get("/-/metrics").text
    assert len(agent.spool) == 0

    # A token: forged posts (none, wrong, another scheme) get 401 and are not spooled; the apiserver's is.
    (tmp_path / "webhook-token").write_text("apiserver-" + "7" * 32)
    agent = _agent(tmp_path / "b", server="http://margay.internal:8080",
                   webhook_token_file=str(tmp_path / "webhook-token"))
    with Remote(create_app(agent, loopback=False)) as http:
        for headers in ({}, {"authorization": "Bearer apiserver-" + "7" * 31 + "8"},
                        {"authorization": "Basic apiserver-" + "7" * 32}):
            r = http.post("/audit/webhook", content=forged("forged-3"), headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert len(agent.spool) == 0
        assert "margay.internal" not in http.get("/-/status").text
        good = {"authorization": "Bearer apiserver-" + "7" * 32}
        r = http.post("/audit/webhook", content=eventlist(range(3)), headers=good)
        assert r.status_code == 200 and r.json() == {"accepted": 3}
        assert len(agent.spool) == 1
        assert http.get("/-/status", headers=good).json()["server"] == "http://margay.internal:8080"


def test_a_forged_post_is_never_shipped_and_the_apiservers_is(tmp_path: Path) -> None:
    """A real agent process with webhook_token_file, shipping to a real server."""
    (tmp_path / "webhook-token").write_text("apiserver-token-0123456789abcdef\n")
    with ServerThread(server_app(Settings(data_dir=tmp_path / "data"))) as srv, Client(srv.url) as client:
        env = {"MARGAY_AGENT_WEBHOOK_TOKEN_FILE": str(tmp_path / "webhook-token"), "MARGAY_AGENT_BATCH_AGE": "0.2"}
        with AgentProcess(tmp_path / "state", srv.url, env=env) as agent:
            hook = agent.url + "/audit/webhook"
            assert httpx.post(hook, content=forged("forged-none"), timeout=10).status_code == 401
            assert httpx.post(hook, content=forged("forged-wrong"), timeout=10,
                              headers={"authorization": "Bearer apiserver-token-0123456789abcdeF"}).status_code == 401
            r = httpx.post(hook, content=eventlist(range(2)), timeout=10,
                           headers={"authorization": "Bearer apiserver-token-0123456789abcdef"})
            assert r.status_code == 200
            wait_for(lambda: len(read_all(client, "audit_kube", NOW - 3600, NOW + 3600)) >= 2)
            time.sleep(0.5)
            ids = sorted(r["auditID"] for r in read_all(client, "audit_kube", NOW - 3600, NOW + 3600))
            assert ids == ["kube-000000", "kube-000001"]
            assert agent.status()["sources"]["webhook_kube"]["lines_read"] == 2


def test_a_non_loopback_listen_without_a_token_refuses_the_webhook(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "state", "http://127.0.0.1:9", args=("--listen", "0.0.0.0:0"))
    with agent:
        url = agent.url.replace("0.0.0.0", "127.0.0.1")
        r = httpx.post(url + "/audit/webhook", content=forged("forged-1"), timeout=10)
        assert r.status_code == 403 and "webhook_token_file" in r.json()["error"]["message"]
        status = httpx.get(url + "/-/status", timeout=10).json()  # a local caller sees it all
        assert status["server"] == "http://127.0.0.1:9" and status["spool"]["batches"] == 0
    assert "has no webhook_token_file" in agent.log.read_text()


def test_bodies_held_at_once_are_bounded_503_with_retry_after(tmp_path: Path) -> None:
    """While one post holds 3.5 MiB of a 4 MiB budget, another is answered 503 + Retry-After (kube-apiserver
    retries it); the first goes through, and once it is answered the budget is free again."""
    env = {"MARGAY_AGENT_MAX_INFLIGHT_BODY_BYTES": str(4 << 20)}
    with AgentProcess(tmp_path / "state", "http://127.0.0.1:9", env=env) as agent:
        hook = agent.url + "/audit/webhook"
        body = eventlist(range(3000))
        body += b" " * ((4 << 20) - len(body) - (512 << 10))  # 3.5 MiB: JSON may end in blanks
        release = threading.Event()
        answers: list[int] = []

        def slow() -> object:  # the first 3.5 MiB, then wait
            for i in range(0, len(body) - 10, 64 << 10):
                yield body[i:min(i + (64 << 10), len(body) - 10)]
            release.wait(30)
            yield body[-10:]

        first = threading.Thread(target=lambda: answers.append(
            httpx.post(hook, content=slow(), timeout=60).status_code))  # type: ignore[arg-type]
        first.start()

        def held() -> float:
            for line in agent.metrics().splitlines():
                if line.startswith("margay_agent_webhook_body_bytes"):
                    return float(line.split()[-1])
            return 0.0

        try:
            deadline = time.monotonic() + 10  # the agent holds the first 3.5 MiB (bounded: the metric is new)
            while held() < (3 << 20) + (400 << 10) and time.monotonic() < deadline:
                time.sleep(0.05)
            r = httpx.post(hook, content=eventlist(range(3000, 3100)) + b" " * (1 << 20), timeout=30)
            assert r.status_code == 503 and r.headers.get("retry-after"), r.text
            assert "max_inflight_body_bytes" in r.json()["error"]["message"]
        finally:
            release.set()
            first.join()
        assert answers == [200]
        wait_for(lambda: held() == 0)
        assert httpx.post(hook, content=eventlist(range(3000, 3100)) + b" " * (1 << 20), timeout=30).status_code == 200
        assert "margay_agent_webhook_body_refused_total 1" in agent.metrics()


def test_the_webhook_over_https_with_its_token(tmp_path: Path) -> None:
    """kube-apiserver sends its webhook kubeconfig's token only to an https:// URL: the agent serves one."""
    from margay.rig.tls import make_certificates

    ca, cert, key = make_certificates(tmp_path / "tls")
    (tmp_path / "webhook-token").write_text("apiserver-token-over-tls")
    env = {"MARGAY_AGENT_WEBHOOK_TOKEN_FILE": str(tmp_path / "webhook-token"),
           "MARGAY_AGENT_TLS_CERT_FILE": str(cert), "MARGAY_AGENT_TLS_KEY_FILE": str(key)}
    with AgentProcess(tmp_path / "state", "http://127.0.0.1:9", env=env) as agent:
        assert agent.url.startswith("https://")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as http:
            hook = agent.url + "/audit/webhook"
            assert http.post(hook, content=eventlist(range(2))).status_code == 401
            r = http.post(hook, content=eventlist(range(2)), headers={"authorization": "Bearer apiserver-token-over-tls"})
            assert r.status_code == 200 and r.json() == {"accepted": 2}
    bad = AgentProcess(tmp_path / "state2", "http://127.0.0.1:9", env={**env, "MARGAY_AGENT_TLS_KEY_FILE": str(ca)})
    with pytest.raises(RuntimeError, match="tls_cert_file"):
        bad.start(timeout=30)
