"""A real margay server for tests, tools and the CLI: in a thread, or as a separate process."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..serving import ServerThread, bind, url_of


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



__all__ = ["ChildProcess", "ServerProcess", "ServerThread", "bind", "url_of"]
