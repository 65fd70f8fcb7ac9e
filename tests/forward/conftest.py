"""Helpers for the forwarding tests: LogCollector files for the rig's peers, simulated traffic, read-backs."""

from __future__ import annotations

import gzip
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from margay.simulate import Topology
from margay.simulate.feed import post_to_server

END = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # spans two UTC days
START = END - timedelta(hours=6)
KINDS = ("flows", "dns", "audit_ee", "audit_kube", "bgp", "events")
FAST = {"retryInitial": 0.05, "retryMax": 0.4, "timeout": 2, "flushInterval": 0}


def topology(tag: str = "") -> Topology:
    """Two clusters; a tag makes their names unique, so records in a shared peer's output can be told apart."""
    return Topology.build(5, clusters=[f"cluster{tag}", f"app-cluster-1{tag}"], namespaces_per_cluster=2,
                          deployments_per_namespace=2, nodes_per_cluster=2)


def feed(url: str, tag: str = "", start: datetime = START, end: datetime = END, kinds: tuple[str, ...] = KINDS,
         batch_size: int = 500) -> dict[str, int]:
    return post_to_server(url, topology(tag), start, end, kinds=kinds, batch_size=batch_size, interval=600)


def write_config(path: Path, stores: dict[str, Any]) -> Path:
    docs = [{"apiVersion": "operator.tigera.io/v1", "kind": "LogStorage", "metadata": {"name": "tigera-secure"},
             "spec": {}},
            {"apiVersion": "operator.tigera.io/v1", "kind": "LogCollector", "metadata": {"name": "tigera-secure"},
             "spec": {"additionalStores": stores}}]
    path.write_text(yaml.safe_dump_all(docs))
    return path


def s3_store(s3: Any, bucket: str, tmp: Path, **extra: Any) -> dict[str, Any]:
    creds = tmp / "s3-creds.yaml"
    creds.write_text(f"key-id: {s3.access_key}\nkey-secret: {s3.secret_key}\n")
    return {"region": s3.region, "bucketName": bucket, "bucketPath": "archive/margay", "endpoint": s3.endpoint,
            "pathStyle": True, "credentialsFile": str(creds),
            "logTypes": ["Flows", "DNS", "Audit", "IDSEvents", "BGP"], **FAST, **extra}


def hec_store(hec: Any, tmp: Path, **extra: Any) -> dict[str, Any]:
    token = tmp / "hec-token"
    token.write_text(hec.token)
    return {"endpoint": hec.url, "tokenFile": str(token), "logTypes": ["Flows", "DNS", "Audit", "IDSEvents", "BGP"],
            "perType": {"Flows": {"sourcetype": "calico:flows"}}, **FAST, **extra}


def syslog_store(port: int, **extra: Any) -> dict[str, Any]:
    return {"endpoint": f"tcp://127.0.0.1:{port}", "packetSize": 65536,
            "logTypes": ["Flows", "DNS", "Audit", "IDSEvents", "BGP"], **FAST, **extra}


def stored_counts(backend: Any) -> Counter[tuple[str, str]]:
    """(type, cluster) -> records the store holds."""
    c: Counter[tuple[str, str]] = Counter()
    for p in backend.partitions():
        c[(p.log_type, p.cluster)] += p.docs
    return c


def stored_ids(backend: Any) -> dict[tuple[str, str], set[str]]:
    """(type, cluster) -> identities of every stored record (the rendered `id`)."""
    from margay.logtypes import REGISTRY

    out: dict[tuple[str, str], set[str]] = {}
    for name, lt in REGISTRY.items():
        pos, upto = 0, backend.head_seq()
        while page := backend.records_after(lt, pos, 10_000, upto=upto):
            for r in page:
                out.setdefault((name, r["cluster"]), set()).add(r["id"])
            pos = page[-1]["_seq"]
    return out


def s3_records(client: Any, bucket: str, prefix: str = "archive/margay") -> list[tuple[str, str, dict[str, Any]]]:
    """(type, cluster, record) of every archived record, from the keys' type/cluster folders."""
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"][len(prefix) + 1:].split("/")
            data = gzip.decompress(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            for line in data.splitlines():
                out.append((parts[0], parts[1], orjson.loads(line)))
    return out


def syslog_records(lines: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(type from MSGID, hostname, record) of each RFC 5424 line that margay sent."""
    out = []
    for line in lines:
        if "tigera_secure" not in line:
            continue
        head, _, body = line.partition(" - {")
        fields = head.split(" ")
        out.append((fields[5], fields[2], orjson.loads("{" + body)))
    return out


def wait_for(check: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s (last: {value!r})")
        time.sleep(interval)


def lag(app: Any) -> int:
    m = app.state.margay
    return sum(f.lag_records for f in m.forwarding.forwarders)


def caught_up(app: Any) -> bool:
    """Every forwarder has delivered every stored record of its types (nothing after its cursor): the same
    question on both engines, whether positions are counters (embedded) or clock-based (OpenSearch)."""
    m = app.state.margay
    return all(m.backend.backlog(lt, f.cursor.get(lt.name) or 0, where=f.config.where(lt))[0] == 0
               for f in m.forwarding.forwarders for lt in f.config.types)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
