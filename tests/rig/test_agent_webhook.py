"""A real kube-apiserver posting its audit webhook to `margay agent` with the webhook kubeconfig's token over
HTTPS (docs/agent.md, "The agent's audit webhook"): the events arrive; a post without the token is refused."""

from __future__ import annotations

import secrets
import ssl
import time
from pathlib import Path

import httpx
import pytest

from margay.app import create_app
from margay.client import Client
from margay.config import Settings
from margay.rig.kube import KubeAPIServer, Webhook
from margay.rig.tls import make_certificates
from margay.testing.agent import AgentProcess
from margay.testing.server import ServerThread

pytestmark = pytest.mark.rig


def test_kube_apiserver_posts_to_the_agent_with_its_token(tmp_path: Path) -> None:
    workdir = tmp_path / "apiserver"
    ca, cert, key = make_certificates(workdir / "tls")  # the API server's and the agent's serving certificate
    token = secrets.token_hex(24)
    (tmp_path / "webhook-token").write_text(token + "\n")
    env = {"MARGAY_AGENT_WEBHOOK_TOKEN_FILE": str(tmp_path / "webhook-token"), "MARGAY_AGENT_TLS_CERT_FILE": str(cert),
           "MARGAY_AGENT_TLS_KEY_FILE": str(key), "MARGAY_AGENT_BATCH_AGE": "0.2"}
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data"))) as srv, Client(srv.url) as client, \
            AgentProcess(tmp_path / "state", srv.url, env=env) as agent:
        assert agent.url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(ca))
        forged = httpx.post(agent.url + "/audit/webhook", verify=verify, timeout=10,
                            json={"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{}]})
        assert forged.status_code == 401
        marker = "rig-agent-webhook-" + secrets.token_hex(4)
        with KubeAPIServer(workdir, webhook=Webhook(agent.url + "/audit/webhook", token, ca), crds=False) as api:
            with api.client() as http:
                assert http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": marker}}).status_code == 201
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = client.search("audit_kube", {"selector": f'name = "{marker}"'}, ["cluster"])
                if found["total_hits"]:
                    break
                time.sleep(0.5)
        assert found["total_hits"] >= 1, f"the API server's webhook never reached the agent; see {api.log_file}"
        status = httpx.get(agent.url + "/-/status", verify=verify, timeout=10).json()
        assert status["sources"]["webhook_kube"]["lines_read"] > 0
