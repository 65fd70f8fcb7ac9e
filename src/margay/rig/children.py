"""Child processes of margay itself, for tests and the benchmark: `margay serve` and `margay agent` started
on loopback ports in their own process groups, stopped by SIGTERM then SIGKILL, or killed (kill -9) as a
crash would."""

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

import httpx

from ..client import Client


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


OFF = ("flows", "dns", "l7", "bird", "bird6", "audit_ee", "audit_kube")  # the agent's sources, off unless named


class AgentProcess(ChildProcess):
    """`python -m margay agent` in its own process group; kill() is kill -9. Unnamed sources are off."""

    stop_timeout = 30.0

    _LISTENING = re.compile(r"agent listening on (https?://\S+)")

    def __init__(self, state_dir: Path, server: str, *, sources: dict[str, Path] | None = None,
                 env: dict[str, str] | None = None, log: Path | None = None, args: tuple[str, ...] = ()) -> None:
        self.state_dir = Path(state_dir)
        self.log = log or self.state_dir.parent / f"{self.state_dir.name}-agent.log"
        paths = {name: "" for name in OFF} | {k: str(v) for k, v in (sources or {}).items()}
        self.args = [sys.executable, "-m", "margay", "agent", "--server", server, "--state-dir", str(state_dir),
                     "--listen", "127.0.0.1:0", "--node", "test-node", *args]
        for name, path in paths.items():
            self.args += ["--" + name.replace("_", "-"), path]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> AgentProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            found = self._LISTENING.findall(text)
            if found:
                self.url = found[-1]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"margay agent exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"margay agent did not come up in {timeout}s; see {self.log}")

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/-/status", timeout=10).json())

    def metrics(self) -> str:
        return httpx.get(self.url + "/-/metrics", timeout=10).text



def read_all(client: Client, log_type: str, start: float, end: float, cluster: str = "cluster",
             page: int = 5000) -> list[dict[str, Any]]:
    """Every stored record of a type in [start, end] (epoch seconds), following after_key."""
    items: list[dict[str, Any]] = []
    body: dict[str, Any] = {"time_range": {"from": start, "to": end}, "max_page_size": page}
    while True:
        result = client.search(log_type, body, [cluster])
        items += result["items"]
        if not result.get("after_key") or not result["items"]:
            return items
        body = {**body, "after_key": result["after_key"]}
