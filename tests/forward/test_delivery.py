"""Every store delivers every stored record of every configured type, parseable, split by type and cluster."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.testing.server import ServerThread

from .conftest import (
    KINDS,
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

pytestmark = pytest.mark.rig


ALL = ["Flows", "DNS", "Audit", "IDSEvents", "BGP", "WAF"]  # WAF logs forward like any log type


def _run(tmp: Path, stores: dict, engine: dict | None = None, kinds: tuple[str, ...] = KINDS) -> tuple:
    tag = "-" + uuid.uuid4().hex[:6]
    app = create_app(Settings(data_dir=tmp / "data", config=write_config(tmp / "margay.yaml", stores),
                              **(engine or {})))
    server = ServerThread(app).__enter__()
    sent = feed(server.url, tag, kinds=kinds)
    wait_for(lambda: caught_up(app), timeout=60)
    return app, server, tag, sent


def _expected(app) -> Counter:
    return Counter({(t, c, i): 1 for (t, c), ids in stored_ids(app.state.margay.backend).items() for i in ids})


def test_s3_archives_every_record(s3, s3_bucket, tmp_path, engine):
    app, server, _, sent = _run(tmp_path, {"s3": s3_store(s3, s3_bucket, tmp_path, logTypes=ALL)}, engine,
                                kinds=(*KINDS, "waf"))
    try:
        got = Counter((t, c, r["id"]) for t, c, r in s3_records(s3.client(), s3_bucket))
        assert got == _expected(app)
        assert {t for t, _, _ in got} == {"flows", "dns", "audit_ee", "audit_kube", "bgp", "events",
                                          *(["waf"] if sent["waf"] else [])}
        assert all(r["cluster"] == c for _, c, r in s3_records(s3.client(), s3_bucket))
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
        assert all(k.startswith("archive/margay/") and k.endswith(".ndjson.gz") for k in keys)
        days = {k.split("/")[4] for k in keys}
        assert days == {"20260301", "20260302"}  # the records' own UTC days
        metrics = httpx.get(server.url + "/-/metrics").text
        assert 'margay_forward_delivered_records_total{store="s3",type="flows"} ' + str(sent["flows"]) in metrics
        assert 'margay_forward_lag_records{store="s3"} 0' in metrics
    finally:
        server.stop()


def test_syslog_tcp_delivers_rfc5424(rsyslog, tmp_path, engine):
    app, server, tag, _ = _run(tmp_path, {"syslog": syslog_store(rsyslog.tcp_port, logTypes=ALL)}, engine,
                               kinds=(*KINDS, "waf"))
    try:
        want = _expected(app)
        def arrived() -> Counter:
            recs = syslog_records([m for m in rsyslog.read_messages() if tag in m])
            return Counter((t, r["cluster"], r["id"]) for t, _, r in recs)
        assert wait_for(lambda: (got := arrived()) == want and got, timeout=20) == want
        line = next(m for m in rsyslog.read_messages() if tag in m and " flows " in m)
        assert line.startswith("<14>1 ") and " tigera_secure - flows - {" in line
        host = line.split(" ")[2]
        assert host.startswith("cluster") or host.startswith("app-cluster") or host != "-"
    finally:
        server.stop()


def test_syslog_tls_and_truncation(rsyslog, tmp_path):
    store = syslog_store(rsyslog.tls_port, encryption="TLS", caFile=str(rsyslog.ca_file), packetSize=400,
                         logTypes=["Audit"])
    before = len(rsyslog.read_messages())  # the cluster name (the tag) is cut off: count what is new
    app, server, tag, sent = _run(tmp_path, {"syslog": store})
    try:
        n = sent["audit_ee"] + sent["audit_kube"]
        wait_for(lambda: len(rsyslog.read_messages()) - before >= n, timeout=20)
        lines = rsyslog.read_messages()[before:]
        assert len(lines) == n and all(len(m.encode()) <= 400 for m in lines)
        assert app.state.margay.forwarding.status()[0]["truncated"] == n  # audit events are longer than 400 bytes
        assert 'margay_forward_truncated_total{store="syslog"} ' + str(n) in httpx.get(server.url + "/-/metrics").text
    finally:
        server.stop()


def test_splunk_hec_events(hec, tmp_path, engine):
    app, server, tag, _ = _run(tmp_path, {"splunk": hec_store(hec, tmp_path, logTypes=ALL)}, engine,
                               kinds=(*KINDS, "waf"))
    try:
        want = _expected(app)
        def mine() -> list:
            return [e for e in hec.read_events() if isinstance(e["event"], dict) and
                    str(e["event"].get("cluster", "")).endswith(tag)]
        wait_for(lambda: len(mine()) >= sum(want.values()), timeout=20)
        events = mine()
        types = {"tigera_secure_ee_" + t: t for t in ("flows", "dns", "audit_ee", "audit_kube", "bgp", "events",
                                                      "waf")}
        got = Counter((types[e["source"]], e["event"]["cluster"], e["event"]["id"]) for e in events)
        assert got == want
        flows = [e for e in events if e["source"] == "tigera_secure_ee_flows"]
        assert {e["sourcetype"] for e in flows} == {"calico:flows"}
        assert all(e["host"] == e["event"]["host"] and e["time"] == e["event"]["end_time"] for e in flows)
    finally:
        server.stop()


def test_selector_and_dropped_fields(hec, tmp_path):
    store = hec_store(hec, tmp_path, logTypes=["Flows"], selector='action = "deny"', dropFields=["policies", "labels"])
    app, server, tag, _ = _run(tmp_path, {"splunk": store})
    try:
        want = [r for r in app.state.margay.backend.records_after(__import__("margay.logtypes").logtypes.REGISTRY["flows"],
                                                                   0, 10**6) if r["action"] == "deny"]
        assert want
        def mine() -> list:
            return [e["event"] for e in hec.read_events() if isinstance(e["event"], dict)
                    and str(e["event"].get("cluster", "")).endswith(tag)]
        wait_for(lambda: len(mine()) >= len(want), timeout=20)
        got = mine()
        assert sorted(e["id"] for e in got) == sorted(r["id"] for r in want)
        assert all(e["action"] == "deny" and "policies" not in e and "labels" not in e for e in got)
    finally:
        server.stop()
