"""Native records of every log type for a time window, generated from a Topology; deterministic per seed."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import orjson

from .activity import audit_ee, audit_kube, bgp, bgp_lines, events, parse_bird_line, waf
from .topology import SHAPES, Edge, Endpoint, Topology, rng_for

Record = dict[str, Any]
# A flow record key: (record, posted %-format, native %-format, varying keys, mean connections per 300 s,
# traffic shape, reported by dst?, denied?, level 0?, host).
_Key = tuple[Record, bytes, bytes, tuple[str, ...], float, tuple[int, int, int, int], bool, bool, bool, str]
_VARYING = ("start_time", "end_time", "source_port", "bytes_in", "bytes_out", "packets_in", "packets_out",
            "num_flows", "num_flows_started", "num_flows_completed", "@timestamp")  # in the records' key order


def _window(start: datetime, end: datetime, interval: int) -> range:
    """End times of the flush intervals whose end falls in [start, end)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    s, e = start.timestamp(), end.timestamp()
    return range(math.ceil(s / interval) * interval, math.ceil(e / interval) * interval, interval)


def _diurnal(t: int) -> float:
    """Busier by day than by night (UTC), from 0.5 to 1.5."""
    return 1.0 + 0.5 * math.sin(2 * math.pi * ((t % 86400) / 86400 - 0.375))


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pairs(edge: Edge, dst_side: bool, level: int) -> list[tuple[str, Any, str, Any, str]]:
    """(host, src ip, src name, dst ip, dst name) of each record one reporter writes per interval."""
    def side(ep: Endpoint, reporting: bool) -> list[tuple[str, Any, str]]:
        if level >= 2:
            return [(n, None, "-") for n in ep.nodes] if reporting else [("", None, "-")]
        return [(m.node, m.ip, m.name if ep.type != "net" else "-") for m in ep.members]
    out = []
    for sn, sip, sname in side(edge.src, not dst_side):
        for dn, dip, dname in side(edge.dst, dst_side):
            out.append((dn if dst_side else sn, sip, sname, dip, dname))
    return out


def _flow_templates(topo: Topology, cluster: str, level: int, denied_level: int) -> list[_Key]:
    """One entry per record key a flush interval can write, with its record rendered once ahead."""
    key = ("flows", cluster, level, denied_level)
    if key in topo.cache:
        return topo.cache[key]  # type: ignore[no-any-return]
    rng = rng_for(topo.seed, "flow-templates", cluster)
    out: list[_Key] = []
    for edge in topo.flow_edges(cluster):
        for dst_side, trace in ((False, edge.src_trace), (True, edge.dst_trace)):
            if trace is None:
                continue
            deny = edge.denied_by == ("dst" if dst_side else "src")
            lvl = denied_level if deny else level
            pairs = _pairs(edge, dst_side, lvl)
            svc, src, dst = edge.service, edge.src, edge.dst
            proc = src if not dst_side else dst
            collected = rng.random() < 0.6 and proc.type == "wep"
            many = len(proc.members) > 1 and lvl >= 2
            nat = sorted(rng.sample(range(30000, 32768), 3)) if dst.name_aggr == "pub" and not dst_side else []
            for host, sip, sname, dip, dname in pairs:
                rec: Record = {
                    "start_time": 0, "end_time": 0, "source_ip": sip, "source_name": sname,
                    "source_name_aggr": src.name_aggr, "source_namespace": src.namespace,
                    "source_port": 0 if lvl == 0 else None, "source_type": src.type,
                    "source_labels": {"labels": src.label_list} if src.labels else None,
                    "dest_ip": dip, "dest_name": dname, "dest_name_aggr": dst.name_aggr,
                    "dest_namespace": dst.namespace, "dest_port": edge.port if lvl < 3 else None,
                    "dest_type": dst.type, "dest_labels": {"labels": dst.label_list} if dst.labels else None,
                    "dest_service_namespace": svc.namespace if svc else "-",
                    "dest_service_name": svc.name if svc else "-",
                    "dest_service_port": svc.port_name if svc and lvl < 3 else "-",
                    "dest_service_port_num": svc.port if svc and lvl < 3 else None,
                    "dest_domains": list(dst.domains) if dst.domains else None,
                    "nat_outgoing_ports": nat, "proto": edge.proto, "action": "deny" if deny else "allow",
                    "reporter": "dst" if dst_side else "src",
                    "policies": {"all_policies": list(trace[0]), "enforced_policies": list(trace[1]),
                                 "pending_policies": list(trace[2]), "transit_policies": []},
                    "bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0,
                    "num_flows": 0, "num_flows_started": 0, "num_flows_completed": 0,
                    "http_requests_allowed_in": 0, "http_requests_denied_in": 0,
                    "process_name": (proc.process if collected else "-"),
                    "num_process_names": 1 if collected else 0,
                    "process_id": ("*" if many else str(1000 + rng.randrange(60000))) if collected else "-",
                    "num_process_ids": (len(proc.members) if many else 1) if collected else 0,
                    "process_args": None, "num_process_args": 0,
                    "original_source_ips": None, "num_original_source_ips": 0,
                    "host": host, "@timestamp": 0,
                }
                keys = _VARYING if lvl == 0 else tuple(k for k in _VARYING if k != "source_port")
                mean = max(edge.weight / len(pairs), 1.0) if deny else edge.weight / len(pairs)
                out.append((rec, *_formats(rec, keys), keys, mean, SHAPES[edge.shape], dst_side, deny, lvl == 0, host))
    topo.cache[key] = out
    return out


