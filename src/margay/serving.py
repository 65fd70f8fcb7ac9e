"""Serving an ASGI app on a socket: a listening socket on a chosen or free port, and the app under uvicorn in
a background thread (the demo, `margay query --data-dir`, the agent's HTTP side and tests use it)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, *, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{'[' + host + ']' if ':' in host else host}:{port}"


class ServerThread:
    """Runs an ASGI app under uvicorn in a background thread on 127.0.0.1 and a free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 tls: tuple[Path, Path] | None = None) -> None:
        # tls=(certificate, key): serve HTTPS (url starts with https://), as `margay serve --tls-cert-file` does.
        self.sock = bind(host, port)
        self.url = url_of(self.sock, tls=tls is not None)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("margay server thread did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()
