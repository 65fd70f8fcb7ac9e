"""A real margay server for tests, tools and the CLI: in a thread, or as a separate process."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
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


class ChildProcess:
    """A child process in its own process group: stop() is SIGTERM then SIGKILL, kill() is kill -9."""

    proc: subprocess.Popen[bytes] | None = None
    stop_timeout: float = 60.0

    def start(self) -> Any:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ServerProcess(ChildProcess):
    """`margay serve` as its own process (for crash tests and benchmarks); kill() is kill -9."""

    _LISTENING = re.compile(r"listening on (https?://\S+)")

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None,
                 log: Path | None = None, auth: bool = False, ca_file: Path | None = None) -> None:
        # auth=False runs with --no-auth (allowed: it binds 127.0.0.1); auth=True keeps `margay serve`'s
        # default (a generated admin token, in .token after start) unless args give --tokens/--kubeconfig.
        self.data_dir = Path(data_dir)
        self.auth = auth
        self.ca_file = ca_file  # the CA that signed --tls-cert-file, to health-check an https server
        self.token: str | None = None
        self.args = [sys.executable, "-m", "margay", "serve", "--data-dir", str(data_dir), "--host",
                     "127.0.0.1", "--port", "0", *args, *([] if auth else ["--no-auth"])]
        self.env = {**os.environ, **(env or {})}
        self.log = log or self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> ServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            found = self._LISTENING.findall(text)
            if found and self._healthy(found[-1], self.ca_file):
                self.url = found[-1]
                token_file = self.data_dir / "admin-token"
                if self.auth and token_file.exists():
                    self.token = token_file.read_text().strip()
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"margay serve exited with {self.proc.returncode}; see {self.log}:\n{text[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"margay serve did not come up in {timeout}s; see {self.log}")

    @staticmethod
    def _healthy(url: str, ca_file: Path | None = None) -> bool:
        import httpx

        try:
            verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
            return httpx.get(url + "/-/health", timeout=2, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

