"""ASGI middleware: every request but /-/health must carry a valid bearer token; the caller goes on request.state."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from ..errors import MargayError
from .guard import Access

OPEN_PATHS = frozenset({"/-/health"})
# The web UI's shell and static files carry no data (its pages call the API with the viewer's token).
UI_PATHS = frozenset({"/", "/ui", "/ui/"})
UI_PREFIX = "/ui/"


class AuthMiddleware:
    def __init__(self, app: Any, access: Access, sessions: Any = None) -> None:
        self.app = app
        self.access = access
        self.sessions = sessions  # the UI's cookie sessions (web/session.py): a token when no header is sent

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = None
        for k, v in scope.get("headers") or []:
            if k == b"authorization":
                header = v.decode("latin-1")
                break
        path = scope.get("path") or ""
        if path in UI_PATHS or path.startswith(UI_PREFIX):
            scope.setdefault("state", {})["identity"] = None
            await self.app(scope, receive, send)
            return
        try:
            if header is None and self.sessions is not None:
                from ..web.session import CSRF_HEADER, scope_cookies

                csrf = next((v.decode("latin-1") for k, v in scope.get("headers") or []
                             if k == CSRF_HEADER.encode()), None)
                header = self.sessions.authorization(scope.get("method", "GET"), scope_cookies(scope), csrf)
            if scope.get("path") in OPEN_PATHS and header is None:
                who = None
            elif self.access.kube is not None:
                who = await asyncio.to_thread(self.access.authenticate, header)
            else:
                who = self.access.authenticate(header)
        except MargayError as exc:
            if scope.get("path") in OPEN_PATHS:
                who = None
            else:
                await _reject(send, exc)
                return
        scope.setdefault("state", {})["identity"] = who
        await self.app(scope, receive, send)


async def _reject(send: Any, exc: MargayError) -> None:
    body = orjson.dumps(exc.envelope())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="margay"'))
    elif exc.status == 503:  # the API server behind TokenReview is unreachable: worth retrying
        headers.append((b"retry-after", b"2"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
