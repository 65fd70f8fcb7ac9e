"""Feeding the simulated workload to disk (each node's native log files) or to a margay server (bulk NDJSON)."""

from __future__ import annotations

import gzip as gzip_lib
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from ..clock import Clock, SystemClock
from ..logtypes import REGISTRY
from .activity import audit_ee, audit_kube, bgp_lines, events, waf
from .generate import GENERATORS, Record, dns, flows, l7, natural_flow_records, ndjson_batches
from .topology import Topology

KINDS: tuple[str, ...] = ("flows", "dns", "l7", "audit_ee", "audit_kube", "bgp", "events", "waf")
BULK_PATHS: dict[str, str] = {k: "/api/v1" + REGISTRY[k].bulk_path for k in KINDS}
Progress = Callable[[str, str, int], None]  # (cluster, kind, records just accepted)
_sleep = time.sleep  # tests replace it to retry without waiting


def records(topo: Topology, cluster: str, kind: str, start: datetime, end: datetime, *, interval: int = 300,
            **flow_options: Any) -> Iterable[Record]:
    """One kind's records for one cluster, as the collector would post them."""
    if kind == "flows":
        return flows(topo, cluster, start, end, interval=interval, **flow_options)
    if kind == "dns":
        return dns(topo, cluster, start, end, interval=interval)
    if kind == "l7":
        return l7(topo, cluster, start, end, interval=interval)
    return GENERATORS[kind](topo, cluster, start, end)


def write_native_files(topo: Topology, out_dir: str | Path, start: datetime, end: datetime, *,
                       interval: int = 300, append: bool = False) -> dict[str, int]:
    """Write each node's files in Calico's layout (spec §0) under out_dir/<cluster>/<node>/; lines per kind.

    Felix does not write `host` or `@timestamp` (the collector adds them), so they are left out here.
    Audit logs go to the first node (where the API servers run); events to out_dir/<cluster>/events.ndjson;
    WAF logs to the destination's node, `waf/waf.log` (where Calico's collector tails them).
    """
    counts = dict.fromkeys(KINDS, 0)
    mode, dumps = ("ab" if append else "wb"), orjson.dumps
    for cluster in topo.clusters:
        root, nodes = Path(out_dir) / cluster, [n.name for n in topo.nodes(cluster)]
        files = {n: _open(root / n / "flowlogs/flows.log", mode) for n in nodes}
        try:
            for node, line in flows(topo, cluster, start, end, interval=interval).native_lines():
                files[node].write(line)
                counts["flows"] += 1
        finally:
            for f in files.values():
                f.close()
        files = {n: _open(root / n / "dnslogs/dns.log", mode) for n in nodes}
        try:
            for rec in dns(topo, cluster, start, end, interval=interval):
                out = files[rec.pop("host")]
                out.write(dumps(rec) + b"\n")
                counts["dns"] += 1
        finally:
            for f in files.values():
                f.close()
        files = {n: _open(root / n / "l7logs/l7.log", mode) for n in nodes}
        try:
            for rec in l7(topo, cluster, start, end, interval=interval):
                out = files[rec.pop("host") or nodes[0]]
                out.write(dumps(rec) + b"\n")
                counts["l7"] += 1
        finally:
            for f in files.values():
                f.close()
        for node in nodes:
            for version, rel in (("IPv4", "bird/current"), ("IPv6", "bird6/current")):
                with _open(root / node / rel, mode) as f:
                    for text in bgp_lines(topo, cluster, start, end, node=node, ip_version=version):
                        f.write(text.encode() + b"\n")
                        counts["bgp"] += 1
        for kind, rel, gen in (("audit_ee", "audit/tsee-audit.log", audit_ee),
                               ("audit_kube", "audit/kube-audit.log", audit_kube)):
            with _open(root / nodes[0] / rel, mode) as f:
                for rec in gen(topo, cluster, start, end):
                    f.write(dumps(rec) + b"\n")
                    counts[kind] += 1
        with _open(root / "events.ndjson", mode) as f:
            for rec in events(topo, cluster, start, end):
                f.write(dumps(rec) + b"\n")
                counts["events"] += 1
        files = {n: _open(root / n / "waf/waf.log", mode) for n in nodes}
        try:
            for rec in waf(topo, cluster, start, end):
                files[rec["host"] or nodes[0]].write(dumps(rec) + b"\n")
                counts["waf"] += 1
        finally:
            for f in files.values():
                f.close()
    return counts


