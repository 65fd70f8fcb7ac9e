"""Test helpers for the agent: `margay agent` as its own process, and reading back everything stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ..client import Client
from .server import ChildProcess

OFF = ("flows", "dns", "l7", "bird", "bird6", "audit_ee", "audit_kube")


class AgentProcess(ChildProcess):
    """`python -m margay agent` in its own process group; kill() is kill -9. Unnamed sources are off."""

    stop_timeout = 30.0

    _LISTENING = re.compile(r"agent listening on (http://\S+)")

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