def _formats(rec: Record, keys: tuple[str, ...]) -> tuple[bytes, bytes]:
    """The record as a %-format of its varying values: as posted, and as Felix writes it (no host, @timestamp)."""
    sentinels = {k: -7_777_000_000_000_000_000 - i for i, k in enumerate(keys)}
    probe = {**rec, **sentinels}

    def render(d: Record) -> bytes:
        line = orjson.dumps(d).replace(b"%", b"%%")
        for v in sentinels.values():
            line = line.replace(b"%d" % v, b"%d")
        return line + b"\n"
    posted = render(probe)
    del probe["host"], probe["@timestamp"]
    return posted, render(probe)


def natural_flow_records(topo: Topology, cluster: str, *, level: int = 2, denied_level: int = 1) -> int:
    """The most flow records one flush interval of this cluster can produce (every key active)."""
    return len(_flow_templates(topo, cluster, level, denied_level))


def _flow_values(topo: Topology, cluster: str, start: datetime, end: datetime, interval: int, rate: float | None,
                 level: int, denied_level: int, activity: float) -> Iterator[tuple[_Key, tuple[int, ...]]]:
    """(key, varying values) of every record: the one place counters are drawn, for dicts and bytes alike."""
    templates = _flow_templates(topo, cluster, level, denied_level)
    for e in _window(start, end, interval):
        rnd = rng_for(topo.seed, "flows", cluster, e, interval).random
        s, ts, scale = e - interval, e * 1000, _diurnal(e) * interval / 300.0 * activity
        keep = 1.0
        if rate is not None:
            expected = sum(1.0 if t[8] else min(1.0, t[4] * scale) for t in templates)
            keep = min(1.0, rate * interval / max(expected, 1e-9))
        v: tuple[int, ...]
        for key in templates:
            _, _, _, _, mean, (preq, pres, breq, bres), dst_side, deny, l0, _ = key
            if keep < 1.0 and rnd() >= keep:
                continue
            m = mean if deny else mean * scale
            if m < 1.0:
                if rnd() >= m:
                    continue
                n = 1
            else:
                n = int(m * (0.5 + rnd())) or 1
            if deny:  # retried SYNs (or datagrams) that never got an answer
                pk = n * (1 + int(rnd() * 3))
                by = pk * (breq if preq == 1 else 60)
                v = (s, e, by, 0, pk, 0, n, n, 0, ts) if dst_side else (s, e, 0, by, 0, pk, n, n, 0, ts)
            else:
                j = 0.75 + 0.5 * rnd()
                a, b = int(n * preq * j) + n, int(n * pres * j) + n
                ab, bb = a * breq + int(rnd() * a * 40), b * bres + int(rnd() * b * 60)
                u = rnd()
                st, cp = n - int(n * 0.2 * u), n - int(n * 0.2 * (1.0 - u))
                v = (s, e, ab, bb, a, b, n, st, cp, ts) if dst_side else (s, e, bb, ab, b, a, n, st, cp, ts)
            if l0:  # level 0 keeps the source port: one more value, in record key order
                v = (s, e, 32768 + int(rnd() * 28000), *v[2:])
            yield key, v


class FlowStream:
    """Flow records of one cluster and window: iterate for dicts, or take `lines()` for NDJSON without dicts."""

    def __init__(self, topo: Topology, cluster: str, start: datetime, end: datetime, *, interval: int = 300,
                 rate: float | None = None, level: int = 2, denied_level: int = 1, activity: float = 1.0) -> None:
        _window(start, end, interval)  # fail early on naive datetimes
        self._args = (topo, cluster, start, end, interval, rate, level, denied_level, activity)

    def __iter__(self) -> Iterator[Record]:
        for key, v in _flow_values(*self._args):
            r = key[0].copy()
            r.update(zip(key[3], v, strict=True))
            yield r

    def lines(self) -> Iterator[bytes]:
        """Each record as one NDJSON line, byte-identical to orjson.dumps of the dict plus a newline."""
        for key, v in _flow_values(*self._args):
            yield key[1] % v

    def native_lines(self) -> Iterator[tuple[str, bytes]]:
        """(node, line) as Felix writes flows.log: without the collector's host and @timestamp."""
        for key, v in _flow_values(*self._args):
            yield key[9], key[2] % v[:-1]


