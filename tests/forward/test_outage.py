"""Outages: a destination down for many retry periods, and margay killed with -9 mid-delivery.

Stated guarantees checked here: zero records lost; duplicates at most one batch per interruption
(`batchSize`); ingest while a destination is down at least 2/3 as fast as with it up (plus 1 s slack
for the shared 2-core machine).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

import margay.rig.hec as hec_mod
import margay.rig.rsyslog as rsyslog_mod
import margay.rig.s3 as s3_mod
from conftest import engine_args
from margay.app import create_app
from margay.config import Settings
from margay.rig.hec import HecReceiver
from margay.rig.rsyslog import RsyslogServer
from margay.rig.s3 import S3Server
from margay.store.duckdb import DuckDBBackend
from margay.store.opensearch import OpenSearchBackend
from margay.testing.server import ServerProcess, ServerThread

from .conftest import (
    END,
    caught_up,
    feed,
    hec_store,
    s3_records,
    s3_store,
    stored_ids,
    syslog_records,
    syslog_store,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.rig, pytest.mark.slow]
BATCH = 200
H = 3600


class Destination:
    """One store's own peer, which a test can stop and start again on the same ports."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.tmp = kind, tmp
        self.saved: list[Any] = []  # HEC: events read before a restart (start() clears its output)
        self.peer: Any = {"s3": S3Server, "syslog": RsyslogServer, "splunk": HecReceiver}[kind]()
        self.peer.start(tmp / kind)
        self.bucket = self.peer.new_bucket() if kind == "s3" else ""

    def store(self) -> dict[str, Any]:
        extra = {"batchSize": BATCH}
        if self.kind == "s3":
            return s3_store(self.peer, self.bucket, self.tmp, **extra)
        if self.kind == "syslog":
            return syslog_store(self.peer.tcp_port, **extra)
        return hec_store(self.peer, self.tmp, **extra)

    def stop(self) -> None:
        self.peer.stop()
        if self.kind == "splunk":
            self.saved += self.peer.read_events()

    def restart(self, monkeypatch: pytest.MonkeyPatch) -> None:
        p = self.peer
        if self.kind == "s3":
            ports = iter(p.ports.values())
            monkeypatch.setattr(s3_mod, "free_port_pair", lambda taken: next(ports))
        elif self.kind == "syslog":
            tcp = iter([p.tcp_port, p.tls_port])
            monkeypatch.setattr(rsyslog_mod, "free_port", lambda: next(tcp))
            monkeypatch.setattr(rsyslog_mod, "free_udp_port", lambda: p.udp_port)
        else:
            port = p.port
            monkeypatch.setattr(hec_mod, "free_port", lambda: port)
        p.start(self.tmp / self.kind)
        monkeypatch.undo()

    def received(self, tag: str) -> Counter[tuple[str, str, str]]:
        """(type, cluster, id) of every record of this test that arrived, with multiplicity."""
        if self.kind == "s3":
            return Counter((t, c, r["id"]) for t, c, r in s3_records(self.peer.client(), self.bucket))
        if self.kind == "syslog":
            recs = syslog_records([m for m in self.peer.read_messages() if tag in m])
            return Counter((t, r["cluster"], r["id"]) for t, _, r in recs)
        events = self.saved + self.peer.read_events()
        return Counter((e["source"].removeprefix("tigera_secure_ee_"), e["event"]["cluster"], e["event"]["id"])
                       for e in events if isinstance(e["event"], dict) and str(e["event"].get("cluster")).endswith(tag))

    def close(self) -> None:
        self.peer.stop()


def _check(received: Counter, expected: dict[tuple[str, str], set[str]], dup_bound: int) -> None:
    want = {(t, c, i) for (t, c), ids in expected.items() for i in ids}
    missing = want - set(received)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]}"
    assert set(received) <= want
    dups = sum(n - 1 for n in received.values())
    assert dups <= dup_bound, f"{dups} duplicates, more than {dup_bound}"


