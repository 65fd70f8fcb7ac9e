"""Shared plumbing for peer processes: free ports, readiness polling, stopping by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]  # src/margay/rig/process.py -> the repository
RIG_DIR = Path(os.environ.get("MARGAY_RIG_DIR", REPO_ROOT / ".rig"))


class PeerError(RuntimeError):
    """A peer could not be started; the message says what was tried and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, proc: subprocess.Popen[bytes] | None = None,
               what: str = "peer", log: Path | None = None, interval: float = 0.2) -> None:
    """Poll `check` until it is true; fail early if `proc` exits, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerError(f"{what} exited with code {proc.returncode}" + (f"; see {log}" if log else ""))
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet, keep polling
            pass
        time.sleep(interval)
    raise PeerError(f"{what} not ready after {timeout:.0f}s" + (f"; see {log}" if log else ""))


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 30.0) -> None:
    """SIGTERM the process group, then SIGKILL after `timeout` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def spawn(args: list[str], *, log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a peer in its own process group with stdout and stderr going to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "ab")  # noqa: SIM115 - the child keeps it open
    try:
        return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    finally:
        fh.close()
