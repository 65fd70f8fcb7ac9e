"""The UI's session: the bearer token lives on the server, the browser holds an HttpOnly cookie naming it.

Sign-in (`POST /ui/session` with `{"token": ...}`) checks the token like any API call, keeps it under a
random session id and sets two cookies, both `SameSite=Strict`: `margay_session` (HttpOnly, so no page
script can read it) and `margay_csrf` (readable, so the UI's own script can echo it). A request
authenticated by the cookie must echo the CSRF value in `x-csrf-token` unless it is a GET or HEAD
(double submit: another site can make the browser send the cookies, but cannot read them to set the
header). API clients keep sending `Authorization: Bearer`; a header always wins over the cookie.
Sign-in itself is guarded against login CSRF (another site signing the browser in as its own user): it
takes only `Content-Type: application/json` (an HTML form cannot send it) and refuses a request whose
`Sec-Fetch-Site` is cross-site or same-site, or whose `Origin` is not the server's own. Cluster (writer)
tokens cannot sign in. Sessions are bounded per identity (its oldest dropped) and in all; a full table
refuses new sign-ins (503) rather than ending anyone else's session.
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
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..api.common import JSONResponse, json_body
from ..errors import ConfigError, Forbidden, MargayError, ParseError, UnsupportedMediaType

SESSION_COOKIE = "margay_session"
CSRF_COOKIE = "margay_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000  # in all: past it, a new sign-in is refused (503), no live session is dropped
MAX_SESSIONS_PER_IDENTITY = 50  # per user: past it, that user's oldest session ends
FULL_RETRY_SECONDS = 60
COOKIE_SECURE = ("auto", "always", "never")
SESSION_SECONDS = 12 * 3600
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


class SessionsFull(MargayError):
    status = 503
    type = "sessions_full"


class Sessions:
    """Signed-in browsers: session id -> (token, csrf, expiry, owner). At most `per_identity` sessions per
    owner (a new one ends that owner's oldest) and `max_sessions` in all (expired ones are dropped first;
    then a new sign-in is refused with SessionsFull, never another owner's session ended for it)."""

    def __init__(self, *, max_sessions: int = MAX_SESSIONS, per_identity: int = MAX_SESSIONS_PER_IDENTITY,
                 ttl: float = SESSION_SECONDS, cookie_secure: str = "auto") -> None:
        if cookie_secure not in COOKIE_SECURE:
            raise ConfigError(f"cookie_secure: expected one of {', '.join(COOKIE_SECURE)}, got {cookie_secure!r}")
        self._items: OrderedDict[str, tuple[str, str, float, str]] = OrderedDict()  # oldest (first to expire) first
        self._owned: dict[str, OrderedDict[str, None]] = {}
        self._lock = threading.Lock()
        self.max_sessions = max_sessions
        self.per_identity = per_identity
        self.ttl = ttl
        self.cookie_secure = cookie_secure

    def __len__(self) -> int:
        return len(self._items)

    def open(self, token: str, owner: str) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            while self._items:  # expired sessions first: every session lives ttl, so they lead the order
                first, entry = next(iter(self._items.items()))
                if entry[2] >= now:
                    break
                self._drop(first)
            mine = self._owned.get(owner)
            while mine and len(mine) >= self.per_identity:
                self._drop(next(iter(mine)))
                mine = self._owned.get(owner)
            if len(self._items) >= self.max_sessions:
                raise SessionsFull(f"the server holds its limit of {self.max_sessions} UI sessions; sign in "
                                   "again later (API clients are not affected: send Authorization: Bearer)")
            self._items[sid] = (token, csrf, now + self.ttl, owner)
            self._owned.setdefault(owner, OrderedDict())[sid] = None
        return sid, csrf

    def _drop(self, sid: str) -> None:
        """Forget one session (the lock held)."""
        entry = self._items.pop(sid, None)
        if entry is None:
            return
        mine = self._owned.get(entry[3])
        if mine is not None:
            mine.pop(sid, None)
            if not mine:
                del self._owned[entry[3]]

    def close(self, sid: str) -> None:
        with self._lock:
            self._drop(sid)

    def authorization(self, method: str, cookies: dict[str, str], csrf_header: str | None) -> str | None:
        """`Bearer <token>` of the cookie's session (None without a live session); Forbidden when a
        state-changing request does not echo the session's CSRF value."""
        sid = cookies.get(SESSION_COOKIE)
        if not sid:
            return None
        with self._lock:
            entry = self._items.get(sid)
            if entry is not None and entry[2] < time.monotonic():
                self._drop(sid)
                entry = None
        if entry is None:
            return None
        token, csrf, _, _ = entry
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
                        secure=_secure(request))


def _secure(request: Request) -> bool:
    """cookie_secure: always, never, or auto: when the request came over https (behind a TLS-terminating
    proxy that is what uvicorn's trusted X-Forwarded-Proto says; else set cookie_secure: always)."""
    mode = request.app.state.sessions.cookie_secure
    return bool(mode == "always" or (mode == "auto" and request.url.scheme == "https"))


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


def same_origin(request: Request, origin: str) -> bool:
    """Whether an Origin header names this server: its scheme (the request's, or what X-Forwarded-Proto says:
    a cross-site form cannot set that header), the Host header's name and port (a missing port the
    scheme's default)."""
    host = request.headers.get("host", "")
    try:
        o, h = urlsplit(origin.strip()), urlsplit("//" + host.strip())
        o_port, h_port = o.port, h.port
    except ValueError:
        return False
    schemes = {request.url.scheme, request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()}
    if o.scheme not in schemes or o.scheme not in ("http", "https") or not o.hostname or o.hostname != h.hostname:
        return False
    default = _default_port(o.scheme)
    return (o_port or default) == (h_port or default) and not (o.path or o.query or o.username)


def check_sign_in_request(request: Request) -> None:
    """Login CSRF guard: JSON only (an HTML form cannot send application/json), and not from another site."""
    fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        raise Forbidden(f"sign-in is refused from another site (Sec-Fetch-Site: {fetch_site})")
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(request, origin):
        raise Forbidden("sign-in is refused from another origin (Origin is not this server's)")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType("sign in with Content-Type: application/json")


async def sign_in(request: Request) -> Response:
    m = request.app.state.margay
    check_sign_in_request(request)
    body = await json_body(request, limit=64 * 1024)
    token = body.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > 16_384:
        raise ParseError("sign in with {\"token\": \"<bearer token>\"}", details={"field": "token"})
    token = token.strip()
    who = m.access.authenticate("Bearer " + token)  # 401 for an unknown token
    if who.is_writer:
        raise Forbidden("cluster (writer) tokens send logs; they cannot sign in to the UI")
    response = JSONResponse({"user": who.describe(), "session": True})
    if m.access.enabled:
        try:
            sid, csrf = request.app.state.sessions.open(token, who.describe())
        except SessionsFull as exc:
            return JSONResponse(exc.envelope(), status_code=exc.status,
                                headers={"retry-after": str(FULL_RETRY_SECONDS)})
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
        response.delete_cookie(name, path="/", samesite="strict", secure=_secure(request))
    return response


def routes() -> list[Route]:
    return [Route("/ui/session", sign_in, methods=["POST"]), Route("/ui/session", sign_out, methods=["DELETE"])]

def sign_in_page(page: Any, url: str, token: str) -> None:
    """Sign a page's browser context in as the UI does: the token goes to the server, a cookie comes back."""
    r = page.request.post(url.rstrip("/") + "/ui/session", data={"token": token})
    if not r.ok:
        raise RuntimeError(f"sign-in refused: HTTP {r.status} {r.text()[:200]}")
