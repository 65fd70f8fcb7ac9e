"""The agent's own HTTP endpoint: status, Prometheus metrics, and the kube-apiserver audit webhook.

The webhook answers 200 only once the EventList is durable in the spool (or already shipped); when the
spool is full it answers 503 so the kube-apiserver retries, and counts the drop. The key of a webhook
batch is a hash of its body, so an EventList the apiserver sends twice is stored once.

Whatever the webhook accepts is shipped under the cluster's writer token, so a post must prove it comes from
the kube-apiserver: with `webhook_token_file` every post carries that token (`Authorization: Bearer`, the
`token` of the apiserver's webhook kubeconfig, sent by it only to an https:// URL: `tls_cert_file`); without
one the webhook is served only when `listen` is a loopback address. Off loopback, `/-/status` leaves out the
server's URL, its last error and file paths unless the caller is local or carries the token. The bodies held
at once are bounded by `max_inflight_body_bytes` (api/budget.py): past it a post is answered 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..api.budget import BodyBudget, BodyBudgetMiddleware
from ..api.common import read_body
from ..errors import ConfigError, MargayError
from ..serving import bind, url_of
from .host import AgentHost

log = logging.getLogger("margay.agent")
MAX_WEBHOOK_BYTES = 64 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    # Retry-After on 503: without it kube-apiserver's webhook client (client-go) does not retry a 503.
    headers = {"retry-after": "2"} if status == 503 else {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"type": "webhook_error", "message": message}}, status_code=status,
                        headers=headers)


def is_loopback(host: str) -> bool:
    """Whether an address (of the listening socket, or of a caller) is a loopback one: 127.0.0.0/8, ::1."""
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


class SecretFile:
    """A token in a file (a mounted Secret): read at start, re-read when its modification time, size or inode
    changes (a Secret's update swaps a symlink). Fails closed: while it cannot be read, or is empty, no token
    matches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = self._stat()
        self._digest: bytes | None = self._read(strict=True)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self, *, strict: bool) -> bytes | None:
        try:
            token = self.path.read_text().strip()
            problem = "" if token else "it is empty"
            if token.upper().startswith("CHANGE-ME"):  # deploy/agent.yaml's placeholder: known to everyone
                token, problem = "", "it still holds the CHANGE-ME placeholder: put a random token in it"
        except (OSError, UnicodeDecodeError) as exc:
            token, problem = "", getattr(exc, "strerror", None) or str(exc)
        if problem:
            if strict:
                raise ConfigError(f"webhook_token_file {self.path}: {problem}")
            log.error("webhook_token_file %s: %s; every webhook post is refused until it is fixed", self.path, problem)
            return None
        return hashlib.sha256(token.encode()).digest()

    def readable(self) -> bool:
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._digest = self._read(strict=False)
                if self._digest is not None:
                    log.info("webhook_token_file %s reloaded", self.path)
            return self._digest is not None

    def matches(self, token: str) -> bool:
        """Constant time: the digests of the token given and of the file's are compared."""
        if not self.readable():
            return False
        with self._lock:
            digest = self._digest
        return digest is not None and hmac.compare_digest(hashlib.sha256(token.encode()).digest(), digest)


