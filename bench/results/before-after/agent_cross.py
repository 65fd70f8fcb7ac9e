"""Cross A/B: agent of version A against server of version B (PYTHONPATH picks each child's code)."""
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from margay.agent.bench import write_flows
from margay.bench.harness import cpu_seconds
from margay.rig.children import AgentProcess, ServerProcess

SRC = {"old": "/tmp/old959/src", "new": "/work/wt-misc/src"}
agent_v, server_v, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = {"MARGAY_AGENT_BATCH_BYTES": str(4*1024*1024), "MARGAY_AGENT_SENDERS": "2",
       "MARGAY_AGENT_BATCH_AGE": "0.2", "MARGAY_AGENT_POLL_INTERVAL": "0.05", "MARGAY_AGENT_LOG_LEVEL": "warning"}
with tempfile.TemporaryDirectory(dir="/tmp/mab") as tmp:
    root = Path(tmp); (root/"logs").mkdir()
    flows = root/"logs"/"flows.log"
    write_flows(flows, N, int(time.time()))
    server = ServerProcess(root/"data", env={"PYTHONPATH": SRC[server_v]}).start()
    agent = AgentProcess(root/"state", server.url, sources={"flows": flows}, env={**env, "PYTHONPATH": SRC[agent_v]})
    try:
        s0 = cpu_seconds(server.proc.pid)
        t0 = time.perf_counter()
        agent.start()
        t_up = time.perf_counter() - t0
        while time.perf_counter()-t0 < 300:
            src = agent.status()["sources"]["flows"]
            if src["records_shipped"] >= N: break
            time.sleep(0.05)
        wall = time.perf_counter()-t0
        scpu = cpu_seconds(server.proc.pid) - s0
        os.killpg(agent.proc.pid, signal.SIGTERM); _, _, u = os.wait4(agent.proc.pid, 0); agent.proc.returncode = 0
        print(json.dumps({"agent": agent_v, "server": server_v, "lines": N, "wall_s": round(wall, 3), "agent_up_s": round(t_up, 3),
                          "agent_cpu_s": round(u.ru_utime + u.ru_stime, 3), "server_cpu_s": round(scpu, 2), "load": os.getloadavg()[0]}))
    finally:
        agent.kill(); server.stop()
