"""Calico's own index names on /es/, on both engines: write aliases, ILM backing indices, calico_* single indices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.query.es.names import CalicoName, parse
from margay.testing.server import ServerThread

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def flow(i: int, **extra: Any) -> dict[str, Any]:
    return {"start_time": T0 + i, "end_time": T0 + i + 60, "action": "allow", "reporter": "src", "proto": "tcp",
            "source_namespace": "shop", "dest_namespace": "data", "source_name_aggr": "web-*",
            "dest_name_aggr": "db-*", "bytes_in": i, "bytes_out": 0, "packets_in": 1, "packets_out": 1,
            "num_flows": 1, "num_flows_started": 1, "num_flows_completed": 1, **extra}


@pytest.mark.parametrize(("name", "want"), [
    ("tigera_secure_ee_flows.c1.", CalicoName(("flows",), "c1")),
    ("tigera_secure_ee_flows.c1.fluentd-20231114-000001", CalicoName(("flows",), "c1", "20231114")),
    ("tigera_secure_ee_dns.my.cluster.linseed-20240102-000007", CalicoName(("dns",), "my.cluster", "20240102")),
    ("tigera_secure_ee_flows.c1.20231114", CalicoName(("flows",), "c1", "20231114")),
    ("tigera_secure_ee_flows.c1", CalicoName(("flows",), "c1")),
    ("tigera_secure_ee_audit_kube.east.", CalicoName(("audit_kube",), "east")),
    ("calico_flowlogs", CalicoName(("flows",))),
    ("calico_flowlogs_standard", CalicoName(("flows",))),
    ("calico_flowlogs.*", CalicoName(("flows",))),
    ("calico_L7logs", CalicoName(("l7",))),
    ("calico_auditlogs_free", CalicoName(("audit_ee", "audit_kube"))),
    ("calico_alerts_standard", CalicoName(("events",))),
    ("calico_threat_feeds_ip_set", None),
    ("tigera_secure_ee_flows.", None),
    ("something_else", None),
])
def test_parse_calico_index_names(name: str, want: CalicoName | None) -> None:
    assert parse(name) == want


@pytest.fixture
def es(tmp_path: Path, engine: dict[str, Any]) -> Iterator[str]:
    with ServerThread(create_app(Settings(data_dir=tmp_path, **engine))) as s:
        yield s.url


def bulk(url: str, actions: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    body = b"".join(orjson.dumps({"index": {"_index": i}}) + b"\n" + orjson.dumps(d) + b"\n" for i, d in actions)
    r = httpx.post(url + "/es/_bulk", content=body, headers={"content-type": "application/x-ndjson"}, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def hits(url: str, index: str, body: dict[str, Any] | None = None) -> int:
    r = httpx.post(f"{url}/es/{index}/_search", json={"track_total_hits": True, **(body or {})}, timeout=60)
    assert r.status_code == 200, r.text
    return int(r.json()["hits"]["total"]["value"])


def test_calico_write_names_land_in_the_right_cluster(es: str) -> None:
    out = bulk(es, [
        ("tigera_secure_ee_flows.c1.", flow(1)),
        ("tigera_secure_ee_flows.c1.fluentd-20231114-000001", flow(2)),
        ("calico_flowlogs_standard", flow(3, cluster="c2")),
        ("calico_flowlogs", flow(4)),  # a single index needs the document's cluster
        ("calico_auditlogs", flow(5, cluster="c2")),
    ])
    statuses = [next(iter(i.values()))["status"] for i in out["items"]]
    assert statuses == [201, 201, 201, 400, 400]
    reasons = [next(iter(i.values())).get("error", {}).get("reason", "") for i in out["items"]]
    assert '"cluster" field' in reasons[3] and "several log types" in reasons[4]
    indices = httpx.get(es + "/api/v1/indices", timeout=30).json()["items"]
    assert sorted((i["log_type"], i["cluster"], i["day"], i["docs"]) for i in indices) == [
        ("flows", "c1", "20231114", 2), ("flows", "c2", "20231114", 1)]

    assert hits(es, "tigera_secure_ee_flows.c1.") == 2
    assert hits(es, "tigera_secure_ee_flows.c1.fluentd-20231114-000001") == 2
    assert hits(es, "tigera_secure_ee_flows.c2.") == 1
    assert hits(es, "calico_flowlogs*") == 3
    assert hits(es, "calico_flowlogs_standard", {"query": {"term": {"cluster": "c2"}}}) == 1
    assert hits(es, "calico_flowlogs.*,-tigera_secure_ee_flows.c1") == 1
    r = httpx.post(es + "/es/tigera_secure_ee_flows.c9./_search", json={}, timeout=30)
    assert r.status_code == 404 and "no such index" in r.text


# -- what clients ask before they search: cluster health, index existence, the product header --------------

def test_cluster_health_index_exists_and_the_product_header(es: str, opensearch: str) -> None:
    from elasticsearch7 import Elasticsearch
    from opensearchpy import OpenSearch

    bulk(es, [("tigera_secure_ee_flows.c1.", flow(1)), ("tigera_secure_ee_flows.c1.20231115", flow(90_000))])
    health = httpx.get(es + "/es/_cluster/health", timeout=30)
    assert health.status_code == 200 and health.headers["x-elastic-product"] == "Elasticsearch"
    real = httpx.get(opensearch + "/_cluster/health", timeout=30).json()
    assert set(health.json()) == set(real)  # OpenSearch's shape, key for key
    assert health.json()["status"] == "green" and health.json()["active_primary_shards"] == 2
    one = httpx.get(es + "/es/_cluster/health/tigera_secure_ee_flows.c1.20231115", timeout=30).json()
    assert one["active_shards"] == 1
    for client in (Elasticsearch(hosts=[es + "/es"], timeout=30), OpenSearch(hosts=[es + "/es"], timeout=30)):
        try:
            assert client.indices.exists(index="tigera_secure_ee_flows.c1.") is True
            assert client.indices.exists(index="tigera_secure_ee_flows.c1.fluentd-20231114-000001") is True
            assert client.indices.exists(index="tigera_secure_ee_flows.nope") is False
            assert client.indices.exists(index="calico_flowlogs_standard") is True
            assert client.indices.exists(index="calico_dnslogs_standard") is False
            assert client.cluster.health()["status"] == "green"
        finally:
            client.close()
    for path in ("/es/", "/es/_cat/indices", "/es/_search", "/es/nosuch/_search"):
        assert httpx.get(es + path, timeout=30).headers.get("x-elastic-product") == "Elasticsearch", path
