"""TokenReview / SubjectAccessReview mode.

NOTE: this is NOT a real kube-apiserver (none is installable here). A local HTTP server answers the real
authentication.k8s.io/v1 TokenReview and authorization.k8s.io/v1 SubjectAccessReview JSON, deciding
SubjectAccessReviews with margay's own RBAC evaluator over the same YAML as the matrix test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from margay.access.identity import person
from margay.access.rbac import Policy
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

from .conftest import RBAC, Rig

SA_TOKEN = "margay-service-account-token"
PEOPLE = {"tr-alice": ("alice", ["devs"]), "tr-bob": ("bob", ["auditors"]), "tr-grafana":
          ("system:serviceaccount:monitoring:grafana", ["system:serviceaccounts", "system:serviceaccounts:monitoring"])}


class FakeAPIServer:
    def __init__(self) -> None:
        self.policy = Policy(RBAC)
        self.reviews: list[dict[str, Any]] = []
        self.app = Starlette(routes=[
            Route("/apis/authentication.k8s.io/v1/tokenreviews", self.token_review, methods=["POST"]),
            Route("/apis/authorization.k8s.io/v1/subjectaccessreviews", self.access_review, methods=["POST"])])

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {SA_TOKEN}"

    async def token_review(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse({"kind": "Status", "status": "Failure", "code": 401}, 401)
        body = await request.json()
        assert body["apiVersion"] == "authentication.k8s.io/v1" and body["kind"] == "TokenReview"
        self.reviews.append(body)
        token = body["spec"]["token"]
        status: dict[str, Any] = {"authenticated": False}
        if token in PEOPLE:
            name, groups = PEOPLE[token]
            status = {"authenticated": True, "user": {"username": name, "uid": f"uid-{name}",
                                                      "groups": [*groups, "system:authenticated"]},
                      "audiences": ["https://kubernetes.default.svc"]}
        return JSONResponse({**body, "status": status}, 201)

    async def access_review(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse({"kind": "Status", "status": "Failure", "code": 401}, 401)
        body = await request.json()
        assert body["apiVersion"] == "authorization.k8s.io/v1" and body["kind"] == "SubjectAccessReview"
        self.reviews.append(body)
        spec = body["spec"]
        ra = spec["resourceAttributes"]
        who = person(spec["user"], spec.get("groups") or [], add_system_groups=False)
        allowed = self.policy.allowed(who, ra["verb"], ra["group"], ra["resource"], ra.get("name", ""),
                                      ra.get("namespace", ""))
        return JSONResponse({**body, "status": {"allowed": allowed}}, 201)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rig, FakeAPIServer]]:
    base = tmp_path_factory.mktemp("kube")
    fake = FakeAPIServer()
    with ServerThread(fake.app) as api:
        kubeconfig = base / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "c", "cluster": {"server": api.url}}],
            "users": [{"name": "u", "user": {"token": SA_TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}))
        (base / "tokens.yaml").write_text(yaml.safe_dump([{"token": "writer-east-0123456789", "cluster": "east"}]))
        app = create_app(Settings(data_dir=base / "data", kubeconfig=kubeconfig, tokens=base / "tokens.yaml"))
        assert app.state.margay.access.mode == "kube"
        with ServerThread(app) as server:
            rig = Rig(server.url, "", base / "tokens.yaml")
            rig.token = lambda who: who  # type: ignore[method-assign]
            r = rig.post("writer-east-0123456789", "/api/v1/flows/logs/bulk", None, content="\n".join(
                SAMPLES["flows"]).encode(), headers={"content-type": "application/x-ndjson"})
            assert r.status_code == 200, r.text
            yield rig, fake
            rig.http.close()


def test_token_review_authenticates(kube: tuple[Rig, FakeAPIServer]) -> None:
    rig, fake = kube
    assert rig.post(None, "/api/v1/flows/logs", {}, cluster="east").status_code == 401
    assert rig.post("unknown-token", "/api/v1/flows/logs", {}, cluster="east").status_code == 401
    assert rig.post("tr-alice", "/api/v1/flows/logs", {}, cluster="east").status_code == 200
    review = [r for r in fake.reviews if r["kind"] == "TokenReview"][-1]
    assert review["spec"] == {"token": "tr-alice"}


def test_subject_access_review_decides(kube: tuple[Rig, FakeAPIServer]) -> None:
    rig, fake = kube
    body = {"time_range": {"from": "2000-01-01T00:00:00Z"}}
    assert rig.post("tr-alice", "/api/v1/flows/logs", body, cluster="east").json()["total_hits"] == 4
    assert rig.post("tr-alice", "/api/v1/flows/logs", body, cluster="west").status_code == 403
    assert rig.post("tr-alice", "/api/v1/dns/logs", body, cluster="east").status_code == 403
    assert rig.post("tr-bob", "/api/v1/audit/logs", {"type": "any"}, cluster="west").status_code == 200
    assert rig.post("tr-grafana", "/api/v1/events", {}, cluster="west").status_code == 200
    assert rig.post("tr-grafana", "/api/v1/flows/logs", {}, cluster="west").status_code == 403
    sar = next(r for r in fake.reviews if r["kind"] == "SubjectAccessReview" and r["spec"]["user"] == "alice")
    assert sar["spec"]["resourceAttributes"] == {"group": "lma.tigera.io", "resource": "east", "name": "flows",
                                                 "verb": "get"}
    assert sar["spec"]["groups"] == ["devs", "system:authenticated"] and sar["spec"]["uid"] == "uid-alice"


def test_decisions_are_cached(kube: tuple[Rig, FakeAPIServer]) -> None:
    rig, fake = kube
    rig.post("tr-alice", "/api/v1/flows/logs", {}, cluster="east")
    before = len(fake.reviews)
    for _ in range(5):
        assert rig.post("tr-alice", "/api/v1/flows/logs", {}, cluster="east").status_code == 200
    assert len(fake.reviews) == before


def test_cluster_tokens_still_come_from_the_tokens_file(kube: tuple[Rig, FakeAPIServer]) -> None:
    rig, _ = kube
    r = rig.post("writer-east-0123456789", "/api/v1/flows/logs/bulk", None, cluster="west",
                 content=SAMPLES["flows"][0].encode(), headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 403


def test_api_server_down_is_a_clear_error(tmp_path: Path) -> None:
    from margay.access.kube import Connection, KubeClient
    from margay.errors import BackendError

    client = KubeClient(Connection(server="http://127.0.0.1:9"), timeout=0.5)
    with pytest.raises(BackendError, match="unreachable"):
        client.review_token("x")
    client.close()


def test_ttl_cache_is_bounded() -> None:
    from margay.access.cache import TTLCache

    now = [0.0]
    c: TTLCache[int] = TTLCache(maxsize=3, ttl=10, clock=lambda: now[0])
    for i in range(5):
        c.put(i, i)
    assert len(c) == 3 and c.get(0) is None and c.get(4) == 4 and c.evicted == 2
    now[0] = 11
    assert c.get(4) is None
