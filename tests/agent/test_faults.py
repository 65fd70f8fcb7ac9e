"""The agent's faults against a real `margay serve`: kill -9 of the agent (30 trials) and of the server
(20 trials) while shipping, rename-and-create rotations faster than rotate_wait, copy-truncate with lines
of the same second, five rotations while the agent is down, timestamped rotation names, and the spool and
the checkpoint on a full filesystem (a small tmpfs). Every line carries its own id; each test reads back
everything the server stored and checks it line by line: 0 lost, 0 duplicated."""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from margay.client import Client
from margay.logtypes import SAMPLES
from margay.testing.agent import AgentProcess, read_all
from margay.testing.server import ServerProcess

FAST = {"MARGAY_AGENT_BATCH_BYTES": "32768", "MARGAY_AGENT_BATCH_AGE": "0.2", "MARGAY_AGENT_POLL_INTERVAL": "0.05",
        "MARGAY_AGENT_ROTATE_WAIT": "1.0", "MARGAY_AGENT_BACKOFF_BASE": "0.05", "MARGAY_AGENT_BACKOFF_MAX": "0.3",
        "MARGAY_AGENT_REQUEST_TIMEOUT": "10", "MARGAY_AGENT_LOG_LEVEL": "warning"}
NOW = int(time.time())
TEMPLATE = orjson.loads(SAMPLES["flows"][0])
TEMPLATE.pop("@timestamp", None)


def flow(i: int, same_second: bool = False) -> bytes:
    """A Felix flow line whose process_id is its id; same_second: every line has the same times."""
    r = dict(TEMPLATE)
    r.update(start_time=NOW - 300 + (0 if same_second else i % 60), end_time=NOW + (0 if same_second else i % 60),
             process_id=str(i))
    return orjson.dumps(r) + b"\n"


def rotate_numbered(p: Path, keep: int = 60) -> None:
    """Felix/logrotate rename rotation: flows.log.N -> flows.log.N+1 ..., flows.log -> flows.log.1."""
    for i in range(keep - 1, 0, -1):
        src = p.with_name(f"{p.name}.{i}")
        if src.exists():
            os.rename(src, p.with_name(f"{p.name}.{i + 1}"))
    os.rename(p, p.with_name(p.name + ".1"))


def stored_ids(url: str, cluster: str) -> Counter[int]:
    with Client(url) as client:
        return Counter(int(r["process_id"]) for r in read_all(client, "flows", NOW - 400, NOW + 400, cluster=cluster))


def assert_exactly_once(url: str, cluster: str, written: int) -> None:
    ids = stored_ids(url, cluster)
    missing = sorted(set(range(written)) - set(ids))
    dupes = sorted(k for k, n in ids.items() if n > 1)
    extra = sorted(set(ids) - set(range(written)))
    assert not missing and not dupes and not extra, \
        f"{written} lines written: missing {missing[:20]} ({len(missing)}), duplicated {dupes[:20]} ({len(dupes)})"


def wait_shipped(agent: AgentProcess, timeout: float = 90) -> dict:  # type: ignore[type-arg]
    """Until everything read is acknowledged and nothing is left to read (or held, or queued)."""
    deadline = time.monotonic() + timeout
    st: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        st = agent.status()
        src = st["sources"]["flows"]
        if st["spool"]["batches"] == 0 and src["unread_bytes"] == 0 and not src.get("held_batches") \
                and not src.get("rotated_files_queued") and not st.get("paused"):
            time.sleep(0.3)
            st = agent.status()
            if st["spool"]["batches"] == 0 and st["sources"]["flows"]["unread_bytes"] == 0:
                return st
        time.sleep(0.2)
    raise AssertionError(f"the agent did not finish shipping in {timeout}s: {st}")


def metric(text: str, name: str, **labels: str) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}\{{{re.escape(sel)}\}} (\S+)$" if labels else rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Writer(threading.Thread):
    """Felix writing flows.log at a steady rate until stopped, rotating by rename every `rotate_every` lines."""

    def __init__(self, path: Path, rate: float, rotate_every: int = 0) -> None:
        super().__init__(daemon=True)
        self.path, self.rate, self.rotate_every = path, rate, rotate_every
        self.written = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            f = self.path.open("ab")
            while not self.halt.is_set():
                i = self.written
                f.write(flow(i))
                f.flush()
                self.written = i + 1
                if self.rotate_every and self.written % self.rotate_every == 0:
                    f.close()
                    rotate_numbered(self.path)
                    f = self.path.open("ab")
                delay = started + self.written / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            f.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


