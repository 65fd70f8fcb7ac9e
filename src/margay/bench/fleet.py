"""A fleet: the same records stored over few and many clusters (`fleet` scenario, issue 25).

The records of the `query` scenario's data (flows, DNS and Kubernetes audit over 7 days) are dealt out by flow
to N clusters (`fleet-0001`..): a stable hash of a record's flow key (the fields its type's roll-up groups by,
cluster apart) picks its cluster, so all records of one flow belong to one cluster as in a real fleet. Each
cluster gets one batch per type and day (at most 10,000 records; a day of more than 200,000 lines goes out in
several rounds, the bench's memory bound), sent by CLIENTS concurrent senders as a fleet's agents would send
them; margay stores them and, once compaction settled, answers the questions whose cost
issue 25 found following the number of clusters: a search page over all clusters (24 h), the top destinations
(7 d), the flow graph (24 h), `GET /api/v1/indices` (every page), and the overview's data calls (its default
3 h range, all clusters). Server CPU beside wall time: the machine is shared.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import chain, islice
from typing import Any

import httpx
import orjson

from ..logtypes import REGISTRY
from .data import BATCH, END, Batch, flow_batches, other_batches, topology
from .harness import Bench, percentile
from .targets import MargayTarget

# (flow records, hours of DNS and audit, the two cluster counts)
SIZES = {"quick": (150_000, 24, [10, 100]), "full": (3_000_000, 24 * 7, [10, 1000]), "large": (3_000_000, 24 * 7, [10, 1000])}
MULTI = {"x-cluster-id": "_MULTI_"}
# Concurrent senders, the same at every cluster count: a fleet's agents send at once (margay's group commit
# amortizes concurrent batches only when they arrive together); 4, one host's worth, under-states a fleet.
CLIENTS = 32


def flow_key(log_type: str) -> Callable[[bytes], bytes]:
    """A record's flow key as bytes: the values of the fields its type's roll-up groups by, cluster apart (a
    type without a roll-up: the whole record). Records with the same key make one roll-up row per hour."""
    lt = REGISTRY.get(log_type)
    dims = [d for d in lt.rollup.dims if d != "cluster"] if lt is not None and lt.rollup is not None else []
    if not dims:
        return lambda line: line

    def key(line: bytes) -> bytes:
        rec = orjson.loads(line)
        return orjson.dumps([rec.get(d) for d in dims])
    return key


def by_type(batches: Iterator[Batch]) -> Iterator[Batch]:
    """A day's batches at a time, reordered so each log type's come together (the simulator yields DNS and audit
    cluster by cluster, type after type): the dealing then sends one batch per cluster, type and day, not one per
    simulated cluster. Holds one day of the batches given (DNS and audit: ~25 MB)."""
    day: list[Batch] = []
    for b in batches:
        if day and b.day != day[0].day:
            yield from sorted(day, key=lambda x: x.log_type)  # stable: each type's batches keep their order
            day = []
        day.append(b)
    yield from sorted(day, key=lambda x: x.log_type)


def fleet_batches(batches: Iterator[Batch], clusters: int, held_max: int = 200_000) -> Iterator[Batch]:
    """The same records dealt out by flow to `clusters` clusters: a record goes to the cluster a stable hash
    (CRC-32) of its flow key picks, the same on every run and day; each cluster's lines go out in batches of at
    most BATCH records, when the type's day ends or when `held_max` lines are held (the bench's memory bound:
    ~300 MB of flow lines)."""
    names = [f"fleet-{i:04d}" for i in range(1, clusters + 1)]
    lanes: list[list[bytes]] = [[] for _ in names]
    held: tuple[str, str] | None = None
    n = 0

    def flush(key: tuple[str, str]) -> Iterator[Batch]:
        for name, lines in zip(names, lanes, strict=True):
            for i in range(0, len(lines), BATCH):
                yield Batch(key[0], name, key[1], b"\n".join(lines[i:i + BATCH]) + b"\n")
            lines.clear()

    for b in batches:
        key = (b.log_type, b.day)
        if held is not None and key != held:
            yield from flush(held)
            n = 0
        held = key
        fkey = flow_key(b.log_type)
        for line in b.body.split(b"\n"):
            if line.strip():
                lanes[zlib.crc32(fkey(line)) % clusters].append(line)
                n += 1
                if n % held_max == 0:  # the bench's memory bound: a day of more lines goes out in rounds
                    yield from flush(key)
    if held is not None:
        yield from flush(held)


def settled(target: MargayTarget, wait: float = 60.0, rounds: int = 10) -> int:
    """settle(), then again `wait` seconds later until the store's folders and files stay the same across a
    round: on a loaded machine the compactor may begin merging a fleet's cold partitions only after settle's
    quiet window (a full run measured 993 folders and 4,402 files at 1,000 clusters, where the store settles
    to 15 and 18, and timed the compaction as the questions' CPU). Returns the rounds taken."""
    target.settle()
    seen = target.folders()
    for i in range(1, rounds + 1):
        time.sleep(wait)
        target.settle()
        now = target.folders()
        if now == seen:
            return i
        seen = now
    raise RuntimeError(f"the store's folders and files still change after {rounds} settle rounds: {seen}")


def store_state(target: MargayTarget) -> tuple[Any, ...]:
    """(merges made, roll-ups built, store folders, data files): what must not change while questions are timed."""
    return (*target.compaction()[:2], *target.folders())


def still_settled(target: MargayTarget, seen: tuple[Any, ...], clusters: int) -> None:
    """Refuse a count's figures when the store changed while its questions ran (a merge or roll-up made, folders
    or files changed): their CPU would be the compactor's. settled() waits for a store that stays the same; this
    checks, in every mode, that it did until the last question (a full run's unsettled questions were timed
    during 1,000 clusters' merges)."""
    now = store_state(target)
    if now != seen:
        raise RuntimeError(f"the store of {clusters} clusters changed while its questions ran (merges, roll-ups, "
                           f"folders, files: {seen} before, {now} after): its figures are void")


def overview_calls() -> list[tuple[str, dict[str, Any]]]:
    """The overview page's data calls (web/static/overview.js and changes.js), over its default 3 h range."""
    rng = {"from": (END - timedelta(hours=3)).isoformat(), "to": END.isoformat()}
    fi = "300s"  # interval(60) for 3 h
    time_of = {"flows": "end_time", "dns": "end_time", "audit": "requestReceivedTimestamp", "bgp": "logtime",
               "events": "time", "l7": "end_time"}
    path = {"flows": "flows/logs", "dns": "dns/logs", "audit": "audit/logs", "bgp": "bgp/logs", "l7": "l7/logs",
            "events": "events"}

    def agg(t: str, aggs: dict[str, Any], selector: str = "", **extra: Any) -> tuple[str, dict[str, Any]]:
        body = {"time_range": rng, "aggregations": aggs, "all_clusters": True, **extra}
        if selector:
            body["selector"] = selector
        return f"/api/v1/{path[t]}/aggregation", body

    calls = [agg(t, {"t": {"date_histogram": {"field": time_of[t], "fixed_interval": fi}}}) for t in time_of]
    flows_sum = {"f": {"sum": {"field": "num_flows"}}}
    calls += [agg("flows", {"a": {"terms": {"field": "action"}, "aggs": flows_sum}}),
              agg("flows", {"t": {"date_histogram": {"field": "end_time", "fixed_interval": fi}, "aggs": flows_sum}},
                  'action = "deny"')]
    io = {"i": {"sum": {"field": "bytes_in"}}, "o": {"sum": {"field": "bytes_out"}}}
    calls += [agg("flows", {"k": {"terms": {"field": k, "size": 200}, "aggs": io}}, 'reporter = "src"')
              for k in ("source_namespace", "dest_name_aggr")]
    calls += [agg("flows", {"k": {"terms": {"field": k, "size": 8}}}, 'action = "deny"')
              for k in ("source_name_aggr", "dest_namespace")]
    count = {"c": {"sum": {"field": "count"}}}
    calls += [agg("dns", {"k": {"terms": {"field": "qname", "size": 200}, "aggs": count}},
                  'qname NOTIN {"*.cluster.local", "*.svc", "*.local"}'),
              agg("dns", {"k": {"terms": {"field": "rcode", "size": 10}, "aggs": count}}),
              agg("dns", {"t": {"date_histogram": {"field": "end_time", "fixed_interval": fi},
                                "aggs": {"m": {"avg": {"field": "latency_mean"}}, "x": {"max": {"field": "latency_max"}}}}}),
              agg("l7", {"k": {"terms": {"field": "dest_service_name", "size": 200}, "aggs": count}}),
              agg("l7", {"k": {"terms": {"field": "response_code", "size": 20}, "aggs": count}}),
              agg("l7", {"t": {"date_histogram": {"field": "end_time", "fixed_interval": fi},
                               "aggs": {"m": {"avg": {"field": "duration_mean"}}, "x": {"max": {"field": "duration_max"}}}}})]
    calls += [agg("audit", {"k": {"terms": {"field": k, "size": 8}}}, type="any")
              for k in ("verb", "user.username", "objectRef.resource")]
    calls.append(("/api/v1/audit/logs", {"time_range": rng, "type": "any", "all_clusters": True, "max_page_size": 500,
                                         "selector": 'verb IN {"create", "update", "patch", "delete"} AND '
                                                     'objectRef.resource NOTIN {"pods", "events", "leases"}',
                                         "sort": [{"field": "requestReceivedTimestamp", "descending": True}]}))
    bgp = 'message IN {"*State changed*", "*state changed*"}'
    calls += [agg("bgp", {"k": {"terms": {"field": "host", "size": 10},
                                "aggs": {"t": {"date_histogram": {"field": "logtime", "fixed_interval": fi}}}}}, bgp),
              agg("events", {"s": {"terms": {"field": "severity", "size": 20, "order": {"_key": "desc"}},
                                   "aggs": {"t": {"terms": {"field": "type", "size": 5}}}}}, "dismissed = false")]
    return calls


def questions() -> dict[str, Callable[[httpx.Client], Any]]:
    day = {"from": (END - timedelta(hours=24)).isoformat(), "to": END.isoformat()}
    week = {"from": (END - timedelta(days=7)).isoformat(), "to": END.isoformat()}

    def post(path: str, body: dict[str, Any]) -> Callable[[httpx.Client], Any]:
        def run(http: httpx.Client) -> Any:
            return http.post(path, json={**body, "all_clusters": True}, headers=MULTI).raise_for_status().json()
        return run

    def indices(http: httpx.Client) -> int:
        size = 0
        params: dict[str, str] = {}
        while True:
            r = http.get("/api/v1/indices", params=params).raise_for_status()
            size += len(r.content)
            page = r.json()
            if "after" not in page:
                return size
            params = {"after": page["after"]}

    def first_page(path: str, params: dict[str, str]) -> Callable[[httpx.Client], int]:
        def run(http: httpx.Client) -> int:
            return len(http.get(path, params=params).raise_for_status().content)
        return run

    def overview(http: httpx.Client) -> Any:
        return [http.post(path, json=body, headers=MULTI).raise_for_status().json() for path, body in overview_calls()]

    return {"search": post("/api/v1/flows/logs", {"time_range": day, "max_page_size": 100,
                                                   "sort": [{"field": "end_time", "descending": True}]}),
            "topdest": post("/api/v1/flows/logs/aggregation", {"time_range": week, "aggregations": {
                "dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}},
                         "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}),
            "flowgraph": post("/api/v1/flows/graph", {"time_range": day}),
            # An all-cluster request that reads nothing (a minute without data): its fixed cost, which grows
            # with the clusters, apart from any question's own.
            "empty": post("/api/v1/flows/logs/aggregation", {"time_range": {
                "from": (END - timedelta(days=400)).isoformat(), "to": (END - timedelta(days=400, minutes=-1)).isoformat()},
                "aggregations": {"a": {"terms": {"field": "action"}}}}),
            "indices": indices,
            # The endpoint's first page at its default limit (MAX_INDICES, 10,000: no UI page calls it), and the
            # UI's fleet call: the cluster picker's first page (web/static/picker.js, 50 names).
            "indices_first": first_page("/api/v1/indices", {}),
            "clusters_page": first_page("/api/v1/clusters", {"limit": "50"}),
            "overview": overview}


def fleet(bench: Bench) -> dict[str, Any]:
    records, hours, counts = SIZES[bench.mode]
    if bench.sizes:
        records = bench.sizes[-1]
    runs = 8 if bench.quick else 20
    topo = topology()
    out: dict[str, Any] = {"fleet_clusters": counts}
    for n in counts:
        target = MargayTarget(bench.work_dir / f"fleet-{n}")
        target.start()
        try:
            sent = cpu = 0.0
            batches = 0
            t0 = time.perf_counter()
            source = fleet_batches(chain(flow_batches(topo, records), by_type(other_batches(topo, hours))), n)
            while part := list(islice(source, 256)):
                cpu0 = target.cpu()
                sent += target.ingest(part, CLIENTS)[0]
                cpu += target.cpu() - cpu0
                batches += len(part)
            ingest_wall = time.perf_counter() - t0
            bench.log(f"  fleet {n} clusters: {int(sent):,} records in {batches:,} batches, {ingest_wall:.0f} s wall, "
                      f"{cpu:.0f} server CPU-s; settling")
            t0, cpu0 = time.perf_counter(), target.cpu()
            out[f"fleet_settle_rounds_{n}"] = settled(target)
            out[f"fleet_batches_{n}"] = batches
            out[f"fleet_ingest_wall_s_{n}"] = round(ingest_wall, 1)
            out[f"fleet_settle_wall_s_{n}"] = round(time.perf_counter() - t0, 1)
            out[f"fleet_settle_cpu_s_{n}"] = round(target.cpu() - cpu0, 1)
            bench.log(f"  fleet {n} clusters: settled in {out[f'fleet_settle_wall_s_{n}']} s wall, "
                      f"{out[f'fleet_settle_cpu_s_{n}']} server CPU-s")
            stored = sum(target.count(t) for t in ("flows", "dns", "audit_kube"))
            assert stored == sent, f"margay holds {stored:,} of {sent:,} records over {n} clusters"
            folders, files = target.folders()
            out[f"fleet_records_{n}"] = int(sent)
            out[f"fleet_store_folders_{n}"] = folders
            out[f"fleet_store_files_{n}"] = files
            out[f"fleet_store_bytes_per_record_{n}"] = round(target.disk_bytes() / max(sent, 1), 2)
            out[f"fleet_ingest_cpu_s_per_million_{n}"] = round(cpu / max(sent, 1) * 1e6, 2)
            out[f"fleet_ingest_cpu_ms_per_batch_{n}"] = round(cpu * 1000 / max(batches, 1), 1)
            # The whole cost of storing a record until the store is settled: what one count's load does inside the
            # timed window (a fleet's hot day is merged in tiers while it still receives) the other may do after.
            out[f"fleet_ingest_and_settle_cpu_s_per_million_{n}"] = round(
                (cpu + out[f"fleet_settle_cpu_s_{n}"]) / max(sent, 1) * 1e6, 2)
            seen = store_state(target)
            with httpx.Client(base_url=target.url, timeout=600) as http:
                for name, q in questions().items():
                    for _ in range(2):
                        q(http)
                    walls: list[float] = []
                    cpu0 = target.cpu()
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        answer = q(http)
                        walls.append((time.perf_counter() - t0) * 1000)
                    out[f"fleet_cpu_ms_{name}_{n}"] = round((target.cpu() - cpu0) * 1000 / runs, 1)
                    out[f"fleet_p50_ms_{name}_{n}"] = round(percentile(walls, 0.5), 1)
                    out[f"fleet_p95_ms_{name}_{n}"] = round(percentile(walls, 0.95), 1)
                    bench.log(f"  fleet {n} clusters: {name} p50 {out[f'fleet_p50_ms_{name}_{n}']} ms, "
                              f"{out[f'fleet_cpu_ms_{name}_{n}']} CPU-ms")
                    if name in ("indices", "indices_first", "clusters_page"):
                        out[f"fleet_{name}_bytes_{n}"] = answer
                    if name == "overview":
                        out["fleet_overview_calls"] = len(answer)
            still_settled(target, seen, n)
            out[f"fleet_store_unchanged_by_questions_{n}"] = True
            bench.log(f"  fleet {n} clusters: {folders} folders, {files} files, ingest "
                      f"{out[f'fleet_ingest_cpu_s_per_million_{n}']} CPU-s/M, search p50 {out[f'fleet_p50_ms_search_{n}']} "
                      f"ms, topdest {out[f'fleet_p50_ms_topdest_{n}']}, graph {out[f'fleet_p50_ms_flowgraph_{n}']}, "
                      f"overview {out[f'fleet_p50_ms_overview_{n}']}")
        finally:
            target.stop()
    lo, hi = counts
    for name in questions():
        for kind in ("p50", "cpu"):
            a, b = out[f"fleet_{kind}_ms_{name}_{lo}"], out[f"fleet_{kind}_ms_{name}_{hi}"]
            # CPU is read in clock ticks (10 ms) over the runs: a figure under a tick per run has no ratio.
            out[f"fleet_ratio_{kind}_{name}_{hi}_vs_{lo}"] = round(b / a, 2) if a >= 10 / runs else None
    for what in ("ingest", "ingest_and_settle"):
        out[f"fleet_ratio_{what}_cpu_{hi}_vs_{lo}"] = round(
            out[f"fleet_{what}_cpu_s_per_million_{hi}"] / max(out[f"fleet_{what}_cpu_s_per_million_{lo}"], 1e-9), 2)
    out["notes"] = (f"The same records (the query scenario's flows, {records:,} of them, with {hours} h of DNS and "
                    f"Kubernetes audit) dealt out by flow to {lo} and to {hi} clusters (a CRC-32 of the fields the "
                    "type's roll-up groups by, cluster apart, picks a record's cluster: a flow's records all belong "
                    "to one cluster; audit, without a roll-up, by the whole record), one batch per cluster, "
                    "type and day (at most 10,000 records; a day of more than 200,000 lines in several rounds), "
                    f"{CLIENTS} concurrent clients at either count (fleet_ingest_cpu_ms_per_batch_*: server CPU-ms per "
                    "batch); server CPU-s per million records over the ingest alone, and with the settling after it "
                    "(fleet_ingest_and_settle_*: the whole cost of a record until the store is settled). After "
                    "compaction settled (merged files "
                    "deleted; settled again 60 s later until the folders and files stay the same: "
                    "fleet_settle_rounds_*; checked unchanged after the last question - merges, roll-ups, folders, "
                    "files - or the run fails: fleet_store_unchanged_by_questions_*): store folders and data files on "
                    f"disk, then {runs} timed runs after 2 warm-ups of each question over all clusters "
                    "(x-cluster-id _MULTI_, all_clusters): search: 1 page of 100 flows, 24 h, newest first; "
                    "topdest: top 10 destinations by bytes, 7 d; flowgraph: the flow visualizer's 24 h graph; "
                    "empty: an all-cluster aggregation over a minute without data (an all-cluster request's fixed "
                    "cost); "
                    "indices: GET /api/v1/indices, every page (fleet_indices_bytes_*: the bytes of all pages); "
                    "indices_first: its first page at the default limit (10,000); clusters_page: GET "
                    "/api/v1/clusters?limit=50, the UI cluster picker's first page; "
                    "overview: the overview page's data calls one after another over its default 3 h range "
                    "(fleet_overview_calls of them). p50/p95 wall ms and server CPU-ms per run. Targets (issue 25): "
                    "each query and the overview at the larger count within 2x of the smaller, ingest CPU within "
                    "1.3x.")
    return out