def _open(path: Path, mode: str) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode)  # the caller closes it


def post_to_server(base_url: str, topo: Topology, start: datetime, end: datetime, *, token: str | None = None,
                   batch_size: int = 5000, progress: Progress | None = None, gzip: bool = True, interval: int = 300,
                   kinds: tuple[str, ...] = KINDS, client: httpx.Client | None = None, retries: int = 5,
                   resume: dict[tuple[str, str], datetime] | None = None, **flow_options: Any) -> dict[str, int]:
    """POST every cluster's records in [start, end) to margay's bulk endpoints; records sent per kind.

    `resume` moves the start of a (cluster, kind) later (see resume_points): what is stored is not sent again.
    """
    counts = dict.fromkeys(kinds, 0)
    http = client or httpx.Client(timeout=120.0)
    try:
        for cluster in topo.clusters:
            for kind in kinds:
                begin = max(start, (resume or {}).get((cluster, kind), start))
                if begin >= end:
                    continue
                recs = records(topo, cluster, kind, begin, end, interval=interval, **flow_options)
                for body in ndjson_batches(recs, batch_size):
                    n = body.count(b"\n")
                    _send(http, base_url.rstrip("/") + BULK_PATHS[kind], body, _headers(cluster, kind, body, token, gzip),
                          gzip, retries)
                    counts[kind] += n
                    if progress is not None:
                        progress(cluster, kind, n)
    finally:
        if client is None:
            http.close()
    return counts


