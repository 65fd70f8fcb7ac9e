"""Threat-feed matching (spec §13.1), incremental over the store's feed of records: only what arrived since
the last successful search is read, and each hit becomes a security event with a deterministic id."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..logtypes import REGISTRY
from ..store.backend import Backend
from ..store.ipset import parse_ipset
from .feeds import FeedStatus
from .resources import ThreatFeed

FLOWS, DNS = REGISTRY["flows"], REGISTRY["dns"]
PAGE = 5000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class IPMatcher:
    """An IP set: exact addresses in a set, CIDRs looked up once per prefix length present."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.nets: dict[tuple[int, int], set[int]] = {}  # (version, prefix length) -> network integers
        for e in entries:
            if "/" in e:
                net = ipaddress.ip_network(e)
                self.nets.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))
            else:
                self.exact.add(e)

    def match(self, ip: Any) -> str | None:
        """The entry holding `ip` (the address, or the CIDR), or None."""
        if not isinstance(ip, str) or not ip:
            return None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        text = str(addr)
        if text in self.exact:
            return text
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        for (version, plen), nets in self.nets.items():
            if version == addr.version:
                masked = value >> (bits - plen) << (bits - plen)
                if masked in nets:
                    return f"{ipaddress.ip_address(masked)}/{plen}"
        return None


class DomainMatcher:
    """A domain set: `example.com` matches that name; `*.example.com` matches names below it."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.suffixes: set[str] = set()
        for e in entries:
            (self.suffixes.add(e[2:]) if e.startswith("*.") else self.exact.add(e))

    def match(self, name: Any) -> str | None:
        if not isinstance(name, str) or not name:
            return None
        from .formats import normalise_domain

        n = normalise_domain(name)
        if n is None or n.startswith("*."):
            return None
        if n in self.exact:
            return n
        labels = n.split(".")
        for i in range(1, len(labels)):
            if ".".join(labels[i:]) in self.suffixes:
                return n
        return None


def _epoch(doc: dict[str, Any]) -> int:
    """start_time in epoch seconds, whichever way the engine returns it."""
    value = doc.get("start_time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(doc.get("_time") or 0)


def _proto(flow: dict[str, Any]) -> str:
    return str(flow.get("proto") or "")


def flow_event(feed: str, flow: dict[str, Any], hit: str, on_source: bool) -> dict[str, Any]:
    """The gtf_suspicious_flow event for one flow that touched a feed's IP (spec §13.1)."""
    src_ip, dst_ip = flow.get("source_ip"), flow.get("dest_ip")
    start = _epoch(flow)
    eid = "_".join(str(x if x is not None else "") for x in (
        feed, start, _proto(flow), src_ip, flow.get("source_port"), dst_ip, flow.get("dest_port")))
    c2 = flow.get("reporter") == "dst"
    suspicious = src_ip if on_source else dst_ip
    action = flow.get("action")
    mitigation = ("No mitigation needed: the flow was denied" if action == "deny" else
                  f"Create a global network policy to prevent traffic {'from' if on_source else 'to'} "
                  f"{suspicious}")
    return {
        "id": eid, "time": start, "type": "gtf_suspicious_flow",
        "description": f"suspicious IP {suspicious} from feed {feed} "
                       f"{'connected to' if on_source else 'reached from'} "
                       f"{(flow.get('dest_name_aggr') if on_source else flow.get('source_name_aggr')) or '-'}",
        "severity": 100, "origin": "Suspicious Flow", "name": "Suspicious Flow",
        "source_ip": src_ip, "source_port": flow.get("source_port"),
        "source_namespace": flow.get("source_namespace"), "source_name": flow.get("source_name"),
        "source_name_aggr": flow.get("source_name_aggr"),
        "dest_ip": dst_ip, "dest_port": flow.get("dest_port"), "dest_namespace": flow.get("dest_namespace"),
        "dest_name": flow.get("dest_name"), "dest_name_aggr": flow.get("dest_name_aggr"),
        "host": flow.get("host"), "protocol": _proto(flow), "attack_vector": "Network",
        "mitre_tactic": "Command and Control" if c2 else "Exfiltration", "mitre_ids": ["T1090" if c2 else "T1041"],
        "mitigations": [mitigation],
        "record": {"flow_action": action, "flow_log_id": flow.get("id"), "protocol": _proto(flow),
                   "feeds": [feed], "suspicious_prefix": hit if "/" in hit else None},
    }


def dns_event(feed: str, log: dict[str, Any], domains: list[str]) -> dict[str, Any]:
    """The gtf_suspicious_dns_query event for one DNS log naming a feed's domains (spec §13.1)."""
    start = _epoch(log)
    client = log.get("client_ip")
    eid = "_".join(str(x if x is not None else "") for x in (feed, start, client, "~".join(domains)))
    return {
        "id": eid, "time": start, "type": "gtf_suspicious_dns_query",
        "description": f"{log.get('client_name_aggr') or client or '-'} queried suspicious domain "
                       f"{', '.join(domains)} from feed {feed}",
        "severity": 100, "origin": "Suspicious DNS Query", "name": "Suspicious DNS Query",
        "source_ip": client, "source_namespace": log.get("client_namespace"),
        "source_name": log.get("client_name") or "-", "source_name_aggr": log.get("client_name_aggr"),
        "host": log.get("host"), "attack_vector": "Network", "mitre_tactic": "Exfiltration",
        "mitre_ids": ["T1041"],
        "mitigations": ["Create a global network policy with a DNS rule to deny traffic to these domains"],
        "record": {"dns_log_id": log.get("id"), "feeds": [feed], "suspicious_domains": domains},
    }


