"""Detection fixtures: a store on either engine, and a real HTTP server whose answers tests set."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from margay.app import _backend
from margay.clock import FakeClock
from margay.config import Settings


class FeedServer:
    """127.0.0.1:<port 0> (or `host`:`port`, over TLS with `tls`); `routes[path] = (status, body, delay_s)`;
    records request headers, and the TLS server names (SNI) clients sent."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.seen: list[dict[str, str]] = []
        self.server_names: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append(dict(self.headers))
                status, body, delay = outer.routes.get(self.path, (404, b"no such feed", 0.0))
                if delay:
                    time.sleep(delay)  # a slow peer, not a test waiting
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.httpd = Server((host, port), Handler)
        self.port = self.httpd.server_address[1]
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: outer.server_names.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if tls else 'http'}://{shown}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    s = FeedServer()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))


@pytest.fixture
def store(engine: dict[str, Any], tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    backend = _backend(Settings(data_dir=tmp_path / "data", **engine), clock)
    yield backend
    backend.close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Made-up DNS: `fake_dns[name] = [answer, answer, ...]`, one answer (a list of addresses) per lookup of `name`,
    the last one repeated; a DNS server that answers differently each time (rebinding). Other hosts resolve
    as usual."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,  # noqa: A002
                    flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, family, type, proto, flags)
        queue = answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [info for a in addresses for info in real(a, port, family, type, proto, flags | socket.AI_NUMERICHOST)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers
