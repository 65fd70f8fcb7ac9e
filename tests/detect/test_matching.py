"""Threat-feed hits on both engines: known-bad IPs, CIDRs and domains in simulated traffic become exactly the
expected events, once, across re-runs and restarts; only new records are searched."""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta
from typing import Any

import orjson

from margay.detect.feeds import FeedPuller
from margay.detect.resources import parse_resource
from margay.detect.scheduler import Detector
from margay.logtypes import REGISTRY
from margay.query.model import Query

FLOWS, DNS, EVENTS = REGISTRY["flows"], REGISTRY["dns"], REGISTRY["events"]
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def respond(conv: Any) -> dict[str, Any]:
    return {"failed": conv.failed_lines}


def put(store: Any, lt: Any, records: list[dict[str, Any]], now: Any) -> None:
    resp, _ = store.ingest(lt, "c1", b"\n".join(orjson.dumps(r) for r in records), key=None, now=now,
                           respond=respond)
    assert resp == {"failed": 0}
    settle(store)


def settle(store: Any) -> None:
    """Wait until the store's feed position covers what was just written: immediate on the embedded store;
    OpenSearch holds positions back by its real-time grace for other replicas' in-flight writes."""
    head = store.head_seq()
    deadline = time.monotonic() + 15
    while store.safe_seq() < head and time.monotonic() < deadline:
        time.sleep(0.2)


def flow(i: int, src: str, dst: str, t0: int, reporter: str = "src", action: str = "allow") -> dict[str, Any]:
    return {"start_time": t0 + i, "end_time": t0 + i + 60, "action": action, "reporter": reporter, "proto": "tcp",
            "source_ip": src, "source_port": 40000 + i, "source_namespace": "shop", "source_name": "web-1",
            "source_name_aggr": "web-*", "source_type": "wep", "dest_ip": dst, "dest_port": 443,
            "dest_namespace": "-", "dest_name_aggr": "pub", "dest_type": "net", "bytes_in": 1, "bytes_out": 1,
            "packets_in": 1, "packets_out": 1, "num_flows": 1, "host": "node-1"}


def dns(i: int, qname: str, t0: int, rr: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"start_time": t0 + i, "end_time": t0 + i + 60, "count": 1, "client_ip": f"10.0.0.{i}",
            "client_name": "-", "client_name_aggr": "web-*", "client_namespace": "shop", "qname": qname,
            "qtype": "A", "qclass": "IN", "rcode": "NoError", "rrsets": rr or [], "servers": [], "host": "node-1"}


def feed_doc(name: str, url: str, content: str = "IPSet") -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": name},
            "spec": {"content": content, "pull": {"period": "1h", "http": {"url": url}}}}


def events(store: Any, clock: Any) -> list[dict[str, Any]]:
    q = Query(EVENTS, ["c1"], size=1000, now=clock.now())
    return sorted(store.search(q).items, key=lambda e: e["id"])


def test_ip_and_domain_feeds_raise_each_event_once(store, clock, feed_server, tmp_path):
    t0 = int(clock.now().timestamp()) - 600
    feed_server.routes["/ips"] = (200, b"185.220.101.4\n203.0.113.0/24\n", 0)
    feed_server.routes["/domains"] = (200, "evil.example\n*.bad.test\nBücher.example\n".encode(), 0)
    put(store, FLOWS, [flow(0, "10.0.0.1", "185.220.101.4", t0),           # exact IP, as destination
                       flow(1, "203.0.113.77", "10.0.0.2", t0, "dst", "deny"),  # CIDR, as source
                       flow(2, "10.0.0.3", "8.8.8.8", t0)], clock.now())      # clean
    put(store, DNS, [dns(1, "evil.example", t0), dns(2, "x.y.bad.test", t0), dns(3, "bad.test", t0),
                     dns(4, "cdn.ok", t0, [{"name": "cdn.ok", "type": "CNAME", "class": "IN",
                                             "rdata": ["xn--bcher-kva.example"]}]),
                     dns(5, "fine.example", t0)], clock.now())
    state = tmp_path / "detect.json"
    det = Detector(store, clock, puller=FeedPuller(allowed=LOOPBACK), state_path=state)
    det.put(parse_resource(feed_doc("ips", feed_server.url + "/ips")))
    det.put(parse_resource(feed_doc("doms", feed_server.url + "/domains", "DomainNameSet")))
    results = det.tick()
    assert set(results.values()) == {"ok"}, results
    got = events(store, clock)
    assert [e["id"] for e in got] == [
        f"doms_{t0 + 1}_10.0.0.1_evil.example", f"doms_{t0 + 2}_10.0.0.2_x.y.bad.test",
        f"doms_{t0 + 4}_10.0.0.4_xn--bcher-kva.example",
        f"ips_{t0}_tcp_10.0.0.1_40000_185.220.101.4_443", f"ips_{t0 + 1}_tcp_203.0.113.77_40001_10.0.0.2_443"]
    by = {e["id"].split("_")[0] + e["id"].split("_")[1]: e for e in got}
    exact = by[f"ips{t0}"]
    assert (exact["type"], exact["origin"], exact["name"], exact["severity"]) == (
        "gtf_suspicious_flow", "Suspicious Flow", "Suspicious Flow", 100)
    assert (exact["mitre_ids"], exact["mitre_tactic"], exact["attack_vector"]) == (["T1041"], "Exfiltration",
                                                                                  "Network")
    assert exact["record"]["feeds"] == ["ips"] and exact["record"]["suspicious_prefix"] is None
    assert exact["record"]["flow_action"] == "allow" and exact["source_namespace"] == "shop"
    cidr = by[f"ips{t0 + 1}"]
    assert cidr["record"]["suspicious_prefix"] == "203.0.113.0/24"
    assert (cidr["mitre_ids"], cidr["mitre_tactic"]) == (["T1090"], "Command and Control")
    assert "No mitigation needed" in cidr["mitigations"][0]
    d = by[f"doms{t0 + 4}"]
    assert (d["type"], d["origin"], d["record"]["suspicious_domains"]) == (
        "gtf_suspicious_dns_query", "Suspicious DNS Query", ["xn--bcher-kva.example"])
    assert d["source_ip"] == "10.0.0.4" and d["source_name"] == "-"
    st = det.feed_status["ips"].as_status()
    assert st["lastSuccessfulSync"] and st["lastSuccessfulSearch"] and st["entries"] == 2

    # a re-run over the same window, and a restart that lost its cursor, store nothing twice
    clock.advance(timedelta(minutes=2))
    assert set(det.tick().values()) == {"ok"}
    det.close()
    state.unlink()
    det2 = Detector(store, clock, puller=FeedPuller(allowed=LOOPBACK), state_path=state)
    det2.put(parse_resource(feed_doc("ips", feed_server.url + "/ips")))
    det2.put(parse_resource(feed_doc("doms", feed_server.url + "/domains", "DomainNameSet")))
    det2.tick()
    assert len(events(store, clock)) == 5

    # new traffic: only it is read (the cursor moved), and its hit is added
    before = det2.feed_status["ips"].cursor["flows"]
    put(store, FLOWS, [flow(9, "10.0.0.9", "203.0.113.5", t0)], clock.now())
    clock.advance(timedelta(minutes=1))
    det2.tick()
    assert det2.feed_status["ips"].cursor["flows"] > before
    assert len(events(store, clock)) == 6
    det2.close()


