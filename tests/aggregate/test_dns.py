"""DNS aggregation levels 0-1, the per-node limit and the `unlogged` overflow record."""

from __future__ import annotations

from typing import Any

import orjson

from margay.aggregate import DNSLevels, aggregate_dns

BASE: dict[str, Any] = {
    "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:05:00Z", "type": "log", "count": 2,
    "client_ip": "10.0.0.1", "client_name": "web-abc-1", "client_name_aggr": "web-abc-*", "client_namespace": "shop",
    "client_labels": {"app": "web", "pod-template-hash": "abc"}, "qname": "api.example.com", "qtype": "A",
    "qclass": "IN", "rcode": "NoError",
    "rrsets": [{"name": "api.example.com", "type": "A", "class": "IN", "rdata": ["93.184.216.34"]}],
    "servers": [{"ip": "10.96.0.10", "name": "coredns-1", "name_aggr": "coredns-*", "namespace": "kube-system",
                 "labels": {"k8s-app": "kube-dns"}}],
    "latency": {"count": 2, "mean": 100, "max": 150}, "host": "worker-1",
}


def rec(**kw: Any) -> dict[str, Any]:
    return {**BASE, **kw}


def run(records: list[dict[str, Any]], **levels: Any) -> list[dict[str, Any]]:
    result = aggregate_dns(b"\n".join(orjson.dumps(r) for r in records), DNSLevels(**levels))
    return [orjson.loads(line) for line in result.body.splitlines() if line.strip()]


INPUT = [
    rec(),
    rec(client_ip="10.0.0.2", client_name="web-abc-2", count=1, client_labels={"app": "web", "pod-template-hash": "x"},
        latency={"count": 1, "mean": 400, "max": 400}),
    rec(qname="API.example.com", qtype="a", count=3, latency={"count": 3, "mean": 200, "max": 300}),
]


def test_level_0_keeps_clients_apart_and_normalises_the_question() -> None:
    out = run(INPUT, level=0)
    assert len(out) == 2  # the third differs only in case from the first
    assert out[0]["count"] == 5 and out[0]["client_name"] == "web-abc-1"
    assert out[0]["latency"] == {"count": 5, "mean": 160, "max": 300}  # (2*100 + 3*200) / 5


def test_level_1_groups_by_client_prefix() -> None:
    out = run(INPUT, level=1)
    assert len(out) == 1
    o = out[0]
    assert (o["client_name"], o["client_ip"], o["count"]) == ("-", None, 6)
    assert o["client_labels"] == {"app": "web"}
    assert o["latency_mean"] == round((200 + 400 + 600) / 6) and o["latency_max"] == 400
    assert o["start_time"] == "2026-01-01T00:00:00Z" and o["end_time"] == "2026-01-01T00:05:00Z"


def test_per_node_limit_overflows_into_one_unlogged_record() -> None:
    rows = [rec(qname=f"q{i}.example.com", count=i + 1) for i in range(5)]
    rows.append({"start_time": BASE["start_time"], "end_time": BASE["end_time"], "type": "unlogged", "count": 10,
                 "host": "worker-1"})
    out = run(rows, level=1, per_node_limit=2)
    logged = [o for o in out if o["type"] == "log"]
    unlogged = [o for o in out if o["type"] == "unlogged"]
    assert [o["qname"] for o in logged] == ["q0.example.com", "q1.example.com"]
    assert len(unlogged) == 1 and unlogged[0]["count"] == 3 + 4 + 5 + 10
    assert unlogged[0]["qname"] is None and unlogged[0]["host"] == "worker-1"
    assert sum(o["count"] for o in out) == sum(r["count"] for r in rows)


def test_windows_and_hosts_stay_apart() -> None:
    later = rec(start_time="2026-01-01T00:05:00Z", end_time="2026-01-01T00:10:00Z")
    other_host = rec(host="worker-2")
    assert len(run([rec(), later, other_host], level=1)) == 3
    assert len(run([rec(), later], level=1, flush_interval=600)) == 1
