"""Shipping answers (bad lines, too large), the bounded spool, host stamping, settings and their docs."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import orjson
import pytest

from margay.agent.runner import Agent, ensure_host
from margay.agent.settings import AgentSettings, documented
from margay.app import create_app
from margay.config import Settings
from margay.errors import ConfigError
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

ROOT = Path(__file__).resolve().parents[2]
OFF = {k: "" for k in ("flows", "dns", "l7", "bird", "bird6", "audit_ee", "audit_kube")}


def settings(tmp_path: Path, server: str, **extra: object) -> AgentSettings:
    flags = {**OFF, "server": server, "state_dir": str(tmp_path / "state"), "listen": "", "node": "n-1",
             "batch_age": 0.05, "poll_interval": 0.02, "backoff_base": 0.02, "backoff_max": 0.1, **extra}
    return AgentSettings.load(flags, environ={})


def run_until(agent: Agent, done, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    t = threading.Thread(target=agent.run)
    t.start()
    try:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done()
    finally:
        agent.stop()
        t.join()


def flows(n: int, start: int = 0) -> bytes:
    now = int(time.time())
    out = []
    for i in range(start, start + n):
        r = orjson.loads(SAMPLES["flows"][1])
        r.update(start_time=now - 60, end_time=now, process_id=str(i))
        r.pop("host", None)
        out.append(orjson.dumps(r))
    return b"\n".join(out) + b"\n"


def test_bad_lines_are_counted_never_resent_and_the_checkpoint_moves(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(flows(3) + b'{"start_time": "soon"}\n' + b"not json\n" + flows(2, 3))
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data"))) as srv:
        agent = Agent(settings(tmp_path, srv.url, flows=str(log)))
        run_until(agent, lambda: agent.sources["flows"].shipped + agent.sources["flows"].refused >= 7)
    st = agent.status()["sources"]["flows"]
    assert (st["records_shipped"], st["records_refused"]) == (5, 2)
    assert st["checkpoint"]["offset"] == log.stat().st_size and len(agent.spool) == 0


def test_a_batch_too_large_for_the_server_is_split(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(flows(40))
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data", max_body_bytes=12_000))) as srv:
        agent = Agent(settings(tmp_path, srv.url, flows=str(log)))
        run_until(agent, lambda: agent.sources["flows"].shipped >= 40)
        assert agent.sources["flows"].refused == 0


def test_a_full_spool_pauses_reading_and_everything_ships_once_there_is_room(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(flows(30))
    hold = socket.socket()  # a port bound, not listening: the server is down
    hold.bind(("127.0.0.1", 0))
    port = hold.getsockname()[1]
    agent = Agent(settings(tmp_path, f"http://127.0.0.1:{port}", flows=str(log), spool_max_bytes=1,
                           batch_bytes=2048))
    t = threading.Thread(target=agent.run)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while (agent.sources["flows"].paused is None or agent.shipper.reachable is not False) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        status = agent.status()
        kept = agent.spool.newest("flows")
        assert status["spool"]["batches"] == 1 and kept is not None  # the first batch always fits
        assert status["paused"] == {"flows": "spool_full"} and status["dropped"] == {}
        assert status["sources"]["flows"]["lines_read"] == kept.lines < 30  # the file is the buffer
        assert 'margay_agent_reading_paused{reason="spool_full",source="flows"} 1' in agent.metrics.render()
        assert status["server_reachable"] is False and "unreachable" in status["last_error"]
        hold.close()
        with ServerThread(create_app(Settings(data_dir=tmp_path / "data")), port=port):
            while agent.sources["flows"].shipped < 30 and time.monotonic() < deadline + 20:
                time.sleep(0.05)
    finally:
        agent.stop()
        t.join()
    status = agent.status()
    assert status["sources"]["flows"]["records_shipped"] == 30 and status["dropped"] == {}
    assert status["paused"] == {} and status["spool"]["batches"] == 0


def test_host_is_stamped_without_parsing_only_where_missing() -> None:
    body = b'{"a":1}\n{"host":"w-1","a":2}\n{}\n'
    assert ensure_host(body, 'n"1') == b'{"a":1,"host":"n\\"1"}\n{"host":"w-1","a":2}\n{"host":"n\\"1"}\n'
    same = b'{"host":"x"}\n'
    assert ensure_host(same, "n") is same
    assert [orjson.loads(x)["host"] for x in ensure_host(flows(3), "n").splitlines()] == ["n"] * 3


def test_settings_precedence_and_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent:\n  server: http://from-file:1\n  batchBytes: 4096\n  cluster: file\n")
    s = AgentSettings.load({"cluster": "flag"}, environ={"MARGAY_AGENT_SERVER": "http://env:2", "NODE_NAME": "k1"},
                           config=cfg)
    assert (s.server, s.batch_bytes, s.cluster, s.node) == ("http://env:2", 4096, "flag", "k1")
    assert "flows" in s.file_sources() and s.file_sources()["bird"][0] == "bgp"
    assert "***" in repr(AgentSettings.load({"token": "sekrit"}, environ={})) and "sekrit" not in repr(
        AgentSettings.load({"token": "sekrit"}, environ={}))
    cfg.write_text("agent:\n  nonsense: 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        AgentSettings.load({}, environ={}, config=cfg)


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "agent.md").read_text()
    missing = [name for name, env, _, _ in documented() if f"`{name}`" not in doc or env not in doc]
    assert not missing, f"settings missing from docs/agent.md: {missing}"


def test_rotated_names_are_checked_at_the_edge() -> None:
    ok = AgentSettings.load({"rotated_names": "{name}.*, {stem}-*{ext}"}, environ={})
    assert ok.rotated_names == "{name}.*, {stem}-*{ext}"
    for bad, says in (("{nam}.*", "may only use"), ("../{name}.*", "own folder"), ("{name}", "other than the log"),
                      ("{0}.*", "may only use")):
        with pytest.raises(ConfigError, match=says):
            AgentSettings.load({"rotated_names": bad}, environ={})
