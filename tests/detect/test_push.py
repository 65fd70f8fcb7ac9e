"""Push feeds through Linseed's threat-feed endpoints on both engines: the IPSet and DomainNameSet bulk, list
and delete over a real server with RBAC, and a GlobalThreatFeed without `pull` matched from what was pushed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.detect.push import DOMAINS, IPSET, tombstones, unwrap
from margay.detect.resources import parse_resource
from margay.detect.scheduler import Detector
from margay.testing.server import ServerThread

from .test_matching import DNS, FLOWS, dns, events, flow, put, respond, settle

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
TOKENS = [{"token": "tok-pusher-0123456789abcdef", "cluster": "c1"},
          {"token": "tok-reader-0123456789abcdef", "user": "reader"},
          {"token": "tok-other-0123456789abcdef", "user": "other"}]
RBAC = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "feeds"},
         "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["*"],
                    "resourceNames": ["threatfeeds_ipset", "threatfeeds_domainnameset"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "feeds"},
         "subjects": [{"kind": "User", "name": "reader"}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "feeds"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "flows"},
         "rules": [{"apiGroups": ["lma.tigera.io"], "resources": ["*"], "resourceNames": ["flows"],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "flows"},
         "subjects": [{"kind": "User", "name": "other"}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flows"}}]
PUSHER = {"Authorization": "Bearer tok-pusher-0123456789abcdef"}
READER = {"Authorization": "Bearer tok-reader-0123456789abcdef", "x-cluster-id": "c1"}
OTHER = {"Authorization": "Bearer tok-other-0123456789abcdef", "x-cluster-id": "c1"}
ND = {"Content-Type": "application/x-ndjson"}


def ndjson(docs: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in docs)


@pytest.fixture
def srv(tmp_path: Path, engine: dict[str, Any]) -> Iterator[httpx.Client]:
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump(TOKENS))
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    settings = Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml",
                        detect_interval=3600, **engine)
    with ServerThread(create_app(settings, clock=FakeClock(NOW))) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_linseed_threat_feed_endpoints(srv: httpx.Client) -> None:
    created = "2026-12-05T11:00:00Z"
    body = ndjson([{"id": "feodo", "data": {"created_at": created, "ips": ["185.220.101.4", "198.51.100.0/24"]}},
                   {"id": "tor", "seq_number": None, "primary_term": None,
                    "data": {"created_at": created, "ips": ["203.0.113.9"], "cluster": "ignored"}}])
    r = srv.post("/api/v1/threatfeeds/ipset/bulk", content=body, headers={**PUSHER, **ND})
    assert r.status_code == 200 and r.json()["succeeded"] == 2 and r.json()["failed"] == 0, r.text
    r = srv.post("/api/v1/threatfeeds/domainnameset/bulk", headers={**PUSHER, **ND}, content=ndjson(
        [{"id": "phish", "data": {"created_at": created, "domains": ["evil.example", "*.bad.example"]}}]))
    assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text
    # a line that is not a document is named; the good one is stored (Linseed's 200 with errors)
    r = srv.post("/api/v1/threatfeeds/ipset/bulk", headers={**PUSHER, **ND},
                 content=b'{"id": "x", "data": {"ips": ["1.2.3.4"]}}\nnot json')
    assert r.status_code == 400 and {e["line"] for e in r.json()["errors"]} == {1, 2}, r.text

    r = srv.post("/api/v1/threatfeeds/ipset", json={}, headers=READER)
    assert r.status_code == 200, r.text
    got = {i["id"]: i["data"] for i in r.json()["items"]}
    assert sorted(got) == ["feodo", "tor"] and got["feodo"]["ips"] == ["185.220.101.4", "198.51.100.0/24"]
    assert got["tor"]["cluster"] == "c1" and got["feodo"]["created_at"].startswith("2026-12-05T11:00:00")
    r = srv.post("/api/v1/threatfeeds/ipset", json={"id": "tor"}, headers=READER)
    assert [i["id"] for i in r.json()["items"]] == ["tor"]
    r = srv.post("/api/v1/threatfeeds/domainnameset", json={}, headers=READER)
    assert [(i["id"], i["data"]["domains"]) for i in r.json()["items"]] == [("phish", ["evil.example",
                                                                                       "*.bad.example"])]
    # RBAC: a reader of flows only is refused the feeds; a reader cannot push or delete
    assert srv.post("/api/v1/threatfeeds/ipset", json={}, headers=OTHER).status_code == 403
    assert srv.post("/api/v1/threatfeeds/ipset", json={}, headers={"x-cluster-id": "c1"}).status_code == 401
    assert srv.post("/api/v1/threatfeeds/ipset/bulk", content=body, headers={**READER, **ND}).status_code == 403
    assert srv.request("DELETE", "/api/v1/threatfeeds/ipset/bulk", content=b'{"id": "tor"}',
                       headers={**READER, **ND}).status_code == 403

    # delete: the feed is gone from the list; a later push brings it back
    r = srv.request("DELETE", "/api/v1/threatfeeds/ipset/bulk", content=b'{"id": "tor"}', headers={**PUSHER, **ND})
    assert r.status_code == 200 and r.json()["deleted"] == [{"id": "tor", "status": 200}], r.text
    r = srv.post("/api/v1/threatfeeds/ipset", json={}, headers=READER)
    assert [i["id"] for i in r.json()["items"]] == ["feodo"]
    r = srv.request("DELETE", "/api/v1/threatfeeds/ipset/bulk", content=b'{"nope": 1}', headers={**PUSHER, **ND})
    assert r.status_code == 400 and "line 1: expected an object with a non-empty string id" in r.text
    srv.post("/api/v1/threatfeeds/ipset/bulk", headers={**PUSHER, **ND}, content=ndjson(
        [{"id": "tor", "data": {"created_at": "2026-12-05T11:30:00Z", "ips": ["203.0.113.10"]}}]))
    r = srv.post("/api/v1/threatfeeds/ipset", json={"id": "tor"}, headers=READER)
    assert [i["data"]["ips"] for i in r.json()["items"]] == [["203.0.113.10"]]


def push(store: Any, lt: Any, docs: list[dict[str, Any]], now: datetime) -> None:
    assert lt.envelope is not None
    resp, _ = store.ingest(lt, "c1", unwrap(ndjson(docs), lt.envelope), key=None, now=now, respond=respond)
    assert resp == {"failed": 0}
    settle(store)


def test_a_push_feed_matches_what_was_pushed(store: Any, clock: FakeClock, tmp_path: Path) -> None:
    t0 = int(clock.now().timestamp()) - 600
    det = Detector(store, clock, state_path=tmp_path / "state.json")
    for name, content in (("pushed-ips", "IPSet"), ("pushed-domains", "DomainNameSet")):
        det.put(parse_resource({"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed",
                                "metadata": {"name": name}, "spec": {"content": content}}))
    # traffic before anything was pushed: kept for the first set (the cursor waits for content)
    put(store, FLOWS, [flow(1, "10.0.0.1", "185.220.101.4", t0), flow(2, "10.0.0.2", "8.8.8.8", t0)], clock.now())
    put(store, DNS, [dns(1, "www.bad.example", t0), dns(2, "good.example", t0)], clock.now())
    assert all(v == "ok" for v in det.tick().values())
    assert events(store, clock) == []
    assert det.feed_status["pushed-ips"].as_status()["entries"] == 0

    push(store, IPSET, [{"id": "pushed-ips", "data": {"created_at": "2026-12-05T11:55:00Z",
                                                       "ips": ["185.220.101.4", "198.51.100.0/24", "bogus"]}}],
         clock.now())
    push(store, DOMAINS, [{"id": "pushed-domains", "data": {"created_at": "2026-12-05T11:55:00Z",
                                                             "domains": ["*.bad.example"]}}], clock.now())
    put(store, FLOWS, [flow(3, "198.51.100.7", "10.0.0.3", t0, reporter="dst")], clock.now())
    clock.advance(timedelta(minutes=2))
    assert all(v == "ok" for v in det.tick().values())
    got = events(store, clock)
    assert sorted((e["type"], e.get("dest_ip") or e.get("source_ip")) for e in got) == [
        ("gtf_suspicious_dns_query", "10.0.0.1"), ("gtf_suspicious_flow", "10.0.0.3"),
        ("gtf_suspicious_flow", "185.220.101.4")]
    flows_ev = [e for e in got if e["type"] == "gtf_suspicious_flow"]
    assert {e["record"]["feeds"][0] for e in flows_ev} == {"pushed-ips"}
    assert {e["record"]["suspicious_prefix"] for e in flows_ev} == {None, "198.51.100.0/24"}
    st = det.feed_status["pushed-ips"].as_status()
    assert st["entries"] == 2 and st["skippedEntries"] == 1 and st["lastSuccessfulSync"] is not None

    # a new push replaces the set; a deleted feed has none (and raises nothing new); nothing twice
    push(store, IPSET, [{"id": "pushed-ips", "data": {"created_at": "2026-12-05T12:01:00Z", "ips": ["8.8.8.8"]}}],
         clock.now())
    put(store, FLOWS, [flow(4, "10.0.0.4", "185.220.101.4", t0), flow(5, "10.0.0.5", "8.8.8.8", t0)],
        clock.now())
    clock.advance(timedelta(minutes=2))
    det.tick()
    after = events(store, clock)
    assert len(after) == 4 and [e for e in after if e not in got][0]["dest_ip"] == "8.8.8.8"
    assert det.feed_status["pushed-ips"].as_status()["entries"] == 1
    resp, _ = store.ingest(IPSET, "c1", tombstones(["pushed-ips"], clock.now()), key=None, now=clock.now(),
                           respond=respond)
    settle(store)
    put(store, FLOWS, [flow(6, "10.0.0.6", "8.8.8.8", t0)], clock.now())
    clock.advance(timedelta(minutes=2))
    det.tick()
    assert len(events(store, clock)) == 4 and det.feed_status["pushed-ips"].as_status()["entries"] == 0
    det.close()