def flows(topo: Topology, cluster: str, start: datetime, end: datetime, *, interval: int = 300,
          rate: float | None = None, level: int = 2, denied_level: int = 1, activity: float = 1.0) -> FlowStream:
    """Felix flow records whose end_time is in [start, end), as the collector posts them (host, @timestamp).

    `level` / `denied_level` are Felix's aggregation kinds for allowed / denied flows (0-3). A key writes a
    record in an interval only when it carried traffic; `activity` multiplies every edge's connection
    rate. `rate` thins the output to about that many records per simulated second (never more than the
    traffic gives). Dicts share nested lists with each other: treat them as read-only.
    """
    return FlowStream(topo, cluster, start, end, interval=interval, rate=rate, level=level,
                      denied_level=denied_level, activity=activity)


def _dns_templates(topo: Topology, cluster: str) -> list[tuple[Record, float, int]]:
    key = ("dns", cluster)
    if key in topo.cache:
        return topo.cache[key]  # type: ignore[no-any-return]
    ct, rng = topo.cluster(cluster), rng_for(topo.seed, "dns-templates", cluster)
    coredns = ct.workload("kube-system", "coredns")
    servers = ([{"ip": m.ip, "name": m.name, "name_aggr": coredns.name_aggr, "namespace": "kube-system",
                 "labels": dict(coredns.labels)} for m in coredns.members] if coredns else
               [{"ip": "10.96.0.10", "name": "-", "name_aggr": "pvt", "namespace": "-", "labels": None}])
    out: list[tuple[Record, float, int]] = []
    for client in ct.workloads:
        questions: list[tuple[str, str, str, list[dict[str, Any]], float, int]] = [
            ("kubernetes.default.svc.cluster.local", "A", "NoError",
             [{"name": "kubernetes.default.svc.cluster.local", "type": "A", "class": "IN", "rdata": ["10.96.0.1"]}],
             2.0, 300_000)]
        for edge in ct.edges:
            if edge.src is not client:
                continue
            if edge.service and edge.shape != "dns":
                q = edge.service.fqdn
                questions.append((q, "A", "NoError", [{"name": q, "type": "A", "class": "IN",
                                                       "rdata": [edge.service.cluster_ip]}], edge.weight / 4, 400_000))
            for d in edge.dst.domains:
                ip = edge.dst.members[0].ip
                questions += [
                    (d, "A", "NoError", [{"name": d, "type": "A", "class": "IN", "rdata": [ip]}], edge.weight / 3, 18_000_000),
                    (d, "AAAA", "NoError", [], edge.weight / 3, 16_000_000),
                    (f"{d}.{client.namespace}.svc.cluster.local", "A", "NXDomain", [], edge.weight / 3, 350_000)]
        for node in client.nodes:
            for qname, qtype, rcode, rrsets, weight, latency in questions:
                rec: Record = {
                    "start_time": "", "end_time": "", "type": "log", "count": 0, "client_ip": None,
                    "client_name": "-", "client_name_aggr": client.name_aggr, "client_namespace": client.namespace,
                    "client_labels": dict(client.labels), "qname": qname.lower(), "qtype": qtype, "qclass": "IN",
                    "rcode": rcode, "rrsets": rrsets, "servers": [rng.choice(servers)], "latency": None,
                    "latency_count": 0, "latency_mean": 0, "latency_max": 0, "host": node,
                }
                out.append((rec, weight / len(client.nodes), latency))
    topo.cache[key] = out
    return out


def dns(topo: Topology, cluster: str, start: datetime, end: datetime, *, interval: int = 300) -> Iterator[Record]:
    """Felix DNS records (aggregation kind 1: client name and IP aggregated away) ending in [start, end)."""
    templates = _dns_templates(topo, cluster)
    nodes = [n.name for n in topo.nodes(cluster)]
    for e in _window(start, end, interval):
        rnd = rng_for(topo.seed, "dns", cluster, e, interval).random
        s_txt, e_txt, scale = _rfc3339(e - interval), _rfc3339(e), _diurnal(e) * interval / 300.0
        for tmpl, mean, latency in templates:
            m = mean * scale
            if m < 1.0:
                if rnd() >= m:
                    continue
                n = 1
            else:
                n = int(m * (0.5 + rnd())) or 1
            r = tmpl.copy()
            mean_ns = int(latency * (0.6 + 0.8 * rnd()))
            max_ns = int(mean_ns * (1.0 + 3.0 * rnd())) if n > 1 else mean_ns
            r["start_time"], r["end_time"], r["count"] = s_txt, e_txt, n
            r["latency"] = {"count": n, "mean": mean_ns, "max": max_ns}
            r["latency_count"], r["latency_mean"], r["latency_max"] = n, mean_ns, max_ns
            yield r
        if rnd() < 0.02:  # a node hit dnsLogsFilePerNodeLimit: Felix writes one overflow record
            yield {"start_time": s_txt, "end_time": e_txt, "type": "unlogged", "count": 1 + int(rnd() * 400),
                   "host": nodes[int(rnd() * len(nodes))]}


