"""The UI's session: the bearer token lives on the server, the browser holds an HttpOnly cookie naming it.

Sign-in (`POST /ui/session` with `{"token": ...}`) checks the token like any API call, keeps it under a
random session id and sets two cookies, both `SameSite=Strict`: `margay_session` (HttpOnly, so no page
script can read it) and `margay_csrf` (readable, so the UI's own script can echo it). A request
authenticated by the cookie must echo the CSRF value in `x-csrf-token` unless it is a GET or HEAD
(double submit: another site can make the browser send the cookies, but cannot read them to set the
header). API clients keep sending `Authorization: Bearer`; a header always wins over the cookie.
Every response also carries the security headers: a strict Content-Security-Policy (no inline script,
`default-src 'self'`), no framing, no MIME sniffing.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from http.cookies import SimpleCookie
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api.common import JSONResponse, json_body
from ..errors import Forbidden, ParseError

SESSION_COOKIE = "margay_session"
CSRF_COOKIE = "margay_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000
SESSION_SECONDS = 12 * 3600
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


class Sessions:
    """Signed-in browsers: session id -> (token, csrf, expiry); bounded, the oldest dropped first."""

    def __init__(self, *, max_sessions: int = MAX_SESSIONS, ttl: float = SESSION_SECONDS) -> None:
        self._items: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_sessions = max_sessions
        self.ttl = ttl

    def open(self, token: str) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._items[sid] = (token, csrf, time.monotonic() + self.ttl)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)
        return sid, csrf

    def close(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)

    def authorization(self, method: str, cookies: dict[str, str], csrf_header: str | None) -> str | None:
        """`Bearer <token>` of the cookie's session (None without a live session); Forbidden when a
        state-changing request does not echo the session's CSRF value."""
        sid = cookies.get(SESSION_COOKIE)
        if not sid:
            return None
        with self._lock:
            entry = self._items.get(sid)
            if entry is not None and entry[2] < time.monotonic():
                del self._items[sid]
                entry = None
        if entry is None:
            return None
        token, csrf, _ = entry
        if method not in SAFE_METHODS and not (csrf_header and hmac.compare_digest(csrf_header, csrf)):
            raise Forbidden(f"this request is authenticated by the UI's session cookie: send the {CSRF_HEADER} "
                            "header with the value of the margay_csrf cookie")
        return "Bearer " + token


def scope_cookies(scope: dict[str, Any]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for k, v in scope.get("headers") or []:
        if k == b"cookie":
            try:
                jar.load(v.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                return {}
    return {k: m.value for k, m in jar.items()}


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers") or []}
                message["headers"] = [*(message.get("headers") or []),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(response: Response, request: Request, name: str, value: str, *, http_only: bool,
            max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=http_only, samesite="strict",
                        secure=request.url.scheme == "https")


async def sign_in(request: Request) -> Response:
    m = request.app.state.margay
    body = await json_body(request, limit=64 * 1024)
    token = body.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > 16_384:
        raise ParseError("sign in with {\"token\": \"<bearer token>\"}", details={"field": "token"})
    token = token.strip()
    who = m.access.authenticate("Bearer " + token)  # 401 for an unknown token
    response = JSONResponse({"user": who.describe(), "session": True})
    if m.access.enabled:
        sid, csrf = request.app.state.sessions.open(token)
        _cookie(response, request, SESSION_COOKIE, sid, http_only=True, max_age=SESSION_SECONDS)
        _cookie(response, request, CSRF_COOKIE, csrf, http_only=False, max_age=SESSION_SECONDS)
    return response


async def sign_out(request: Request) -> Response:
    sessions: Sessions = request.app.state.sessions
    cookies = request.cookies
    sessions.authorization(request.method, cookies, request.headers.get(CSRF_HEADER))  # CSRF check
    sid = cookies.get(SESSION_COOKIE)
    if sid:
        sessions.close(sid)
    response = JSONResponse({"session": False})
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
    return response


def routes() -> list[Route]:
    return [Route("/ui/session", sign_in, methods=["POST"]), Route("/ui/session", sign_out, methods=["DELETE"])]

def sign_in_page(page: Any, url: str, token: str) -> None:
    """Sign a page's browser context in as the UI does: the token goes to the server, a cookie comes back."""
    r = page.request.post(url.rstrip("/") + "/ui/session", data={"token": token})
    if not r.ok:
        raise RuntimeError(f"sign-in refused: HTTP {r.status} {r.text()[:200]}")
