"""TokenReview / SubjectAccessReview mode, against the rig's real kube-apiserver.

margay runs with `--kubeconfig` as the user `margay` (bound to system:auth-delegator); what it asked the API
server is read back from the API server's own audit log. The full matrix in this mode: test_matrix*.py
(param `kube`); agreement with the local evaluator, revocation and outages: test_kube_real.py.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

from .conftest import Rig, kube_people


def reviews(kube: Any, resource: str) -> list[dict[str, Any]]:
    """The reviews margay's identity created, from the API server's audit log (written before it answers)."""
    return [e for e in kube.api.audit_events() if e["verb"] == "create" and e["user"]["username"] == "margay"
            and (e.get("objectRef") or {}).get("resource") == resource]


@pytest.fixture(scope="module")
def kube_margay(kube: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rig, Any]]:
    base = tmp_path_factory.mktemp("kube-mode")
    people = kube_people(kube)
    (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": "writer-east-0123456789", "cluster": "east"}]))
    app = create_app(Settings(data_dir=base / "data", kubeconfig=kube.kubeconfig_for("margay", base / "kubeconfig"),
                              tokens=base / "tokens.yaml"))
    assert app.state.margay.access.mode == "kube"
    with ServerThread(app) as server:
        rig = Rig(server.url, "", base / "tokens.yaml")
        rig.people = people
        r = rig.http.post("/api/v1/flows/logs/bulk", content="\n".join(SAMPLES["flows"]).encode(),
                          headers={"content-type": "application/x-ndjson", "x-cluster-id": "east",
                                   "authorization": "Bearer writer-east-0123456789"})
        assert r.status_code == 200, r.text
        yield rig, kube
        rig.http.close()


@pytest.mark.rig
def test_token_review_authenticates(kube_margay: tuple[Rig, Any]) -> None:
    rig, kube = kube_margay
    assert rig.post(None, "/api/v1/flows/logs", {}, cluster="east").status_code == 401
    before = len(reviews(kube, "tokenreviews"))
    assert rig.http.post("/api/v1/flows/logs", json={}, headers={
        "authorization": "Bearer unknown-token-0123", "x-cluster-id": "east"}).status_code == 401
    assert rig.post("alice", "/api/v1/flows/logs", {}, cluster="east").status_code == 200
    assert len(reviews(kube, "tokenreviews")) == before + 2


@pytest.mark.rig
def test_subject_access_review_decides(kube_margay: tuple[Rig, Any]) -> None:
    rig, kube = kube_margay
    body = {"time_range": {"from": "2000-01-01T00:00:00Z"}}
    assert rig.post("alice", "/api/v1/flows/logs", body, cluster="east").json()["total_hits"] == 4
    assert rig.post("alice", "/api/v1/flows/logs", body, cluster="west").status_code == 403
    assert rig.post("alice", "/api/v1/dns/logs", body, cluster="east").status_code == 403
    assert rig.post("bob", "/api/v1/audit/logs", {"type": "any"}, cluster="west").status_code == 200
    assert rig.post("grafana", "/api/v1/events", {}, cluster="west").status_code == 200  # a real SA token
    assert rig.post("grafana", "/api/v1/flows/logs", {}, cluster="west").status_code == 403
    sar = next(e["requestObject"] for e in reviews(kube, "subjectaccessreviews")
               if e["requestObject"]["spec"]["user"] == "alice"
               and e["requestObject"]["spec"]["resourceAttributes"].get("resource") == "east"
               and e["requestObject"]["spec"]["resourceAttributes"].get("name") == "flows"
               and "namespace" not in e["requestObject"]["spec"]["resourceAttributes"])
    assert sar["spec"]["resourceAttributes"] == {"group": "lma.tigera.io", "resource": "east", "name": "flows",
                                                 "verb": "get"}
    assert sar["spec"]["groups"] == ["devs", "system:authenticated"] and sar["spec"]["uid"] == "uid-alice"


@pytest.mark.rig
def test_decisions_are_cached(kube_margay: tuple[Rig, Any]) -> None:
    rig, kube = kube_margay
    rig.post("alice", "/api/v1/flows/logs", {}, cluster="east")
    before = len(reviews(kube, "subjectaccessreviews")), len(reviews(kube, "tokenreviews"))
    for _ in range(5):
        assert rig.post("alice", "/api/v1/flows/logs", {}, cluster="east").status_code == 200
    assert (len(reviews(kube, "subjectaccessreviews")), len(reviews(kube, "tokenreviews"))) == before


@pytest.mark.rig
def test_cluster_tokens_still_come_from_the_tokens_file(kube_margay: tuple[Rig, Any]) -> None:
    rig, _ = kube_margay
    r = rig.http.post("/api/v1/flows/logs/bulk", content=SAMPLES["flows"][0].encode(),
                      headers={"content-type": "application/x-ndjson", "x-cluster-id": "west",
                               "authorization": "Bearer writer-east-0123456789"})
    assert r.status_code == 403


def test_api_server_down_is_a_clear_error(tmp_path: Path) -> None:
    from margay.access.kube import Connection, KubeClient
    from margay.errors import BackendError

    client = KubeClient(Connection(server="http://127.0.0.1:9"), timeout=0.5)
    with pytest.raises(BackendError, match="unreachable"):
        client.review_token("x")
    client.close()


def _server_dropping_first(drops: int) -> tuple[socket.socket, list[int]]:
    """An HTTP/1.1 server on 127.0.0.1:0 that reads each request, closes the first `drops` connections without
    a word (a keep-alive connection the API server closed as the request went out), then answers allowed."""
    body = json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                       "status": {"allowed": True, "reason": "test"}}).encode()
    srv = socket.create_server(("127.0.0.1", 0))
    seen: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(next(v for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                                  if k.strip().lower() == b"content-length"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                seen.append(len(seen))
                if len(seen) <= drops:
                    continue  # closed without an answer
                conn.sendall(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve, daemon=True).start()
    return srv, seen


@pytest.mark.parametrize("drops", [1, 2])
def test_a_connection_dropped_before_its_answer_is_tried_once_more(drops: int) -> None:
    from margay.access.identity import Identity
    from margay.access.kube import Connection, KubeClient
    from margay.errors import BackendError

    srv, seen = _server_dropping_first(drops)
    client = KubeClient(Connection(server=f"http://127.0.0.1:{srv.getsockname()[1]}"), timeout=5)
    try:
        who = Identity("alice", ("devs",))
        if drops == 1:  # the review is sent again on a new connection and answered
            assert client.review_access(who, "get", "lma.tigera.io", "clusters", "flows") == (True, "test")
            assert len(seen) == 2
        else:  # twice in a row: the server is reported gone, once, not retried forever
            with pytest.raises(BackendError, match="unreachable"):
                client.review_access(who, "get", "lma.tigera.io", "clusters", "flows")
            assert len(seen) == 2
    finally:
        client.close()
        srv.close()


def test_ttl_cache_is_bounded() -> None:
    from margay.access.cache import TTLCache

    now = [0.0]
    c: TTLCache[int] = TTLCache(maxsize=3, ttl=10, clock=lambda: now[0])
    for i in range(5):
        c.put(i, i)
    assert len(c) == 3 and c.get(0) is None and c.get(4) == 4 and c.evicted == 2
    now[0] = 11
    assert c.get(4) is None