def test_disabled_feed_and_push_feed_do_nothing(store, clock, feed_server):
    feed_server.routes["/ips"] = (200, b"185.220.101.4\n", 0)
    t0 = int(clock.now().timestamp()) - 600
    put(store, FLOWS, [flow(0, "10.0.0.1", "185.220.101.4", t0)], clock.now())
    doc = feed_doc("off", feed_server.url + "/ips")
    doc["spec"]["mode"] = "Disabled"
    det = Detector(store, clock, puller=FeedPuller(allowed=LOOPBACK))
    det.put(parse_resource(doc))
    assert det.tick() == {}
    assert not feed_server.seen and events(store, clock) == []
    det.close()


def test_ipv6_cidrs_are_matched_outside_the_engine_and_an_empty_set_keeps_the_cursor(store, clock, feed_server):
    t0 = int(clock.now().timestamp()) - 600
    put(store, FLOWS, [flow(0, "2001:db8::7", "10.0.0.2", t0), flow(1, "10.0.0.3", "192.0.2.1", t0),
                       flow(2, "10.0.0.4", "10.0.0.5", t0)], clock.now())
    feed_server.routes["/ips"] = (500, b"", 0)
    det = Detector(store, clock, puller=FeedPuller(allowed=LOOPBACK))
    det.put(parse_resource(feed_doc("v6", feed_server.url + "/ips")))
    det.tick()  # the pull fails: nothing matched, and the records are not skipped
    assert det.feed_status["v6"].cursor.get("flows", 0) == 0 and events(store, clock) == []
    feed_server.routes["/ips"] = (200, b"2001:db8::/32\n192.0.2.1\n", 0)
    clock.advance(timedelta(hours=1))
    assert set(det.tick().values()) == {"ok"}
    got = events(store, clock)
    assert sorted((e["source_ip"], e["record"]["suspicious_prefix"] or "") for e in got) == [
        ("10.0.0.3", ""), ("2001:db8::7", "2001:db8::/32")]
    det.close()


def test_events_from_the_narrow_documents_equal_those_from_whole_flows(store, clock):
    """The matcher asks the engine for EVENT_FIELDS of each hit only: every event (id and every field) is the
    one flow_event makes from the whole flow document."""
    from margay.detect.feeds import FeedStatus
    from margay.detect.matching import IP_FIELDS, _ip_matcher, flow_event, search_feed
    from margay.detect.resources import ThreatFeed

    t0 = int(clock.now().timestamp()) - 600
    records = [flow(0, "10.0.0.1", "185.220.101.4", t0), flow(1, "203.0.113.77", "10.0.0.2", t0, "dst", "deny"),
               flow(2, "10.0.0.3", "8.8.8.8", t0), flow(3, "203.0.113.9", "185.220.101.4", t0, "dst")]
    records[3].update(source_port=None, dest_name="evil-1", source_name="web-1-abc", host=None)
    put(store, FLOWS, records, clock.now())
    entries = ("185.220.101.4", "203.0.113.0/24")
    status = FeedStatus(entries=entries)
    got = search_feed(store, ThreatFeed("ips", url=None), status)
    whole = store.records_with_ips(FLOWS, 0, IP_FIELDS, entries, 100, upto=got.upto)
    ipm = _ip_matcher(entries)
    expected = []
    for d in whole:
        src, dst = ipm.match(d["source_ip"]), ipm.match(d["dest_ip"])
        expected.append(flow_event("ips", d, dst or src, dst is None))  # as the matcher attributes a hit
    assert len(expected) == 3 and got.events == {"c1": expected}
