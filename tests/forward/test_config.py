"""LogCollector parsing: Calico's fields, margay's additions, and errors that name the field."""

from __future__ import annotations

import threading

import pytest
import yaml

from margay.app import create_app
from margay.config import Settings
from margay.errors import ConfigError
from margay.forward import from_documents
from margay.forward.forwarder import drop_fields
from margay.logtypes import REGISTRY
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb.combiner import GROUP_BELOW


def _doc(stores):
    return [{"apiVersion": "operator.tigera.io/v1", "kind": "LogCollector", "spec": {"additionalStores": stores}}]


@pytest.fixture
def files(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "key-id").write_text("AK")
    (creds / "key-secret").write_text("SK")
    token = tmp_path / "token"
    token.write_text("abc\n")
    return {"creds": str(creds), "token": str(token)}


def test_full_configuration(files):
    stores = from_documents([{"kind": "LogStorage", "spec": {}}, *_doc({
        "s3": {"region": "eu-west-1", "bucketName": "b", "bucketPath": "/logs/", "credentialsFile": files["creds"],
               "endpoint": "http://minio:9000", "pathStyle": True},
        "syslog": {"endpoint": "udp://10.0.0.1:514", "logTypes": ["Audit", "IDSEvents", "BGP", "l7"],
                   "packetSize": 2048, "selector": 'cluster != "test"', "dropFields": ["requestObject"]},
        "splunk": {"endpoint": "https://splunk:8088", "tokenFile": files["token"], "index": "calico",
                   "perType": {"DNS": {"index": "dns", "sourcetype": "calico:dns"}}},
    })])
    s3, syslog, splunk = stores
    assert [t.name for t in s3.types] == ["flows", "dns", "audit_ee", "audit_kube", "l7"]
    assert s3.options["path"] == "logs" and s3.options["key_id"] == "AK" and s3.options["path_style"]
    assert [t.name for t in syslog.types] == ["audit_ee", "audit_kube", "events", "bgp", "l7"]
    assert syslog.options["protocol"] == "udp" and syslog.options["packet_size"] == 2048
    assert splunk.options["url"] == "https://splunk:8088/services/collector/event" and splunk.options["token"] == "abc"
    assert splunk.options["meta"]["dns"] == {"index": "dns", "sourcetype": "calico:dns", "source": "tigera_secure_ee_dns"}
    assert splunk.options["meta"]["flows"]["index"] == "calico"


@pytest.mark.parametrize(("stores", "field"), [
    ({"s3": {"bucketName": "b"}}, "spec.additionalStores.s3.region"),
    ({"s3": {"region": "r", "bucketName": "b", "credentialsFile": "/nope"}}, "spec.additionalStores.s3.credentialsFile"),
    ({"syslog": {"endpoint": "tcp://h:514"}}, "spec.additionalStores.syslog.logTypes"),
    ({"syslog": {"endpoint": "http://h:514", "logTypes": ["DNS"]}}, "spec.additionalStores.syslog.endpoint"),
    ({"syslog": {"endpoint": "tcp://h:514", "logTypes": ["Nope"]}}, "spec.additionalStores.syslog.logTypes[0]"),
    ({"syslog": {"endpoint": "udp://h:514", "logTypes": ["DNS"], "encryption": "TLS"}},
     "spec.additionalStores.syslog.encryption"),
    ({"syslog": {"endpoint": "tcp://h:514", "logTypes": ["DNS"], "packetSize": "big"}},
     "spec.additionalStores.syslog.packetSize"),
    ({"syslog": {"endpoint": "tcp://h:514", "logTypes": ["DNS"], "selector": "qname = "}},
     "spec.additionalStores.syslog.selector"),
    ({"syslog": {"endpoint": "tcp://h:514", "logTypes": ["DNS"], "colour": "red"}}, "spec.additionalStores.syslog.colour"),
    ({"splunk": {"endpoint": "https://s:8088"}}, "spec.additionalStores.splunk.tokenFile"),
    ({"kafka": {}}, "spec.additionalStores.kafka"),
])
def test_errors_name_the_field(stores, field, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("SPLUNK_HEC_TOKEN", raising=False)
    with pytest.raises(ConfigError) as err:
        from_documents(_doc(stores))
    assert field in err.value.message and err.value.details == {"field": field}


def test_bad_config_fails_at_start_up(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(_doc({"syslog": {"endpoint": "tcp://h:1", "logTypes": ["DNS"], "batchSize": 0}})))
    with pytest.raises(ConfigError, match=r"syslog\.batchSize"):
        create_app(Settings(data_dir=tmp_path / "data", config=path))


def test_drop_fields_reaches_into_objects():
    rec = {"a": 1, "user": {"name": "x", "uid": "u"}, "b": None}
    drop_fields(rec, ["a", "user.uid", "missing.deep"])
    assert rec == {"user": {"name": "x"}, "b": None}


def test_safe_watermark_holds_back_in_flight_batches(tmp_path):
    """A batch that reserved lower seqs but commits later is never skipped by a reader following _seq."""
    backend = DuckDBBackend(tmp_path / "data", compact_interval=3600)
    lt = REGISTRY["dns"]
    samples = __import__("margay.logtypes").logtypes.SAMPLES["dns"]
    body = "\n".join(samples).encode()
    # The first batch is large (small batches of one log type are group-committed one group at a time, so a
    # small one would queue behind it, and a group commits before it answers); the second, small, commits
    # while the first is still in flight.
    first_body = "\n".join(samples[i % len(samples)] for i in range(GROUP_BELOW)).encode()
    try:
        gate, entered = threading.Event(), threading.Event()

        def slow(conv):
            entered.set()
            gate.wait(10)
            return {"succeeded": conv.succeeded}

        from datetime import UTC, datetime

        now = datetime.now(UTC)
        first = threading.Thread(target=backend.ingest, args=(lt, "c", first_body),
                                 kwargs={"key": None, "now": now, "respond": slow})
        first.start()
        entered.wait(10)
        backend.ingest(lt, "c", body, key=None, now=now, respond=lambda c: {"succeeded": c.succeeded})
        # The second batch is committed, but the first (lower seqs) is still in flight: nothing is readable.
        assert backend.records_after(lt, 0, 1000) == []
        gate.set()
        first.join(10)
        seqs = [r["_seq"] for r in backend.records_after(lt, 0, 2 * GROUP_BELOW)]
        assert seqs == sorted(seqs) and len(seqs) == first_body.count(b"\n") + body.count(b"\n") + 2
        assert backend.safe_seq() == backend.head_seq()
        assert backend.backlog(lt, seqs[2])[0] == len(seqs) - 3
    finally:
        backend.close()