# Per HTTP service: (method, path, share of requests); codes drawn per record, mostly 200.
_L7_ROUTES = [("GET", "/api/items", 0.45), ("GET", "/healthz", 0.2), ("POST", "/api/orders", 0.15),
              ("GET", "/api/items/{id}", 0.15), ("DELETE", "/api/session", 0.05)]
_L7_CODES = [("200", 0.9), ("404", 0.04), ("500", 0.03), ("503", 0.02), ("403", 0.01)]
_L7_AGENTS = {"web": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "node": "axios/1.7.7",
              "java": "Java-http-client/21.0.4", "python3": "python-requests/2.32.3"}


def l7(topo: Topology, cluster: str, start: datetime, end: datetime, *, interval: int = 300) -> Iterator[Record]:
    """Felix L7 records (HTTP request summaries per source, service, URL and code) ending in [start, end).

    Only allowed HTTP edges to a service carry them, as Calico's L7 collector (Envoy) sees them; a few
    requests per connection, at the flows' daily rhythm.
    """
    edges = [e for e in topo.flow_edges(cluster) if e.shape == "http" and e.service and not e.denied_by]
    for e in _window(start, end, interval):
        rnd = rng_for(topo.seed, "l7", cluster, e, interval).random
        scale = _diurnal(e) * interval / 300.0
        for edge in edges:
            svc, src, dst = edge.service, edge.src, edge.dst
            assert svc is not None
            requests = edge.weight * scale * 3
            for method, path, share in _L7_ROUTES:
                m = requests * share
                if m < 1.0 and rnd() >= m:
                    continue
                n = max(1, int(m * (0.5 + rnd())))
                u, code = rnd(), "200"
                for c, p in _L7_CODES:
                    if u < p:
                        code = c
                        break
                    u -= p
                mean = int(2_000 + 30_000 * rnd() + (200_000 if code in ("500", "503") else 0))
                url = f"{svc.name}.{svc.namespace}.svc{path.replace('{id}', str(1000 + int(rnd() * 9000)))}"
                yield {"start_time": e - interval, "end_time": e, "host": dst.nodes[0] if dst.nodes else "",
                       "bytes_in": n * (180 + int(rnd() * 400)), "bytes_out": n * (900 + int(rnd() * 9000)),
                       "duration_mean": mean, "duration_max": int(mean * (1 + 3 * rnd())), "count": n,
                       "src_name_aggr": src.name_aggr, "src_namespace": src.namespace, "src_type": src.type,
                       "dest_name_aggr": dst.name_aggr, "dest_namespace": dst.namespace, "dest_type": dst.type,
                       "dest_service_name": svc.name, "dest_service_namespace": svc.namespace,
                       "dest_service_port": svc.port, "dest_service_port_name": svc.port_name,
                       "url": url, "response_code": code, "method": method,
                       "user_agent": _L7_AGENTS.get(src.process, "curl/8.5.0"), "type": "html/1.1"}


def ndjson_batches(records: Iterable[Record], batch_size: int = 5000) -> Iterator[bytes]:
    """NDJSON bodies of at most batch_size records each, every line ending in a newline."""
    if isinstance(records, FlowStream):  # the fast path: pre-rendered lines, no dicts
        lines = records.lines()
        while body := list(islice(lines, batch_size)):
            yield b"".join(body)
        return
    dumps, it = orjson.dumps, iter(records)
    while chunk := list(islice(it, batch_size)):
        yield b"\n".join(map(dumps, chunk)) + b"\n"


Generator = Callable[..., Iterable[Record]]
GENERATORS: dict[str, Generator] = {
    "flows": flows, "dns": dns, "audit_ee": audit_ee, "audit_kube": audit_kube, "bgp": bgp, "events": events,
    "l7": l7, "waf": waf,
}

__all__ = ["GENERATORS", "FlowStream", "Record", "audit_ee", "audit_kube", "bgp", "bgp_lines", "dns", "events", "flows", "l7",
           "natural_flow_records", "ndjson_batches", "parse_bird_line", "waf"]