def _dns_names(log: dict[str, Any]) -> list[str]:
    names = [log.get("qname")]
    for rr in log.get("rrsets") or []:
        if isinstance(rr, dict):
            names.append(rr.get("name"))
            rdata = rr.get("rdata")
            names.extend(rdata if isinstance(rdata, list) else [rdata])
    return [n for n in names if isinstance(n, str)]


@dataclass
class Hits:
    events: dict[str, list[dict[str, Any]]]  # cluster -> events
    upto: int  # the store position searched up to
    scanned: int  # records read (on the engine-filtered path: hits returned)


IP_FIELDS = ("source_ip", "dest_ip")
# What flow_event reads of a flow (Calico's suspicious-IP event: the flow's endpoints, ports, protocol, action,
# reporter and id; margay adds host and cluster): the engines render these of each hit, not the whole flow.
EVENT_FIELDS = ("id", "cluster", "start_time", "host", "action", "reporter", "proto",
                "source_ip", "source_port", "source_namespace", "source_name", "source_name_aggr",
                "dest_ip", "dest_port", "dest_namespace", "dest_name", "dest_name_aggr")


def _ip_matcher(entries: tuple[str, ...]) -> IPMatcher:
    """The matcher of a set, kept with the engines' parsed form of it (a feed's set is replaced, never changed:
    no 100,000-member hash per run, and no second parse)."""
    parsed = parse_ipset(entries)
    ipm = parsed.cache.get("matcher")
    if not isinstance(ipm, IPMatcher):
        ipm = parsed.cache["matcher"] = _build_matcher(entries)
    return ipm


def _build_matcher(entries: tuple[str, ...]) -> IPMatcher:
    parsed = parse_ipset(entries)
    ipm = IPMatcher(())
    ipm.exact = set(parsed.exact)
    for plen, nets in parsed.net4.items():
        ipm.nets[(4, plen)] = {n << (32 - plen) for n in nets}
    for net in parsed.net6:
        ipm.nets.setdefault((6, net.prefixlen), set()).add(int(net.network_address))
    return ipm


def _ip_hits(backend: Backend, feed: ThreatFeed, entries: tuple[str, ...], after: int, upto: int,
             limit: int) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """IP matching in the engine (Backend.records_with_ips: the whole set against source_ip/dest_ip of the
    new records only, a sorted-number lookup or `terms`); the few hits are then attributed to their entry here."""
    events: dict[str, list[dict[str, Any]]] = {}
    found = 0
    pos = after
    while pos < upto:
        page = backend.records_with_ips(FLOWS, pos, IP_FIELDS, entries, limit, upto=upto, returning=EVENT_FIELDS)
        if not page:
            break
        found += len(page)
        pos = int(page[-1]["_seq"]) if len(page) >= limit else upto  # a short page: every hit up to `upto`
        ipm = _ip_matcher(entries)  # built once per set, and only when something matched
        for doc in page:
            hit_src, hit_dst = ipm.match(doc.get("source_ip")), ipm.match(doc.get("dest_ip"))
            hit = hit_dst or hit_src
            if hit is not None:
                events.setdefault(str(doc.get("cluster") or "cluster"), []).append(
                    flow_event(feed.name, doc, hit, hit_dst is None))
    return events, found


def search_feed(backend: Backend, feed: ThreatFeed, status: FeedStatus, *, limit: int = PAGE) -> Hits:
    """Read what the store took in after the feed's cursor (up to its safe position) and match it."""
    lt = FLOWS if feed.content == "IPSet" else DNS
    after = status.cursor.get(lt.name, 0)
    upto = backend.safe_seq()
    if not status.entries:  # no good set yet: keep the cursor, so the first set sees what came before it
        return Hits({}, after, 0)
    if feed.content == "IPSet":
        if upto <= after:
            return Hits({}, after, 0)
        events_by_cluster, hits = _ip_hits(backend, feed, status.entries, after, upto, limit)
        return Hits(events_by_cluster, upto, hits)
    events: dict[str, list[dict[str, Any]]] = {}
    scanned = 0
    dm = DomainMatcher(status.entries)
    while after < upto:
        page = backend.records_after(lt, after, limit, upto=upto)
        if not page:
            break
        scanned += len(page)
        after = int(page[-1]["_seq"])
        for doc in page:
            cluster = str(doc.get("cluster") or "cluster")
            found = sorted({m for m in map(dm.match, _dns_names(doc)) if m})
            if found:
                events.setdefault(cluster, []).append(dns_event(feed.name, doc, found))
    return Hits(events, max(upto, status.cursor.get(lt.name, 0)), scanned)  # every record up to `upto` was read