def _headers(cluster: str, kind: str, body: bytes, token: str | None, gzip: bool) -> dict[str, str]:
    # The key hashes the uncompressed batch, so a retry or a re-run of the same window is recognised.
    digest = hashlib.blake2b(cluster.encode() + b"\0" + body, digest_size=16).hexdigest()
    headers = {"Content-Type": "application/x-ndjson", "x-cluster-id": cluster,
               "Idempotency-Key": f"sim-{kind}-{digest}"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _send(http: httpx.Client, url: str, body: bytes, headers: dict[str, str], gzip: bool, retries: int) -> httpx.Response:
    """POST with exponential backoff on connection errors, 429 and 5xx; other errors raise at once."""
    content = gzip_lib.compress(body, compresslevel=1, mtime=0) if gzip else body
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            resp = http.post(url, content=content, headers=headers)
        except httpx.TransportError:
            if attempt == retries:
                raise
        else:
            if resp.status_code < 500 and resp.status_code != 429:
                return resp.raise_for_status()
            if attempt == retries:
                return resp.raise_for_status()
        _sleep(delay)
        delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


def live_interval(topo: Topology, rate_per_s: float) -> int:
    """The flush interval (1-300 s) at which every flow key once per interval gives about rate_per_s records."""
    natural = sum(natural_flow_records(topo, c) for c in topo.clusters)
    return max(1, min(300, int(natural / max(rate_per_s, 1e-9))))


def run_live(base_url: str, topo: Topology, *, stop_event: threading.Event, clock: Clock,
             rate_per_s: float | None = None, interval: int = 300, start: datetime | None = None,
             token: str | None = None, gzip: bool = True, progress: Progress | None = None,
             client: httpx.Client | None = None, batch_size: int = 5000, poll: float = 30.0) -> dict[str, int]:
    """Post "now" data until stop_event is set (the clock is read again at least every `poll` seconds).

    Without rate_per_s it is the backfill continued: the same generators at the same flush `interval`,
    each window posted once it has closed, from `start` (default: the last closed window) on, so the
    live rate is the backfill's and a gap is filled with what it would have held (no spike).
    With rate_per_s each flush interval is a time-lapse of five minutes of traffic (interval from
    `live_interval`), about rate_per_s flow records per second over all clusters.
    """
    options: dict[str, Any] = {}
    if rate_per_s is not None:
        interval = live_interval(topo, rate_per_s)
        options = {"rate": rate_per_s / len(topo.clusters), "activity": 300.0 / interval}
    counts = dict.fromkeys(KINDS, 0)
    last = start or _floor(clock.now(), interval)
    http = client or httpx.Client(timeout=120.0)
    try:
        while not stop_event.is_set():
            now = clock.now()
            if now > last:
                sent = post_to_server(base_url, topo, last, now, token=token, batch_size=batch_size,
                                      progress=progress, gzip=gzip, interval=interval, client=http, **options)
                for k, n in sent.items():
                    counts[k] += n
                last = now
            stop_event.wait(min(poll, max(0.2, interval - now.timestamp() % interval + 0.05)))
    finally:
        if client is None:
            http.close()
    return counts


# The query path, extra body and time field of each kind, to find the newest record a server holds.
_NEWEST: dict[str, tuple[str, dict[str, str]]] = {
    "flows": ("/api/v1/flows/logs", {}), "dns": ("/api/v1/dns/logs", {}), "l7": ("/api/v1/l7/logs", {}),
    "audit_ee": ("/api/v1/audit/logs", {"type": "ee"}), "audit_kube": ("/api/v1/audit/logs", {"type": "kube"}),
    "bgp": ("/api/v1/bgp/logs", {}), "events": ("/api/v1/events", {}), "waf": ("/api/v1/waf/logs", {}),
}


def resume_points(base_url: str, topo: Topology, since: datetime, *, kinds: tuple[str, ...] = KINDS,
                  token: str | None = None, client: httpx.Client | None = None) -> dict[tuple[str, str], datetime]:
    """Where each (cluster, kind) continues: a second after its newest record stored since `since`.

    The generators are deterministic per flush window (flows, DNS, L7) and per hour (the rest), so posting
    from there on adds exactly what is missing: a re-run continues the data instead of doubling it.
    """
    http = client or httpx.Client(timeout=60.0)
    out: dict[tuple[str, str], datetime] = {}
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        for cluster in topo.clusters:
            for kind in kinds:
                path, extra = _NEWEST[kind]
                field = REGISTRY[kind].time_field
                body = {"time_range": {"from": since.isoformat(), "to": "now"}, "max_page_size": 1,
                        "sort": [{"field": field, "descending": True}], "total_hits": False, **extra}
                r = http.post(base_url.rstrip("/") + path, content=orjson.dumps(body),
                              headers={**headers, "x-cluster-id": cluster})
                r.raise_for_status()
                items = r.json()["items"]
                newest = _as_time(items[0].get(field)) if items else None
                if newest is not None:
                    out[(cluster, kind)] = newest + timedelta(seconds=1)
    finally:
        if client is None:
            http.close()
    return out


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def backfill_days(base_url: str, topo: Topology, days: float, *, clock: Clock | None = None,
                  end: datetime | None = None, **post_options: Any) -> dict[str, int]:
    """Post the `days` before `end` (default: the clock's now), one day per call; records sent per kind."""
    stop = _floor(end or (clock or SystemClock()).now(), post_options.get("interval", 300))
    start = stop - timedelta(days=days)
    counts = dict.fromkeys(post_options.get("kinds", KINDS), 0)
    while start < stop:
        upto = min(start + timedelta(days=1), stop)
        for k, n in post_to_server(base_url, topo, start, upto, **post_options).items():
            counts[k] += n
        start = upto
    return counts


def floor_time(when: datetime, seconds: int) -> datetime:
    """`when` rounded down to a multiple of `seconds` since the epoch (UTC)."""
    return _floor(when, seconds)


def _floor(when: datetime, seconds: int) -> datetime:
    t = when.timestamp()
    return datetime.fromtimestamp(t - t % seconds, UTC)