@pytest.fixture(scope="module")
def margay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("faults") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def agent_for(tmp_path: Path, url: str, cluster: str, flows: Path, **env: str) -> AgentProcess:
    return AgentProcess(tmp_path / "state", url, sources={"flows": flows}, env=FAST | env,
                        args=("--cluster", cluster))


def test_kill_9_of_the_agent_30_times_and_of_the_server_20_times_while_shipping(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    flows = logs / "flows.log"
    flows.touch()
    server = ServerProcess(tmp_path / "data").start()
    port = server.url.rsplit(":", 1)[1]
    agent = agent_for(tmp_path, server.url, "crash", flows)
    writer = Writer(flows, rate=400, rotate_every=2500)
    rng = random.Random(24)
    agent_kills = server_kills = 0
    try:
        agent.start()
        writer.start()
        for trial in range(30):
            time.sleep(rng.uniform(0.15, 0.5))
            agent.kill()  # kill -9 of the agent, batches read, spooled, in flight
            agent_kills += 1
            agent.start()
            if trial < 20:
                time.sleep(rng.uniform(0.1, 0.4))
                server.kill()  # kill -9 of the server, mid-request
                server_kills += 1
                server = ServerProcess(tmp_path / "data", "--port", port).start()
        writer.halt.set()
        writer.join(timeout=30)
        assert writer.error is None and writer.written > 10_000
        st = wait_shipped(agent)
        assert st["dropped"] == {}, st
        assert (agent_kills, server_kills) == (30, 20)
        assert_exactly_once(server.url, "crash", writer.written)
        assert metric(agent.metrics(), "margay_agent_records_shipped_total", source="flows", type="flows") > 0
    finally:
        writer.halt.set()
        agent.stop()
        server.stop()


def test_three_rename_rotations_within_rotate_wait_and_copytruncate_of_same_second_lines(
        tmp_path: Path, margay_server: ServerProcess) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    flows = logs / "flows.log"
    agent = agent_for(tmp_path, margay_server.url, "rotate", flows)
    n = 0

    def write(f: object, count: int, same_second: bool = False) -> None:
        nonlocal n
        f.write(b"".join(flow(n + k, same_second) for k in range(count)))  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]
        n += count

    try:
        agent.start()
        f = flows.open("ab")
        write(f, 300)
        time.sleep(1.0)
        for k in range(3):  # three rotations within one rotate_wait (1 s); the last two back to back,
            write(f, 200)  # faster than the agent looks (poll_interval 0.05 s)
            rotate_numbered(flows)
            write(f, 50)  # the writer still appends to the renamed file for a moment
            f.close()
            f = flows.open("ab")
            write(f, 100)
            if k == 0:
                time.sleep(0.1)
        write(f, 200)
        wait_shipped(agent)
        # copytruncate of lines of the same second: the file is copied, truncated and rewritten past the
        # agent's offset before it looks again; their first 64 bytes are all alike.
        write(f, 150, same_second=True)
        wait_shipped(agent)
        write(f, 80, same_second=True)  # not read yet when logrotate copies
        for i in range(59, 0, -1):
            src = flows.with_name(f"flows.log.{i}")
            if src.exists():
                os.rename(src, flows.with_name(f"flows.log.{i + 1}"))
        shutil.copyfile(flows, flows.with_name("flows.log.1"))
        f.truncate(0)
        f.seek(0)
        write(f, 600, same_second=True)
        assert flows.stat().st_size > flows.with_name("flows.log.1").stat().st_size
        f.close()
        st = wait_shipped(agent)
        assert st["dropped"] == {}, st
        assert_exactly_once(margay_server.url, "rotate", n)
    finally:
        agent.stop()


