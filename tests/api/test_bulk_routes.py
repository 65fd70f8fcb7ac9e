"""The bulk routes' direct path (api/ingest.py: BulkRoutes) answers every request as the router did: same status,
body and headers, authentication and the security headers included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from margay.api.ingest import BulkRoutes, bulk_paths
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

FLOW = SAMPLES["flows"][0].encode()
NDJSON = {"content-type": "application/x-ndjson"}
PATH = "/api/v1/flows/logs/bulk"
WRITER = "tok-writer-app-1-0123456789abcdef"  # a writer of cluster app-1 (access/tokens.py)
OTHER = "tok-writer-east-0123456789abcdef"  # a writer of cluster east


def _routed(app: Starlette) -> Starlette:
    """The same app without the direct path: every bulk POST through Starlette's router as before."""
    app.user_middleware = [mw for mw in app.user_middleware if mw.cls is not BulkRoutes]
    return app


@dataclass
class Pair:
    direct: httpx.Client  # the app as create_app builds it
    routed: httpx.Client  # the same app with every bulk POST through the router
    apps: list[Starlette]
    auth: dict[str, str]

    def both(self, method: str, path: str, **kw: Any) -> tuple[Answer, Answer]:
        return _answer(self.direct, method, path, **kw), _answer(self.routed, method, path, **kw)


Answer = tuple[int, bytes, dict[str, str]]


@pytest.fixture(params=["no-auth", "tokens"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    auth: dict[str, str] = {}
    apps = []
    for side in ("direct", "routed"):
        if request.param == "tokens":
            (tmp_path / side).mkdir()
            (tmp_path / side / "tokens.yaml").write_text(yaml.safe_dump([{"token": WRITER, "cluster": "app-1"},
                                                                         {"token": OTHER, "cluster": "east"}]))
            settings = Settings(data_dir=tmp_path / side / "data", tokens=tmp_path / side / "tokens.yaml")
            auth = {"authorization": f"Bearer {WRITER}"}
        else:
            settings = Settings(data_dir=tmp_path / side / "data", auth="none")
        app = create_app(settings)
        apps.append(app if side == "direct" else _routed(app))
    with ServerThread(apps[0]) as a, ServerThread(apps[1]) as b, httpx.Client(base_url=a.url) as ha, \
            httpx.Client(base_url=b.url) as hb:
        yield Pair(ha, hb, apps, auth)


def _answer(client: httpx.Client, method: str, path: str, **kw: Any) -> Answer:
    r = client.request(method, path, **kw)
    here = str(client.base_url).rstrip("/")  # a redirect names its server's own port
    return r.status_code, r.content, {k: v.replace(here, "") for k, v in r.headers.items() if k != "date"}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", PATH, {"content": FLOW, "headers": {**NDJSON, "x-cluster-id": "app-1"}}),
    ("POST", PATH, {"content": FLOW, "headers": {**NDJSON, "x-cluster-id": "app-1", "idempotency-key": "k-1"}}),
    ("POST", PATH, {"content": FLOW, "headers": {**NDJSON, "x-cluster-id": "app-1", "idempotency-key": "k-1"}}),
    ("POST", PATH, {"content": FLOW, "headers": {"content-type": "text/csv"}}),
    ("POST", PATH, {"content": b"{not json\n", "headers": NDJSON}),
    ("POST", PATH, {"content": b"  \n", "headers": NDJSON}),
    ("POST", PATH, {"content": FLOW, "headers": {**NDJSON, "x-cluster-id": "Not A Cluster!"}}),
    ("POST", PATH, {"content": FLOW, "headers": {**NDJSON, "content-encoding": "br"}}),
    ("POST", PATH, {"content": b"\x1f\x8bnot gzip", "headers": {**NDJSON, "content-encoding": "gzip"}}),
    ("POST", "/ingestion/api/v1/dns/logs/bulk", {"content": SAMPLES["dns"][0].encode(), "headers": NDJSON}),
    ("POST", "/api/v1/bgp/logs/bulk", {"content": b"not a bird line", "headers": {"content-type": "text/plain"}}),
    ("GET", PATH, {}),
    ("POST", PATH + "/", {"content": FLOW, "headers": NDJSON}),
]


def test_every_bulk_path_is_a_route() -> None:
    routed = {r.path for r in create_app(Settings(auth="none")).routes if "POST" in (getattr(r, "methods", None) or ())}
    assert set(bulk_paths()) <= routed


def test_direct_path_answers_as_the_router(pair: Pair) -> None:
    for method, path, kw in CASES:
        kw = {**kw, "headers": {**kw.get("headers", {}), **pair.auth}}
        a, b = pair.both(method, path, **kw)
        assert a == b, (method, path, kw.get("headers"))
        assert a[2].get("x-content-type-options") == "nosniff" and "content-security-policy" in a[2]
    assert pair.direct.post(PATH, content=FLOW, headers={**NDJSON, **pair.auth}).status_code == 200


def test_direct_path_refuses_as_the_router(pair: Pair) -> None:
    if not pair.auth:
        pytest.skip("authentication is off")
    for headers in ({}, {"authorization": "Bearer not-a-known-token-at-all"}, {"authorization": "Basic eDp5"}):
        a, b = pair.both("POST", PATH, content=FLOW, headers={**NDJSON, **headers})
        assert a == b and a[0] == 401 and a[2].get("www-authenticate") == 'Bearer realm="margay"'
    a, b = pair.both("POST", PATH, content=FLOW, headers={**NDJSON, "authorization": f"Bearer {OTHER}",
                                                          "x-cluster-id": "app-1"})
    assert a == b and a[0] == 403


def test_a_store_failure_is_the_apps_internal_error(pair: Pair) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("/secret/server/path exploded")

    for app in pair.apps:
        app.state.margay.backend.ingest = broken
    a, b = pair.both("POST", PATH, content=FLOW, headers={**NDJSON, **pair.auth})
    assert a == b and a[0] == 500 and b"/secret" not in a[1] and b"RuntimeError" in a[1]


def test_the_router_is_not_asked(pair: Pair) -> None:
    """With every bulk Route gone from the router, a bulk POST is still stored: the direct path took it."""
    app = pair.apps[0]
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") not in bulk_paths()]
    r = pair.direct.post(PATH, content=FLOW, headers={**NDJSON, **pair.auth, "x-cluster-id": "app-1"})
    assert r.status_code == 200 and r.json()["succeeded"] == 1
