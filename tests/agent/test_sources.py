"""The audit webhook (as a kube-apiserver posts it) and the EKS CloudWatch Logs source (against moto)."""

from __future__ import annotations

import copy
import gzip
import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from margay.agent.runner import Agent
from margay.agent.settings import AgentSettings
from margay.app import create_app
from margay.client import Client
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.agent import AgentProcess, read_all
from margay.testing.server import ServerProcess, ServerThread, bind

NOW = time.time()


def event(i: int, kind: str = "kube") -> dict:
    ev = copy.deepcopy(orjson.loads(SAMPLES["audit_kube" if kind == "kube" else "audit_ee"][0]))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - 60 + i % 50)) + f".{i:06d}Z"
    ev.update(auditID=f"{kind}-{i:06d}", requestReceivedTimestamp=stamp, stageTimestamp=stamp)
    return ev


def eventlist(ids: range, kind: str = "kube") -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
                         "items": [event(i, kind) for i in ids]})


def wait_for(fn, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_audit_webhook_spools_while_the_server_is_down_and_stores_each_event_once(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(json.dumps([{"token": "writer-east", "cluster": "east"},
                                  {"token": "admin", "user": "admin", "groups": ["system:masters"]}]))
    (tmp_path / "token").write_text("writer-east\n")
    port = bind("127.0.0.1", 0)  # a free port the server will take later
    url = f"http://127.0.0.1:{port.getsockname()[1]}"
    port.close()
    env = {"MARGAY_AGENT_BACKOFF_BASE": "0.05", "MARGAY_AGENT_BACKOFF_MAX": "0.3"}
    agent = AgentProcess(tmp_path / "state", url, env=env, args=("--token-file", str(tmp_path / "token"),
                                                                 "--cluster", "east"))
    server = None
    try:
        agent.start()
        hook = agent.url + "/audit/webhook"
        headers = {"content-type": "application/json", "user-agent": "kube-apiserver-admission"}
        bodies = [eventlist(range(n, n + 25)) for n in range(0, 100, 25)]
        for body in bodies:  # the server is down: the agent answers once the batch is durable
            assert httpx.post(hook, content=body, headers=headers, timeout=10).status_code == 200
        # kube-apiserver retries a batch whose answer it missed: the same body, stored once.
        assert httpx.post(hook, content=bodies[1], headers=headers, timeout=10).status_code == 200
        ee = httpx.post(hook + "/ee", content=eventlist(range(5), "ee"), headers=headers, timeout=10)
        assert ee.status_code == 200 and ee.json() == {"accepted": 5}
        bad = httpx.post(hook, content=b'{"kind":"Pod"}', headers=headers, timeout=10)
        assert bad.status_code == 400
        # Bounded as inflated too: 64 KiB of gzip that inflate past 64 MiB were inflated whole, then refused.
        gz = {**headers, "content-encoding": "gzip"}
        bomb = httpx.post(hook, content=gzip.compress(b" " * (65 << 20)), headers=gz, timeout=10)
        assert bomb.status_code == 413 and "limit" in bomb.json()["error"]["message"], bomb.text
        assert httpx.post(hook, content=b"not gzip", headers=gz, timeout=10).status_code == 400
        assert agent.status()["spool"]["batches"] == 6

        server = ServerProcess(tmp_path / "data", "--port", url.rsplit(":", 1)[1], "--tokens", str(tokens),
                               auth=True).start()
        wait_for(lambda: agent.status()["spool"]["batches"] == 0)
        client = Client(server.url, "admin")
        kube = read_all(client, "audit_kube", NOW - 3600, NOW + 3600, cluster="east")
        ids = Counter(r["auditID"] for r in kube)
        assert len(ids) == 100 and set(ids.values()) == {1}
        ee_items = read_all(client, "audit_ee", NOW - 3600, NOW + 3600, cluster="east")
        assert sorted(r["auditID"] for r in ee_items) == [f"ee-{i:06d}" for i in range(5)]
        assert 'margay_agent_records_shipped_total{source="webhook_kube",type="audit_kube"} 100' in agent.metrics()
    finally:
        agent.stop()
        if server is not None:
            server.stop()


@pytest.fixture
def moto_logs():  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


def test_cloudwatch_audit_streams_resume_from_their_saved_position(tmp_path: Path, moto_logs: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(k, v)
    logs = boto3.client("logs", region_name="us-west-2", endpoint_url=moto_logs)
    logs.create_log_group(logGroupName="/aws/eks/prod/cluster")
    streams = ["kube-apiserver-audit-0a1b", "kube-apiserver-audit-9f8e", "kube-apiserver-0a1b"]  # last: not audit
    for s in streams:
        logs.create_log_stream(logGroupName="/aws/eks/prod/cluster", logStreamName=s)

    def put(stream: str, ids: range, **change: str) -> None:
        logs.put_log_events(logGroupName="/aws/eks/prod/cluster", logStreamName=stream, logEvents=[
            {"timestamp": int(NOW * 1000) + i, "message": orjson.dumps({**event(i), **change}).decode()}
            for i in ids])

    put(streams[0], range(0, 40))
    put(streams[1], range(40, 70))
    # Calico's EKS filter (the default) drops reads and what is not logged at RequestResponse level.
    put(streams[1], range(500, 505), verb="get")
    put(streams[1], range(505, 510), level="Metadata")
    put(streams[1], range(510, 512), verb="watch", level="RequestResponse")
    put(streams[2], range(900, 910))
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
kind: MargayAgent
spec:
  flows: ""
  dns: ""
  l7: ""
  bird: ""
  bird6: ""
  auditEe: ""
  auditKube: ""
  listen: ""
  cloudwatchEndpoint: {moto_logs}
---
apiVersion: operator.tigera.io/v1
kind: LogCollector
metadata: {{name: tigera-secure}}
spec:
  additionalSources:
    eksCloudwatchLog:
      groupName: /aws/eks/prod/cluster
      region: us-west-2
      fetchInterval: 0.2
""")
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data"))) as srv, Client(srv.url) as client:
        def run_agent() -> tuple[Agent, threading.Thread]:
            s = AgentSettings.load({"server": srv.url, "state_dir": str(tmp_path / "state")}, environ={},
                                   config=config)
            assert s.cloudwatch_stream_prefix == "kube-apiserver-audit-" and s.cloudwatch_fetch_interval == 0.2
            a = Agent(s)
            t = threading.Thread(target=a.run)
            t.start()
            return a, t

        def stored() -> Counter:
            return Counter(r["auditID"] for r in read_all(client, "audit_kube", NOW - 3600, NOW + 3600))

        agent, thread = run_agent()
        wait_for(lambda: len(stored()) == 70)
        agent.stop()
        thread.join()
        put(streams[0], range(70, 80))  # new events while the agent is away
        agent, thread = run_agent()
        try:
            wait_for(lambda: len(stored()) == 80)
            time.sleep(0.5)  # a few more fetch rounds: nothing may come twice
            ids = stored()
            assert set(ids.values()) == {1} and set(ids) == {f"kube-{i:06d}" for i in range(80)}
        finally:
            agent.stop()
            thread.join()


@pytest.mark.parametrize(("event_change", "kept"), [
    ({}, True), ({"verb": "patch"}, True), ({"verb": "update"}, True), ({"verb": "delete"}, True),
    ({"verb": "get"}, False), ({"verb": "list"}, False), ({"level": "Metadata"}, False),
    ({"level": "Request", "verb": "delete"}, False),
])
def test_calicos_eks_audit_filter(event_change: dict, kept: bool) -> None:
    from margay.agent.cloudwatch import calico_keeps

    assert calico_keeps(orjson.dumps({**event(1), **event_change}).decode()) is kept
    assert calico_keeps("not json") is True  # the server names it; it never vanishes silently


def test_a_cloudwatch_message_is_one_record_whatever_newlines_it_holds(tmp_path: Path, moto_logs: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two events in one message (a newline between them) were kept by the filter (not JSON) and shipped as
    two records; JSON spread over lines is put on one line; one-line messages stay byte for byte."""
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(k, v)
    group, stream = "/aws/eks/nl/cluster", "kube-apiserver-audit-nl"
    logs = boto3.client("logs", region_name="us-west-2", endpoint_url=moto_logs)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    one = orjson.dumps(event(0)).decode()
    messages = [one + "\n", json.dumps(event(1), indent=2),
                orjson.dumps(event(2)).decode() + "\n" + orjson.dumps(event(3)).decode(), "not json\nat all"]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": int(NOW * 1000) + i, "message": m} for i, m in enumerate(messages)])
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data"))) as srv, Client(srv.url) as client:
        s = AgentSettings.load({"server": srv.url, "state_dir": str(tmp_path / "state"), "listen": "",
                                "cloudwatch_group": group, "cloudwatch_region": "us-west-2",
                                "cloudwatch_endpoint": moto_logs, "cloudwatch_fetch_interval": 0.2,
                                **{n: "" for n in ("flows", "dns", "l7", "bird", "bird6", "audit_ee", "audit_kube")}},
                               environ={})
        agent = Agent(s)
        thread = threading.Thread(target=agent.run)
        thread.start()
        try:
            wait_for(lambda: agent.status()["sources"]["cloudwatch"]["records_shipped"] >= 2)
            time.sleep(0.5)
            stored = read_all(client, "audit_kube", NOW - 3600, NOW + 3600)
            assert sorted(r["auditID"] for r in stored) == ["kube-000000", "kube-000001"]
            st = agent.status()
            assert st["sources"]["cloudwatch"]["records_refused"] == 0
            assert st["dropped"] == {"multiline_message": 2}
        finally:
            agent.stop()
            thread.join()


def test_one_line() -> None:
    from margay.agent.cloudwatch import one_line

    line = orjson.dumps(event(0)).decode()
    assert one_line([line, line + "\n", line + "\r\n", "plain text"]) == [line, line, line, "plain text"]
    assert one_line([json.dumps(event(0), indent=2)]) == [line]
    assert one_line([line + "\n" + line, "a\nb"]) == []
