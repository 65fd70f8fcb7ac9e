"""The agent benchmark: a real server and a real `margay agent` process shipping a flows.log.

Throughput is lines shipped (acknowledged by the server) per second of wall time from the agent's start;
CPU is the agent process's own user+system seconds (from wait4), per 10,000 flow records shipped.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from ..logtypes import SAMPLES


def write_flows(path: Path, lines: int, now: int) -> int:
    """A flows.log of `lines` distinct real-looking records; returns its size in bytes."""
    templates = [orjson.loads(s) for s in SAMPLES["flows"]]
    with path.open("wb") as f:
        for i in range(lines):
            r = dict(templates[i % len(templates)])
            r.update(start_time=now - 300 + i % 300, end_time=now + i % 300, bytes_in=i, process_id=str(i))
            f.write(orjson.dumps(r) + b"\n")
    return path.stat().st_size


def bench(lines: int = 200_000, work_dir: Path | None = None, batch_bytes: int = 4 * 1024 * 1024,
          senders: int = 2, timeout: float = 600.0) -> dict[str, Any]:
    """Ship `lines` flow records through a real agent to a real server; measured, never assumed."""
    from ..testing.agent import AgentProcess
    from ..testing.server import ServerProcess

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        flows = root / "logs" / "flows.log"
        size = write_flows(flows, lines, int(time.time()))
        server = ServerProcess(root / "data").start()
        env = {"MARGAY_AGENT_BATCH_BYTES": str(batch_bytes), "MARGAY_AGENT_SENDERS": str(senders),
               "MARGAY_AGENT_BATCH_AGE": "0.2", "MARGAY_AGENT_POLL_INTERVAL": "0.05", "MARGAY_AGENT_LOG_LEVEL": "warning"}
        agent = AgentProcess(root / "state", server.url, sources={"flows": flows}, env=env)
        try:
            started = time.perf_counter()
            agent.start()
            shipped = 0.0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                src = agent.status()["sources"]["flows"]
                shipped = src["records_shipped"]
                if shipped + src["records_refused"] >= lines:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            assert agent.proc is not None
            os.killpg(agent.proc.pid, signal.SIGTERM)
            _, _, usage = os.wait4(agent.proc.pid, 0)
            agent.proc.returncode = 0
            cpu = usage.ru_utime + usage.ru_stime
        finally:
            agent.kill()
            server.stop()
    return {
        "agent_lines": lines,
        "agent_records_shipped": int(shipped),
        "agent_bytes": size,
        "agent_seconds": round(elapsed, 3),
        "agent_lines_per_s": round(shipped / elapsed, 1) if elapsed else 0.0,
        "agent_mb_per_s": round(size / elapsed / 1e6, 2) if elapsed else 0.0,
        "agent_cpu_s": round(cpu, 3),
        "agent_cpu_s_per_10k_flows": round(cpu / shipped * 10_000, 4) if shipped else None,
    }
