"""The UI's sign-in (web/session.py): bounded per identity and in all without ending others' sessions, no
writer tokens, no login CSRF (JSON only, same origin), and the cookies' Secure flag."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.errors import ConfigError
from margay.testing.server import ServerThread
from margay.web.session import Sessions, SessionsFull

TOKENS = {name: f"tok-{name}-0123456789abcdef" for name in ("victim", "attacker", "u1", "u2", "u3")}
WRITER = "writer-east-0123456789abcdef"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("session")
    (d / "tokens.yaml").write_text(yaml.safe_dump([{"token": t, "user": n} for n, t in TOKENS.items()]
                                                  + [{"token": WRITER, "cluster": "east"}]))
    return d


def serve(base: Path, name: str, **settings: Any) -> Iterator[tuple[str, Any]]:
    app = create_app(Settings(data_dir=base / name, tokens=base / "tokens.yaml", **settings))
    with ServerThread(app) as srv:
        yield srv.url, app.state.sessions


@pytest.fixture
def server(base: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    yield from serve(base, request.node.name.replace("[", "_").replace("]", "_"))


def sign_in(url: str, token: str, client: httpx.Client | None = None, **headers: str) -> httpx.Response:
    return (client or httpx).post(url + "/ui/session", json={"token": token}, headers=headers)  # type: ignore[attr-defined]


def test_sign_ins_of_one_user_do_not_end_anothers_session(server: tuple[str, Any]) -> None:
    """/tmp/review19/repro_session_evict.py, with the bounds lowered: the oldest session of the one signing in
    ends, never someone else's."""
    url, sessions = server
    sessions.max_sessions, sessions.per_identity = 100, 5
    victim = httpx.Client(base_url=url)
    assert sign_in(url, TOKENS["victim"], victim).status_code == 200
    first = sign_in(url, TOKENS["attacker"]).cookies["margay_session"]
    codes = {sign_in(url, TOKENS["attacker"]).status_code for _ in range(300)}
    assert codes == {200}
    assert victim.get("/api/v1/whoami").status_code == 200
    assert len(sessions) == 1 + 5
    assert httpx.get(url + "/api/v1/whoami", cookies={"margay_session": first}).status_code == 401


def test_a_full_table_refuses_the_new_sign_in(server: tuple[str, Any]) -> None:
    url, sessions = server
    sessions.max_sessions = 3
    clients = [httpx.Client(base_url=url) for _ in range(3)]
    for c, name in zip(clients, ("u1", "u2", "u3"), strict=True):
        assert sign_in(url, TOKENS[name], c).status_code == 200
    r = sign_in(url, TOKENS["victim"])
    assert r.status_code == 503 and r.headers["retry-after"] == "60" and "margay_session" not in r.cookies
    assert r.json()["error"]["type"] == "sessions_full"
    assert all(c.get("/api/v1/whoami").status_code == 200 for c in clients)
    # A user at the bound signing in again replaces their own oldest session, so it is not refused.
    sessions.per_identity = 1
    assert sign_in(url, TOKENS["u1"]).status_code == 200
    assert clients[0].get("/api/v1/whoami").status_code == 401


def test_ten_thousand_sign_ins_keep_other_sessions() -> None:
    """The defaults: 10,000 sessions of one identity leave another's alive; only `per_identity` of them stay."""
    s = Sessions()
    sid, _ = s.open("victim-token", "victim")
    for _ in range(10_000):
        s.open("attacker-token", "attacker")
    assert s.authorization("GET", {"margay_session": sid}, None) == "Bearer victim-token"
    assert len(s) == 1 + s.per_identity


def test_expired_sessions_make_room() -> None:
    s = Sessions(max_sessions=2, ttl=0.05)
    s.open("a", "a")
    s.open("b", "b")
    with pytest.raises(SessionsFull):
        s.open("c", "c")
    time.sleep(0.1)
    sid, _ = s.open("c", "c")
    assert len(s) == 1 and s.authorization("GET", {"margay_session": sid}, None) == "Bearer c"


def test_writer_tokens_cannot_sign_in(server: tuple[str, Any]) -> None:
    url, sessions = server
    r = sign_in(url, WRITER)
    assert r.status_code == 403 and "writer" in r.json()["error"]["message"]
    assert "margay_session" not in r.cookies and len(sessions) == 0


def test_login_csrf_is_refused(server: tuple[str, Any]) -> None:
    """/tmp/review19/repro_login_csrf.py: a cross-site form (text/plain) and cross-site or other-origin JSON."""
    url, sessions = server
    token = TOKENS["attacker"]
    form = ('{"token":"' + token + '","x":"=' + '"}\r\n').encode()
    r = httpx.post(url + "/ui/session", content=form, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(url + "/ui/session", content=form,
                   headers={"content-type": "text/plain", "origin": "https://evil.example",
                            "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"})
    assert r.status_code == 403
    host = url.split("://", 1)[1]
    for headers in ({"origin": "https://evil.example"}, {"origin": "null"}, {"origin": f"https://{host}"},
                    {"origin": f"http://{host.split(':')[0]}:1"}, {"origin": f"http://evil.{host}"},
                    {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
                    {"sec-fetch-site": "same-site", "origin": url}):
        r = sign_in(url, token, **headers)
        assert r.status_code == 403, headers
        assert "margay_session" not in r.cookies
    assert len(sessions) == 0


def test_same_origin_json_signs_in(server: tuple[str, Any]) -> None:
    url, sessions = server
    token = TOKENS["victim"]
    host = url.split("://", 1)[1]
    for headers in ({}, {"origin": url, "sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"},
                    {"origin": f"https://{host}", "x-forwarded-proto": "https"}):
        r = sign_in(url, token, **headers)
        assert r.status_code == 200, (headers, r.text)
        assert r.cookies["margay_session"]
    r = httpx.post(url + "/ui/session", content=b'{"token": "%s"}' % token.encode(),
                   headers={"content-type": "application/json; charset=utf-8", "origin": url})
    assert r.status_code == 200


@pytest.mark.parametrize(("mode", "secure"), [("always", True), ("never", False), ("auto", False)])
def test_cookie_secure(base: Path, mode: str, secure: bool) -> None:
    for url, _ in serve(base, f"secure-{mode}", cookie_secure=mode):
        r = sign_in(url, TOKENS["victim"])
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        assert len(cookies) == 2
        assert all(("; secure" in c.lower()) == secure for c in cookies), cookies


def test_cookie_secure_setting_is_checked(base: Path) -> None:
    with pytest.raises(ConfigError, match="cookie_secure: expected one of auto, always, never"):
        create_app(Settings(data_dir=base / "bad", tokens=base / "tokens.yaml", cookie_secure="sometimes"))
    assert Settings.load({}, {"MARGAY_COOKIE_SECURE": "always"}).cookie_secure == "always"
