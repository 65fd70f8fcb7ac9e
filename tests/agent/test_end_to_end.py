"""The agent and the server as real processes: steady writes, both kinds of rotation, partial lines, the
server killed and restarted, the agent killed with -9 and restarted. Every line arrives exactly once, and
the lines of each file arrive in order."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from margay.client import Client
from margay.logtypes import SAMPLES
from margay.testing.agent import AgentProcess, read_all
from margay.testing.server import ServerProcess

FAST = {"MARGAY_AGENT_BATCH_BYTES": "32768", "MARGAY_AGENT_BATCH_AGE": "0.2", "MARGAY_AGENT_POLL_INTERVAL": "0.05",
        "MARGAY_AGENT_ROTATE_WAIT": "0.3", "MARGAY_AGENT_BACKOFF_BASE": "0.05", "MARGAY_AGENT_BACKOFF_MAX": "0.5",
        "MARGAY_AGENT_REQUEST_TIMEOUT": "10"}


def flow_line(i: int, now: int) -> bytes:
    r = orjson.loads(SAMPLES["flows"][0])
    r.update(start_time=now - 300 + i % 60, end_time=now + i % 60, process_id=str(i))
    r.pop("@timestamp", None)
    return orjson.dumps(r) + b"\n"


def bird_line(i: int, when: datetime) -> bytes:
    return f"{when.strftime('%Y-%m-%dT%H:%M:%S')}.{i % 100000:05d} bird: Mesh_10_0_0_{i}: State changed to up\n".encode()


class Writer(threading.Thread):
    """Felix and BIRD at a steady rate; rotates flows.log by rename, then by copy-truncate."""

    def __init__(self, flows: Path, bird: Path, lines: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.flows, self.bird, self.lines, self.rate = flows, bird, lines, rate
        self.now = int(time.time())
        self.written = 0

    def run(self) -> None:
        started = time.monotonic()
        f = self.flows.open("ab")
        b = self.bird.open("ab")
        for i in range(self.lines):
            line = flow_line(i, self.now)
            if i % 7 == 3:  # a line written in two parts: the agent must not ship the first half alone
                f.write(line[:50])
                f.flush()
                time.sleep(0.01)
                f.write(line[50:])
            else:
                f.write(line)
            f.flush()
            if i % 10 == 0:
                b.write(bird_line(i // 10, datetime.now(UTC)))
                b.flush()
            if i == self.lines // 3:  # rotation by rename, as Felix does
                f.close()
                os.rename(self.flows, self.flows.with_name("flows.log.1"))
                f = self.flows.open("ab")
                b.close()
                os.rename(self.bird, self.bird.with_name("@4000000065.s"))
                b = self.bird.open("ab")
            if i == 2 * self.lines // 3:  # copytruncate, as logrotate does
                os.rename(self.flows.with_name("flows.log.1"), self.flows.with_name("flows.log.2"))
                shutil.copyfile(self.flows, self.flows.with_name("flows.log.1"))
                f.truncate(0)
                f.seek(0)
            self.written = i + 1
            delay = started + (i + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        f.close()
        b.close()


def test_every_line_once_and_in_order_through_crashes_and_rotations(tmp_path: Path) -> None:
    logs = tmp_path / "calico"
    (logs / "flowlogs").mkdir(parents=True)
    (logs / "bird").mkdir()
    flows, bird = logs / "flowlogs" / "flows.log", logs / "bird" / "current"
    flows.touch()
    server = ServerProcess(tmp_path / "data").start()
    port = server.url.rsplit(":", 1)[1]
    agent = AgentProcess(tmp_path / "state", server.url, sources={"flows": flows, "bird": bird}, env=FAST)
    writer = Writer(flows, bird, lines=3000, rate=300.0)
    try:
        agent.start()
        writer.start()
        time.sleep(2.5)
        server.kill()  # the server dies (kill -9) while batches are in flight
        time.sleep(2.0)
        server = ServerProcess(tmp_path / "data", "--port", port).start()
        time.sleep(1.5)
        agent.kill()  # the agent dies (kill -9) mid-stream, with batches read but not acknowledged
        time.sleep(0.7)
        agent.start()
        writer.join(timeout=60)
        assert writer.written == 3000

        client = Client(server.url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = agent.status()
            if st["sources"]["flows"]["pending_batches"] == 0 and st["spool"]["batches"] == 0 \
                    and st["sources"]["flows"]["unread_bytes"] == 0 and st["sources"]["bird"]["unread_bytes"] == 0:
                break
            time.sleep(0.3)
        time.sleep(0.5)
        st = agent.status()
        assert st["dropped"] == {}, st

        items = read_all(client, "flows", writer.now - 400, writer.now + 400)
        ids = Counter(int(r["process_id"]) for r in items)
        missing = sorted(set(range(3000)) - set(ids))
        dupes = sorted(k for k, n in ids.items() if n > 1)
        assert not missing and not dupes, f"missing {missing[:20]} ({len(missing)}), duplicated {dupes[:20]}"
        assert all(r["host"] == "test-node" for r in items) is False  # Felix's host is kept ...
        assert {r["host"] for r in items} == {"worker-2"}  # ... as written
        # In order per file: the ingest time never goes backwards along the file.
        by_line = sorted(items, key=lambda r: int(r["process_id"]))
        times = [r["generated_time"] for r in by_line]
        assert times == sorted(times)

        bgp = read_all(client, "bgp", writer.now - 400, time.time() + 60)
        messages = Counter(r["message"] for r in bgp)
        assert len(messages) == 300 and set(messages.values()) == {1}
        assert {r["host"] for r in bgp} == {"test-node"} and {r["ip_version"] for r in bgp} == {"IPv4"}
        assert "margay_agent_records_shipped_total" in agent.metrics()
    finally:
        agent.stop()
        server.stop()
