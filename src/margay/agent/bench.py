"""The agent benchmark: a real server and a real `margay agent` process shipping a flows.log.

Live: lines shipped (acknowledged by the server) per second of wall time from the agent's start over a
pre-written file; CPU is the agent process's own user+system seconds (wait4), and its peak RSS (VmHWM).

Drain: the server is down for `outage` seconds while Felix writes at `rate` lines/s (the agent spools them
in the small batches `batch_age` makes); then the server starts. Measured: the reconnect time (server up
to the first ack: the agent's retry backoff), the drain rate (lines acked per second from the first ack
to the last), compared with the live rate, and the rate including the reconnect time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from ..logtypes import SAMPLES


def _flow_lines(start: int, count: int, now: int, templates: list[dict[str, Any]]) -> bytes:
    out = []
    for i in range(start, start + count):
        r = dict(templates[i % len(templates)])
        r.update(start_time=now - 300 + i % 300, end_time=now + i % 300, bytes_in=i, process_id=str(i))
        out.append(orjson.dumps(r))
    return b"\n".join(out) + b"\n"


def write_flows(path: Path, lines: int, now: int) -> int:
    """A flows.log of `lines` distinct real-looking records; returns its size in bytes."""
    templates = [orjson.loads(s) for s in SAMPLES["flows"]]
    with path.open("wb") as f:
        for start in range(0, lines, 10_000):
            f.write(_flow_lines(start, min(10_000, lines - start), now, templates))
    return path.stat().st_size


def _stop(agent: Any) -> tuple[float, float]:
    """SIGTERM the agent; (its CPU seconds from wait4, its peak RSS in MiB). The peak is the process's VmHWM
    read just before: wait4's ru_maxrss would keep the forking parent's size across exec."""
    from ..bench.harness import peak_rss_mib

    assert agent.proc is not None
    rss = peak_rss_mib(agent.proc.pid)
    os.killpg(agent.proc.pid, signal.SIGTERM)
    _, _, usage = os.wait4(agent.proc.pid, 0)
    agent.proc.returncode = 0
    return usage.ru_utime + usage.ru_stime, rss


def _wait_shipped(agent: Any, lines: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    shipped = 0.0
    while time.monotonic() < deadline:
        src = agent.status()["sources"]["flows"]
        shipped = src["records_shipped"] + src["records_refused"]
        if shipped >= lines:
            break
        time.sleep(0.05)
    return float(shipped)


def bench(lines: int = 200_000, work_dir: Path | None = None, batch_bytes: int = 4 * 1024 * 1024,
          senders: int = 2, timeout: float = 600.0, outage: float = 0.0, rate: float = 1000.0) -> dict[str, Any]:
    """Ship `lines` flow records through a real agent to a real server; with `outage` > 0, also the drain
    of what `rate` lines/s for `outage` seconds left in the spool. Measured, never assumed."""
    from ..bench.harness import cpu_seconds
    from ..rig.children import AgentProcess, ServerProcess

    env = {"MARGAY_AGENT_BATCH_BYTES": str(batch_bytes), "MARGAY_AGENT_SENDERS": str(senders),
           "MARGAY_AGENT_BATCH_AGE": "0.2", "MARGAY_AGENT_POLL_INTERVAL": "0.05", "MARGAY_AGENT_LOG_LEVEL": "warning",
           "MARGAY_AGENT_BACKOFF_MAX": "1.0"}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        flows = root / "logs" / "flows.log"
        size = write_flows(flows, lines, int(time.time()))
        server = ServerProcess(root / "data").start()
        agent = AgentProcess(root / "state", server.url, sources={"flows": flows}, env=env)
        try:
            assert server.proc is not None
            server_cpu0 = cpu_seconds(server.proc.pid)
            started = time.perf_counter()
            agent.start()
            shipped = _wait_shipped(agent, lines, timeout)
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
            cpu, rss = _stop(agent)
        finally:
            agent.kill()
            server.stop()
        out: dict[str, Any] = {
            "agent_lines": lines,
            "agent_records_shipped": int(shipped),
            "agent_bytes": size,
            "agent_seconds": round(elapsed, 3),
            "agent_lines_per_s": round(shipped / elapsed, 1) if elapsed else 0.0,
            "agent_mb_per_s": round(size / elapsed / 1e6, 2) if elapsed else 0.0,
            "agent_cpu_s": round(cpu, 3),
            "agent_cpu_s_per_10k_flows": round(cpu / shipped * 10_000, 4) if shipped else None,
            "agent_lines_per_cpu_s": round(shipped / cpu, 1) if cpu else None,
            "agent_rss_peak_mib": round(rss, 1),
            # The server's CPU over the same time: the wall time above is the agent's and the server's work.
            "agent_server_cpu_s": round(server_cpu, 3),
        }
        if outage > 0:
            out.update(drain(root / "drain", outage, rate, env, timeout))
            live = out["agent_lines_per_s"]
            out["agent_drain_vs_live"] = round(out["agent_drain_lines_per_s"] / live, 2) if live else None
    return out


def drain(root: Path, outage: float, rate: float, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """The server down for `outage` s while lines are written at `rate`/s; then the drain is timed."""
    from ..rig.children import AgentProcess, ServerProcess

    (root / "logs").mkdir(parents=True)
    flows = root / "logs" / "flows.log"
    flows.touch()
    with socket.socket() as s:  # a port for the server that is not up yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = AgentProcess(root / "state", f"http://127.0.0.1:{port}", sources={"flows": flows}, env=env)
    templates = [orjson.loads(s) for s in SAMPLES["flows"]]
    now = int(time.time())
    written = 0
    server = None
    try:
        agent.start()
        began = time.monotonic()
        with flows.open("ab") as f:
            while time.monotonic() - began < outage:
                due = int((time.monotonic() - began) * rate)
                if due > written:
                    f.write(_flow_lines(written, due - written, now, templates))
                    f.flush()
                    written = due
                time.sleep(0.01)
        deadline = time.monotonic() + 30
        st = agent.status()
        while st["sources"]["flows"]["lines_read"] < written and time.monotonic() < deadline:
            time.sleep(0.1)
            st = agent.status()
        spooled = st["spool"]["batches"]
        spool_bytes = st["spool"]["bytes"]
        server = ServerProcess(root / "data", "--port", str(port)).start()
        started = time.perf_counter()
        first_at, first = started, 0.0
        while time.perf_counter() - started < timeout:  # the first ack: the agent noticed the server is back
            src = agent.status()["sources"]["flows"]
            first = float(src["records_shipped"] + src["records_refused"])
            if first > 0:
                first_at = time.perf_counter()
                break
            time.sleep(0.01)
        shipped = _wait_shipped(agent, written, timeout)
        ended = time.perf_counter()
        elapsed = ended - started
        requests = sum(float(v) for v in re.findall(r'^margay_agent_batches_total\{[^}]*\} (\S+)$',
                                                     agent.metrics(), re.M))
        cpu, rss = _stop(agent)
    finally:
        agent.kill()
        if server is not None:
            server.stop()
    return {
        "agent_outage_s": outage,
        "agent_outage_lines": written,
        "agent_outage_spooled_batches": spooled,
        "agent_outage_spool_mib": round(spool_bytes / 2**20, 2),
        "agent_drain_records_shipped": int(shipped),
        "agent_drain_requests": int(requests),
        "agent_drain_seconds": round(elapsed, 3),
        "agent_drain_reconnect_s": round(first_at - started, 3),
        "agent_drain_lines_per_s_incl_reconnect": round(shipped / elapsed, 1) if elapsed else 0.0,
        # From the first ack on; when that one ack carried the whole backlog, over the whole drain instead.
        "agent_drain_lines_per_s": (round((shipped - first) / (ended - first_at), 1)
                                    if shipped > first and ended > first_at else
                                    round(shipped / elapsed, 1) if elapsed else 0.0),
        "agent_drain_rss_peak_mib": round(rss, 1),
        "agent_drain_cpu_s": round(cpu, 3),
    }