@pytest.mark.parametrize("kind", ["s3", "syslog", "splunk"])
def test_destination_outage_loses_nothing(kind, tmp_path, monkeypatch):
    dest = Destination(kind, tmp_path)
    tag = "-" + uuid.uuid4().hex[:6]
    app = create_app(Settings(data_dir=tmp_path / "data", config=write_config(tmp_path / "m.yaml", {kind: dest.store()})))
    try:
        with ServerThread(app) as server:
            fwd = app.state.margay.forwarding.forwarders[0]
            t0 = time.perf_counter()
            feed(server.url, tag, END - timedelta_h(6), END - timedelta_h(4))
            up = time.perf_counter() - t0
            wait_for(lambda: caught_up(app), timeout=60)

            dest.stop()
            t0 = time.perf_counter()
            feed(server.url, tag, END - timedelta_h(4), END - timedelta_h(2))
            down = time.perf_counter() - t0
            retried = wait_for(lambda: fwd.status()["retried"] >= 5 and fwd.status()["retried"], timeout=30)
            time.sleep(1.0)  # still down, several more retry periods (retryMax 0.4 s)
            assert fwd.status()["lag_records"] > 0 and fwd.status()["last_error"]
            assert fwd.status()["retried"] > retried
            metrics = httpx.get(server.url + "/-/metrics").text
            assert f'margay_forward_retries_total{{store="{kind}"}}' in metrics

            dest.restart(monkeypatch)
            feed(server.url, tag, END - timedelta_h(2), END)
            wait_for(lambda: caught_up(app), timeout=60)
            assert down <= up * 1.5 + 1.0, f"ingest took {down:.2f}s with {kind} down vs {up:.2f}s up"
            expected = stored_ids(app.state.margay.backend)
            wait_for(lambda: sum(1 for _ in dest.received(tag)) >= sum(len(v) for v in expected.values()), timeout=20)
            _check(dest.received(tag), expected, BATCH)
    finally:
        dest.close()


def timedelta_h(hours: float) -> Any:
    from datetime import timedelta

    return timedelta(hours=hours)


def test_kill_9_mid_delivery_resumes_from_cursor(hec, tmp_path, engine):
    tag = "-" + uuid.uuid4().hex[:6]
    store = hec_store(hec, tmp_path, batchSize=50)
    config = write_config(tmp_path / "m.yaml", {"splunk": store})
    data = tmp_path / "data"
    args = ["--config", str(config), *engine_args(engine)]
    server = ServerProcess(data, *args).start()
    try:
        feed(server.url, tag, END - timedelta_h(6), END - timedelta_h(3))

        def delivered() -> float:
            text = httpx.get(server.url + "/-/metrics").text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("margay_forward_delivered_records_total{"))
        wait_for(lambda: delivered() >= 100, timeout=30, interval=0.01)
        server.kill()  # mid-delivery: thousands of records are stored, a few hundred sent
        cursor = (data / "forward" / "splunk.cursor.json").read_bytes()
        assert cursor
        server = ServerProcess(data, *args).start()
        feed(server.url, tag, END - timedelta_h(3), END)

        def lag() -> float:
            text = httpx.get(server.url + "/-/metrics").text
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("margay_forward_lag_records{"))
        time.sleep(1.2)
        wait_for(lambda: lag() == 0, timeout=60, interval=0.2)
    finally:
        server.stop()
    backend: Any = (DuckDBBackend(data, compact_interval=3600) if engine["backend"] == "duckdb" else
                    OpenSearchBackend(engine["opensearch_url"], prefix=engine["opensearch_prefix"]))
    try:
        expected = stored_ids(backend)
    finally:
        backend.close()

    def received() -> Counter:
        return Counter((e["source"].removeprefix("tigera_secure_ee_"), e["event"]["cluster"], e["event"]["id"])
                       for e in hec.read_events() if isinstance(e["event"], dict)
                       and str(e["event"].get("cluster")).endswith(tag))
    wait_for(lambda: len(received()) >= sum(len(v) for v in expected.values()), timeout=20)
    _check(received(), expected, 50)