def bearer_of(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def webhook_refusal(loopback: bool, token: SecretFile | None, presented: str | None) -> tuple[int, str] | None:
    """None when a webhook post may go on, else (status, message). With a token every post must carry it;
    without one only a loopback listen serves the webhook (any local process could post, but no other host)."""
    if token is None:
        if loopback:
            return None
        return 403, ("the agent's audit webhook listens on a non-loopback address and has no token: set "
                     "webhook_token_file (and give kube-apiserver that token in its webhook kubeconfig), or listen "
                     "on 127.0.0.1")
    if not token.readable():
        return 503, "the agent cannot read its webhook_token_file (see its log); retry later"
    if presented is None:
        return 401, ("the audit webhook needs `Authorization: Bearer <token>`: the token of the agent's "
                     "webhook_token_file, as `users: [{user: {token: ...}}]` of kube-apiserver's webhook "
                     "kubeconfig (sent only to an https:// server)")
    if not token.matches(presented):
        return 401, "the webhook token is not the one in the agent's webhook_token_file"
    return None


REDACTED = ("server", "last_error")


def redact(status: dict[str, Any]) -> dict[str, Any]:
    """/-/status for a caller off loopback without the token: no server URL, last error or file paths."""
    out = {k: v for k, v in status.items() if k not in REDACTED}
    out["sources"] = {name: {k: v for k, v in src.items() if k not in ("path", "checkpoint")}
                      for name, src in status.get("sources", {}).items()}
    out["redacted"] = ("server, last_error, paths and checkpoints are shown to local callers and with the "
                       "webhook token (Authorization: Bearer)")
    return out


def create_app(agent: AgentHost, *, loopback: bool = True) -> Starlette:
    settings = agent.settings
    token = SecretFile(Path(settings.webhook_token_file)) if settings.webhook_token_file else None
    budget = BodyBudget(settings.max_inflight_body_bytes, holder="the agent")
    agent.metrics.gauge("margay_agent_webhook_body_bytes", lambda: [({}, float(budget.used))])
    agent.metrics.gauge("margay_agent_webhook_body_refused_total", lambda: [({}, float(budget.refused))])
    agent.metrics.describe("margay_agent_webhook_body_bytes", "gauge",
                           "Bytes of webhook bodies (as sent and inflated) held now, against max_inflight_body_bytes.")
    agent.metrics.describe("margay_agent_webhook_body_refused_total", "counter",
                           "Webhook posts answered 503 because the bodies held at once were at max_inflight_body_bytes.")
    if settings.webhook and token is None and not loopback:
        log.warning("the audit webhook listens on %s, not a loopback address, and has no webhook_token_file: "
                    "every webhook post is refused (403) until one is set", settings.listen)
    if settings.webhook and token is not None and not loopback and settings.tls_cert_file is None:
        log.warning("webhook_token_file is set but listen is plain HTTP: kube-apiserver sends its webhook token "
                    "only to an https:// URL; set tls_cert_file and tls_key_file")

    def trusted(request: Request) -> bool:
        """May see everything /-/status shows: local callers, or with the webhook token."""
        if loopback or (request.client is not None and is_loopback(request.client.host)):
            return True
        presented = bearer_of(request)
        return token is not None and presented is not None and token.matches(presented)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def status(request: Request) -> Response:
        full = await asyncio.to_thread(agent.status)
        return JSONResponse(full if trusted(request) else redact(full))

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(agent.metrics.render(), media_type="text/plain; version=0.0.4")

    async def webhook(request: Request) -> Response:
        kind = request.path_params.get("kind", "kube")
        if kind not in ("kube", "ee"):
            return _error(404, "use /audit/webhook (kube-apiserver) or /audit/webhook/ee")
        if not settings.webhook:
            return _error(404, "the audit webhook is turned off (webhook: false)")
        refused = webhook_refusal(loopback, token, bearer_of(request))  # before a byte of the body is read
        if refused is not None:
            return _error(*refused)
        try:  # bounded as sent and as inflated (a small gzip body inflated whole first could be gigabytes),
            # and with the other bodies held at once (the budget's Busy is a 503, with Retry-After)
            body = await read_body(request, MAX_WEBHOOK_BYTES)
        except MargayError as exc:
            return _error(exc.status, str(exc))
        try:
            doc: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(doc, dict) or doc.get("kind") != "EventList" or not isinstance(doc.get("items"), list):
            return _error(400, "expected an audit.k8s.io/v1 EventList")
        items = len(doc["items"])
        if not items:
            return JSONResponse({"accepted": 0})
        source = f"webhook_{kind}"
        key = hashlib.sha256(b"\x1f".join([agent.instance.encode(), source.encode(), body])).hexdigest()[:48]
        ok = await asyncio.to_thread(agent.enqueue, source, f"audit_{kind}", body, items, key,
                                     {"key": key, "at": time.time()}, "application/json", None, True)
        if not ok:
            return _error(503, "the agent's spool is full; retry later")
        return JSONResponse({"accepted": items})

    return Starlette(routes=[
        Route("/-/health", health), Route("/-/status", status), Route("/-/metrics", metrics),
        Route("/audit/webhook", webhook, methods=["POST"]),
        Route("/audit/webhook/{kind}", webhook, methods=["POST"]),
    ], middleware=[Middleware(BodyBudgetMiddleware, budget=budget)])


class AgentHTTP:
    """uvicorn serving the agent's app in a background thread."""

    def __init__(self, agent: AgentHost) -> None:
        host, _, port = agent.settings.listen.rpartition(":")
        self.sock = bind(host.strip("[]") or "127.0.0.1", int(port or 0))
        s = agent.settings
        tls = s.tls_cert_file is not None and s.tls_key_file is not None
        if tls:  # loaded here, so a bad pair is one line at start, not a traceback in uvicorn's thread
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(s.tls_cert_file),
                                                                                    str(s.tls_key_file))
            except (ssl.SSLError, OSError) as exc:
                self.sock.close()
                raise ConfigError(f"cannot use tls_cert_file {s.tls_cert_file} with tls_key_file {s.tls_key_file}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        self.url = url_of(self.sock, tls=tls)
        try:
            app = create_app(agent, loopback=is_loopback(self.sock.getsockname()[0]))
        except ConfigError:
            self.sock.close()
            raise
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                ssl_certfile=str(s.tls_cert_file) if tls else None,
                                ssl_keyfile=str(s.tls_key_file) if tls else None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="margay-agent-http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        print(f"agent listening on {self.url}", flush=True)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
