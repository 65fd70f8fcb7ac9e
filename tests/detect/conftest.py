"""Detection fixtures: a store on either engine, and a real HTTP server whose answers tests set."""

from __future__ import annotations

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
    """127.0.0.1:<port 0>; `routes[path] = (status, body, delay_s)`; records request headers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.seen: list[dict[str, str]] = []
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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
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
