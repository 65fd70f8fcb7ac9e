"""The agent's own HTTP endpoint: status, Prometheus metrics, and the kube-apiserver audit webhook.

The webhook answers 200 only once the EventList is durable in the spool (or already shipped); when the
spool is full it answers 503 so the kube-apiserver retries, and counts the drop. The key of a webhook
batch is a hash of its body, so an EventList the apiserver sends twice is stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..api.common import read_body
from ..errors import MargayError
from ..serving import bind, url_of
from .host import AgentHost

log = logging.getLogger("margay.agent")
MAX_WEBHOOK_BYTES = 64 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    # Retry-After on 503: without it kube-apiserver's webhook client (client-go) does not retry a 503.
    return JSONResponse({"error": {"type": "webhook_error", "message": message}}, status_code=status,
                        headers={"retry-after": "2"} if status == 503 else None)


def create_app(agent: AgentHost) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def status(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(agent.status))

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(agent.metrics.render(), media_type="text/plain; version=0.0.4")

    async def webhook(request: Request) -> Response:
        kind = request.path_params.get("kind", "kube")
        if kind not in ("kube", "ee"):
            return _error(404, "use /audit/webhook (kube-apiserver) or /audit/webhook/ee")
        if not agent.settings.webhook:
            return _error(404, "the audit webhook is turned off (webhook: false)")
        try:  # bounded as sent and as inflated (a small gzip body inflated whole first could be gigabytes)
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
    ])


class AgentHTTP:
    """uvicorn serving the agent's app in a background thread."""

    def __init__(self, agent: AgentHost) -> None:
        host, _, port = agent.settings.listen.rpartition(":")
        self.sock = bind(host.strip("[]") or "127.0.0.1", int(port or 0))
        self.url = url_of(self.sock)
        config = uvicorn.Config(create_app(agent), log_level="warning", access_log=False, lifespan="off")
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