def test_five_rotations_while_the_agent_is_down_then_timestamped_names(
        tmp_path: Path, margay_server: ServerProcess) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    flows = logs / "flows.log"
    agent = agent_for(tmp_path, margay_server.url, "down", flows)
    n = 0

    def write(count: int) -> None:
        nonlocal n
        with flows.open("ab") as f:
            f.write(b"".join(flow(n + k) for k in range(count)))
        n += count

    try:
        write(500)
        agent.start()
        wait_shipped(agent)
        write(120)
        agent.kill()
        write(80)  # written after the kill: the file the checkpoint points into has unread lines
        for _ in range(5):  # five rotations while the agent is down
            rotate_numbered(flows, keep=6)
            write(150)
        agent.start()
        st = wait_shipped(agent)
        assert st["dropped"] == {}, st
        assert_exactly_once(margay_server.url, "down", n)
        # lumberjack's timestamped names (flows-2026-12-05T10-00-00.000.log): while running, twice within
        # rotate_wait, then three times while the agent is down. The numbered files are gone meanwhile.
        for p in logs.glob("flows.log.*"):
            p.unlink()
        stamp = iter(f"2026-12-05T10-{m:02d}-00.{ms:03d}" for m in range(60) for ms in (0, 500))
        for _ in range(2):
            write(100)
            os.rename(flows, logs / f"flows-{next(stamp)}.log")
            write(60)
            time.sleep(0.1)
        wait_shipped(agent)
        write(40)
        agent.kill()
        for _ in range(3):
            write(70)
            os.rename(flows, logs / f"flows-{next(stamp)}.log")
        write(30)
        agent.start()
        st = wait_shipped(agent)
        assert st["dropped"] == {}, st
        assert_exactly_once(margay_server.url, "down", n)
    finally:
        agent.stop()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a filesystem the test can fill up."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): the full-disk test needs one")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path: Path) -> None:
    """Write `path` until the filesystem has no room left."""
    with path.open("wb", buffering=0) as f:
        for block in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


def test_spool_and_checkpoint_on_a_full_filesystem_pause_and_resume(tmp_path: Path, tmpfs: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    flows = logs / "flows.log"
    flows.touch()
    server = ServerProcess(tmp_path / "data").start()
    port = server.url.rsplit(":", 1)[1]
    # batches of 0.2 s of lines (~70 KB) are coalesced up to 256 KiB when the backlog drains
    agent = AgentProcess(tmpfs / "state", server.url, sources={"flows": flows},
                         env=FAST | {"MARGAY_AGENT_BATCH_BYTES": "262144"},
                         args=("--cluster", "full"), log=tmp_path / "agent.log")
    writer = Writer(flows, rate=300)
    try:
        agent.start()
        writer.start()
        time.sleep(1.5)
        server.kill()  # a backlog builds up in the spool ...
        time.sleep(1.5)
        fill(tmpfs / "filler")  # ... and then the disk is full
        deadline = time.monotonic() + 30
        st = agent.status()
        while st["paused"] != {"flows": "disk_full"} and time.monotonic() < deadline:
            time.sleep(0.1)
            st = agent.status()
        assert st["paused"] == {"flows": "disk_full"} and "spool" in st["write_errors"], st
        read_when_full = st["sources"]["flows"]["lines_read"]
        server = ServerProcess(tmp_path / "data", "--port", port).start()  # batches are acked: no checkpoint
        while "checkpoint" not in st["write_errors"] and time.monotonic() < deadline:
            time.sleep(0.1)
            st = agent.status()
        assert "checkpoint" in st["write_errors"], st
        text = agent.metrics()
        assert metric(text, "margay_agent_disk_full", what="checkpoint") == 1.0
        assert metric(text, "margay_agent_reading_paused", reason="disk_full", source="flows") == 1.0
        assert metric(text, "margay_agent_write_errors_total", what="spool") > 0
        time.sleep(1.0)
        st = agent.status()
        assert st["sources"]["flows"]["lines_read"] == read_when_full  # reading stopped: the file is the buffer
        assert agent.proc is not None and agent.proc.poll() is None  # and the agent is alive
        (tmpfs / "filler").unlink()  # room again: the agent goes on by itself
        writer.halt.set()
        writer.join(timeout=30)
        assert writer.error is None
        st = wait_shipped(agent)
        assert st["dropped"] == {} and st["write_errors"] == {} and st["paused"] == {}, st
        assert_exactly_once(server.url, "full", writer.written)
        assert metric(agent.metrics(), "margay_agent_batches_coalesced_total", source="flows") > 0
    finally:
        writer.halt.set()
        agent.stop()
        server.stop()
