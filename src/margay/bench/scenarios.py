"""The scenarios, each run on margay (embedded) and on a real OpenSearch node with the same data.

- ingest: simulated Felix flows through each system's bulk API, 1/4/16 clients, durable acknowledgement.
- storage: bytes on disk per flow, DNS and audit record.
- query: p50/p95 of five questions at growing data sizes.
- memory: peak RSS of the servers.
- mixed: sustained ingest at half the measured maximum with 10 query clients; errors, p95, RSS over time.
- aggregate, agent, forward, ui: the side paths' own measurements.
- hostile: a batch built for the per-line slow path against a good one of the same size (bench/hostile.py).
- peers: margay beside ClickHouse (chDB), VictoriaLogs and OpenSearch on the same flows, two data variants
  (bench/peers.py).
- fleet, rbac: one store for 10 and 1,000 clusters, and RBAC over 1,000 clusters (bench/fleet.py, bench/rbac.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import httpx

from .data import END, Batch, flow_batches, flow_start, other_batches, topology
from .fleet import fleet
from .harness import Bench, peak_rss_mib, percentile
from .profile import profiled
from .rbac import rbac
from .targets import MargayTarget, OpenSearchTarget

# Both systems. OpenSearch loads 12-23k flow records/s here (bulk-load settings), so 10 M and 50 M take ~1 h 45 min: `large`.
SIZES = {"quick": [40_000, 120_000], "full": [1_000_000, 2_000_000], "large": [10_000_000, 50_000_000]}
SCALE = {"quick": [300_000], "full": [5_000_000, 10_000_000], "large": [10_000_000, 50_000_000]}  # margay alone


def _targets(bench: Bench, tag: str, *, bulk_load: bool = False) -> list[Any]:
    return [MargayTarget(bench.work_dir / f"{tag}-margay"),
            OpenSearchTarget(bench.work_dir / f"{tag}-opensearch", bulk_load=bulk_load)]


def ingest(bench: Bench) -> dict[str, Any]:
    topo = topology()
    records = 40_000 if bench.quick else 500_000
    batches = list(flow_batches(topo, records))
    n_records = sum(b.records for b in batches)
    out: dict[str, Any] = {"ingest_records": n_records,
                           "ingest_ndjson_bytes_per_record": round(sum(len(b.body) for b in batches) / n_records, 1)}
    for kind in (MargayTarget, OpenSearchTarget):
        best = 0.0
        for clients in (1, 4, 16):
            target = kind(bench.work_dir / f"ingest-{kind.name}")  # a fresh, empty store per client count
            target.start()
            try:
                cpu0 = target.cpu()
                n, seconds = target.ingest(batches, clients)
                cpu = target.cpu() - cpu0
                out[f"ingest_rss_mib_{target.name}_{clients}c"] = round(target.rss(), 1)
            finally:
                target.stop()
            assert n == n_records, f"{target.name} stored {n} of {n_records}"
            rps = n / seconds
            best = max(best, rps)
            out[f"ingest_rps_{target.name}_{clients}c"] = round(rps)
            out[f"ingest_cpu_s_per_million_{target.name}_{clients}c"] = round(cpu / n * 1e6, 2)
            bench.log(f"  {target.name:<10} {clients:>2} clients: {rps:,.0f} records/s, "
                      f"{cpu / n * 1e6:.1f} server CPU s per million")
        out[f"ingest_rps_{kind.name}"] = round(best)
    out.update(_small_batches(bench, batches))
    # The profile comes from one more margay run, untimed: py-spy pauses the process at every sample.
    target = MargayTarget(bench.work_dir / "ingest-margay").start()
    try:
        with profiled(bench, "ingest-margay-4c", target.pid):
            target.ingest(batches, 4)
    finally:
        target.stop()
    out["ingest_ratio_margay_vs_opensearch"] = round(out["ingest_rps_margay"] / out["ingest_rps_opensearch"], 2)
    out["notes"] = (f"{n_records:,} simulated level-0 Felix flow records ({out['ingest_ndjson_bytes_per_record']:.0f} "
                    "bytes of NDJSON each) in gzip batches of 10,000, posted over loopback to margay's bulk API and "
                    "to OpenSearch's _bulk (with Calico's daily indices and margay's generated template, then a "
                    "refresh); each system on a fresh store per client count; the load generator shares the cores. margay's "
                    "profile is of a fourth, untimed run at 4 clients. ingest_*_batch10: the first "
                    f"{SMALL_BATCH_RECORDS:,} of the same records in batches of 10 from 16 clients (many agents' small "
                    "batches: the fixed cost of a batch), beside the 10,000-record batches at 16 clients.")
    return out


SMALL_BATCH_RECORDS = 20_000


def _small_batches(bench: Bench, batches: list[Batch]) -> dict[str, Any]:
    """Server CPU per million records and per batch when the same records come in batches of 10."""
    small: list[Batch] = []
    for b in batches:
        lines = [x for x in b.body.split(b"\n") if x.strip()]
        small += [Batch(b.log_type, b.cluster, b.day, b"\n".join(lines[i:i + 10])) for i in range(0, len(lines), 10)]
    small = small[:SMALL_BATCH_RECORDS // 10]
    target = MargayTarget(bench.work_dir / "ingest-margay-batch10").start()
    try:
        cpu0 = target.cpu()
        n, seconds = target.ingest(small, 16)
        cpu = target.cpu() - cpu0
    finally:
        target.stop()
    assert n == sum(b.records for b in small), f"margay stored {n} of {sum(b.records for b in small)}"
    bench.log(f"  margay     16 clients, batches of 10: {n / seconds:,.0f} records/s, "
              f"{cpu / n * 1e6:.1f} server CPU s per million, {cpu / len(small) * 1e3:.2f} ms per batch")
    return {"ingest_rps_margay_batch10": round(n / seconds),
            "ingest_cpu_s_per_million_margay_batch10": round(cpu / n * 1e6, 2),
            "ingest_cpu_ms_per_batch_margay_batch10": round(cpu / len(small) * 1e3, 2)}


def _load(target: Any, batches: list[Batch] | Any, chunk: int = 64) -> int:
    total = 0
    it = iter(batches)
    while True:
        part = list(islice(it, chunk))
        if not part:
            return total
        n, _ = target.ingest(part, 2)
        total += n


def query(bench: Bench) -> dict[str, Any]:
    topo = topology()
    out: dict[str, Any] = {}
    runs = 8 if bench.quick else 20
    sizes = bench.sizes or SIZES[bench.mode]
    for target in _targets(bench, "query", bulk_load=True):
        target.start()
        try:
            _load(target, list(other_batches(topo, 24 * 7 if not bench.quick else 6)))
            for size, loaded in _grow(target, topo, sizes, end=END, chunk=32):
                label = _size_label(size)
                for name, q in target.queries().items():
                    cpu0 = target.cpu()
                    timings = _time(q, target.url, runs)
                    # The server's CPU per query (the timed runs and their 2 warm-ups), beside the wall times.
                    out[f"query_cpu_ms_{name}_{label}_{target.name}"] = round(
                        (target.cpu() - cpu0) * 1000 / (runs + 2), 1)
                    _time_then_profile(bench, f"query-{name}-{label}-margay", target, q, runs,
                                       enabled=target.name == "margay" and size == sizes[-1], timed=False)
                    out[f"query_p50_ms_{name}_{label}_{target.name}"] = round(percentile(timings, 0.5), 1)
                    out[f"query_p95_ms_{name}_{label}_{target.name}"] = round(percentile(timings, 0.95), 1)
                bench.log(f"  {target.name}: queries at {loaded:,} flow records done")
                out[f"records_{label}"] = loaded
            for kind in ("flows", "dns", "audit_kube"):  # storage, on the same data
                key = "flow" if kind == "flows" else kind.split("_")[0]
                out[f"bytes_per_{key}_{target.name}"] = round(target.bytes_per_record(kind), 2)
            out[f"rss_after_queries_mib_{target.name}"] = round(target.rss(), 1)
            out[f"rss_peak_mib_{target.name}"] = round(peak_rss_mib(target.pid), 1)
        finally:
            target.stop()
    label = _size_label(sizes[-1])
    for name in ("flowgraph", "search", "topdest", "audit", "dnstop", "processes"):
        m = out.get(f"query_p95_ms_{name}_{label}_margay")
        o = out.get(f"query_p95_ms_{name}_{label}_opensearch")
        if m and o:
            out[f"query_p95_ratio_{name}_{label}_opensearch_vs_margay"] = round(o / m, 2)
        # Unsuffixed names (the latest.json contract): the largest size.
        out[f"query_p95_ms_{name}_margay"] = out.get(f"query_p95_ms_{name}_{label}_margay")
        out[f"query_p95_ms_{name}_opensearch"] = out.get(f"query_p95_ms_{name}_{label}_opensearch")
    out["records"] = out.get(f"records_{label}", 0)
    out["bytes_per_flow_ratio_opensearch_vs_margay"] = round(
        out["bytes_per_flow_opensearch"] / max(out["bytes_per_flow_margay"], 1e-9), 1)
    out["rss_peak_mib_margay"] = out.get("rss_peak_mib_margay")
    out["notes"] = (f"p50/p95 over {runs} runs after 2 warm-ups, at {', '.join(f'{s:,}' for s in sizes)} flow records. "
                    "flowgraph: the flow visualizer's 24 h namespace graph, edges by action with bytes and flows (margay: "
                    "POST /api/v1/flows/graph; OpenSearch: nested terms aggregations); search: 3 pages of 100 flows, namespace + action + "
                    "24 h, newest first; topdest: top 10 destinations by bytes over 7 days; audit: audit search by "
                    "user and verb; dnstop: top 10 DNS domains; processes: Linseed's process list over 24 h (margay: POST "
                    "/api/v1/processes; OpenSearch: Linseed's own terms aggregations). query_cpu_ms_*: the server's CPU per "
                    "query. OpenSearch runs with request_cache=false. "
                    "margay's profiles (py-spy, largest size) come from further runs after the timed ones. "
                    "Storage (bytes_per_*): on the same data after compaction (margay: Parquet partitions) and after "
                    "flush + force-merge to one segment (OpenSearch: store.size).")
    return out


def _grow(target: Any, topo: Any, sizes: list[int], *, end: datetime, chunk: int) -> Iterator[tuple[int, int]]:
    """Grow the stored flows to each size in turn, newest first: each step adds the flows of the time just
    before what is stored, so the last day holds the same records at every size and only older days grow
    (as a store does under retention). After each step compaction settles and the stored count is checked;
    yields (size, records stored)."""
    loaded = 0
    for size in sizes:
        if size > loaded:
            gen = flow_batches(topo, size - loaded, end=end)
            end = flow_start(topo, size - loaded, end)
            while part := list(islice(gen, chunk)):
                loaded += _load(target, part)
        target.settle()
        stored = target.count("flows")
        assert stored == loaded, f"{target.name} holds {stored:,} flow records, {loaded:,} were sent"
        yield size, loaded


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 else f"{n // 1000}k"


def _time_then_profile(bench: Bench, name: str, target: Any, q: Any, runs: int, *, enabled: bool,
                       timed: bool = True) -> list[float]:
    """Timings with no profiler attached (py-spy --native stops the process at every sample: attached, it
    doubled some p95s), then a few more runs under py-spy for the flame graph (`timed`: False when the
    caller timed them itself)."""
    timings = _time(q, target.url, runs) if timed else []
    if enabled:
        with profiled(bench, name, target.pid):
            _time(q, target.url, max(3, runs // 4))
    return timings


def _time(q: Any, url: str, runs: int) -> list[float]:
    timings = []
    with httpx.Client(base_url=url, timeout=600) as http:
        for i in range(runs + 2):
            started = time.perf_counter()
            q(http)
            if i >= 2:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def mixed(bench: Bench) -> dict[str, Any]:
    """Sustained ingest at half the maximum with 10 query clients; RSS sampled over time."""
    topo = topology()
    duration = 30 if bench.quick else 600
    target = MargayTarget(bench.work_dir / "mixed-margay").start()
    out: dict[str, Any] = {}
    try:
        warm = list(flow_batches(topo, 100_000))
        n, seconds = target.ingest(warm, 4)
        rate = n / seconds / 2  # half the measured maximum
        stop = threading.Event()
        errors: list[str] = []
        latencies: list[float] = []
        rss: list[tuple[float, float]] = []
        gen = flow_batches(topo, 10**9)
        started = time.monotonic()

        def writer() -> None:
            sent = 0
            while not stop.is_set():
                part = list(islice(gen, 2))
                try:
                    sent += target.ingest(part, 1)[0]
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(f"ingest: {exc}")
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)

        def reader() -> None:
            qs = list(target.queries().values())
            with httpx.Client(base_url=target.url, timeout=600) as http:
                i = 0
                while not stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        qs[i % len(qs)](http)
                        latencies.append((time.perf_counter() - t0) * 1000)
                    except Exception as exc:  # noqa: BLE001 - counted
                        errors.append(f"query: {exc}")
                    i += 1

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(10)]
        for t in threads:
            t.start()
        while time.monotonic() - started < duration:
            rss.append((round(time.monotonic() - started, 1), round(target.rss(), 1)))
            time.sleep(max(1.0, duration / 60))
        measured = list(latencies)
        peak = peak_rss_mib(target.pid)
        # Then a short tail under py-spy for the profile, outside the figures (it stops the process to sample).
        with profiled(bench, "mixed-margay", target.pid):
            stop.wait(10 if bench.quick else 30)
        stop.set()
        for t in threads:
            t.join()
        third = max(1, len(rss) // 3)
        out.update({"mixed_seconds": duration, "mixed_ingest_rate_target": round(rate),
                    "mixed_errors": len(errors), "mixed_queries": len(measured),
                    "mixed_query_p95_ms": round(percentile(measured, 0.95), 1),
                    "mixed_rss_first_third_mib": round(max(r for _, r in rss[:third]), 1),
                    "mixed_rss_last_third_mib": round(max(r for _, r in rss[-third:]), 1),
                    "mixed_rss_peak_mib": round(peak, 1)})
        out["mixed_rss_timeline"] = rss
        out["notes"] = (f"{duration} s of ingest at half the measured maximum ({rate:,.0f} records/s target) with 10 "
                        "query clients cycling through the five questions; RSS sampled over time "
                        "(mixed_rss_timeline) — flat means the first and last thirds peak alike. The profile is "
                        "of a further 30 s, outside these figures (errors count the whole run).")
    finally:
        target.stop()
    return out


def aggregate(bench: Bench) -> dict[str, Any]:
    from ..aggregate import bench as aggregate_bench

    topo = topology()
    body = b"\n".join(b.body for b in flow_batches(topo, 30_000 if bench.quick else 400_000))
    raw = aggregate_bench(body)
    out: dict[str, Any] = {"aggregate_records_in": raw["records_in"]}
    for level, r in raw["levels"].items():
        out[f"aggregate_level{level}_records_out"] = r["records_out"]
        out[f"aggregate_level{level}_reduction"] = r["reduction"]
        out[f"aggregate_level{level}_rps"] = r["records_per_s"]
        out[f"aggregate_level{level}_cpu_s"] = r["cpu_s"]
    out["notes"] = ("Felix aggregation levels over simulated level-0 flows: record reduction, records/s in (wall) "
                    "and the process's CPU seconds per level (aggregate_level*_cpu_s, every thread).")
    return out


def agent(bench: Bench) -> dict[str, Any]:
    """`margay agent` (a real process) shipping a flows.log to a real server: lines/s, CPU s per 10k flows,
    lines per CPU-second, peak RSS; and the drain rate of the backlog a server outage left in the spool."""
    from ..agent import bench as agent_bench

    outage = 10.0 if bench.quick else 60.0
    rate = 1000.0 if bench.quick else 3000.0
    out = agent_bench(lines=30_000 if bench.quick else 500_000, work_dir=bench.work_dir, outage=outage, rate=rate)
    out["notes"] = (f"margay agent tailing a {out['agent_lines']:,}-line flows.log into a margay server on the same "
                    "machine; CPU (wait4) and peak RSS (VmHWM) are the agent process's own, wall time from its start to the "
                    "last ack, which includes the server's work (agent_server_cpu_s: the server's CPU meanwhile). "
                    f"Drain: the server down for {outage:.0f} s while Felix writes {rate:,.0f} lines/s (spooled "
                    "in 0.2 s batches), then the server starts: agent_drain_reconnect_s until the first ack (retry backoff), "
                    "agent_drain_lines_per_s from the first ack to the last (agent_drain_vs_live: that / the live "
                    "rate), agent_drain_lines_per_s_incl_reconnect from the server's start.")
    return out


def scale(bench: Bench) -> dict[str, Any]:
    """margay alone at larger sizes: the 24-hour flow queries, and the UI's first render in Chromium."""
    from ..web import bench as ui_bench

    topo = topology()
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    target = MargayTarget(bench.work_dir / "scale-margay").start()
    out: dict[str, Any] = {}
    runs = 8 if bench.quick else 20
    try:
        for size, loaded in _grow(target, topo, SCALE[bench.mode], end=end, chunk=16):
            label = _size_label(size)
            body = {"time_range": {"from": "now-24h", "to": "now"}, "max_page_size": 1000}
            timings = _time_then_profile(
                bench, f"scale-l3flows-{label}-margay", target,
                lambda http, b=body: http.post("/api/v1/flows", json=b).raise_for_status(), runs,
                enabled=size == SCALE[bench.mode][-1])
            out[f"l3flows_24h_p50_ms_{label}"] = round(percentile(timings, 0.5), 1)
            out[f"l3flows_24h_p95_ms_{label}"] = round(percentile(timings, 0.95), 1)
            graph = {"time_range": {"from": "now-24h", "to": "now"}}
            timings = _time(lambda http, b=graph: http.post("/api/v1/flows/graph", json=b).raise_for_status(),
                            target.url, runs)
            out[f"flowgraph_24h_p95_ms_{label}"] = round(percentile(timings, 0.95), 1)
            out[f"scale_records_{label}"] = loaded
            out[f"bytes_per_flow_margay_{label}"] = round(target.bytes_per_record("flows"), 2)
            bench.log(f"  margay: {loaded:,} flow records, L3 flows p95 {out[f'l3flows_24h_p95_ms_{label}']} ms")
        ui = ui_bench(target.url, None, time_range="now-24h", runs=3, cpu=target.cpu)
        out.update({f"ui_{k}": v for k, v in ui.items() if isinstance(v, int | float)})
        out["scale_rss_peak_mib"] = round(peak_rss_mib(target.pid), 1)
    finally:
        target.stop()
    out["notes"] = (f"margay alone, {', '.join(f'{s:,}' for s in SCALE[bench.mode])} level-0 flow records ending "
                    "now: POST /api/v1/flows (page of 1000) and POST /api/v1/flows/graph over the last 24 h, and "
                    "the web UI's time to first render (overview, flow visualizer) in Chromium (ui_*, seconds), with the "
                    "server's CPU per render (ui_*_server_cpu_s) and the API calls each page made (ui_*_api_calls).")
    return out


def forward(bench: Bench) -> dict[str, Any]:
    from .forwarding import bench as forward_bench

    raw = forward_bench(records=5_000 if bench.quick else 50_000, work_dir=bench.work_dir)
    out: dict[str, Any] = {"forward_records": raw["stored"]}
    for store in ("s3", "syslog", "splunk"):
        if isinstance(raw.get(store), dict):
            out[f"forward_rps_{store}"] = raw[store]["records_per_s"]
            out[f"forward_retries_{store}"] = raw[store]["retries"]
            out[f"forward_cpu_s_{store}"] = raw[store]["cpu_s"]
    out["notes"] = ("Delivery throughput per store (records/s) from an empty cursor to the real peers: SeaweedFS "
                    "(S3), rsyslog (TCP), an OpenTelemetry Collector splunk_hec receiver. forward_cpu_s_*: the "
                    "bench process's CPU seconds while that store delivered (forwarder, store reads, the sink's "
                    "client; the peers are processes of their own).")
    return out


def hostile(bench: Bench) -> dict[str, Any]:
    from .hostile import hostile as run

    return run(bench)


def detect(bench: Bench) -> dict[str, Any]:
    """The detector on the embedded store: a 100,000-entry IP feed matched while ingesting 100,000 flows, and
    GlobalAlerts with aggregateBy over the last 24 h (quick: of those flows; full: of 10 M flows in
    24 h, or `--sizes`' largest count)."""
    from ..detect.bench import alert_bench, day_of_flows
    from ..detect.bench import bench as detect_bench

    end = END
    records = 100_000  # the matching part, in both modes: its figures are per search and per ingested record
    out = detect_bench(list(flow_batches(topology(), records, end=end)), end, work_dir=bench.work_dir,
                       alerts=bench.quick)
    if not bench.quick:
        flows = bench.sizes[-1] if bench.sizes else 10_000_000
        # a topology that makes `flows` level-0 records in 24 h (~510 records per namespace and 5 minutes),
        # one hour rendered and repeated in bulk, stored in 50,000-record batches
        topo = topology(max(1, -(-flows // (288 * 505))))
        out |= alert_bench(day_of_flows(topo, flows, end=end), end, work_dir=bench.work_dir, log=bench.log)
    out["notes"] = ("detect_alert_<name>_24h_*: GlobalAlerts over the last 24 h of detect_alert_flows flows (quick: "
                    "detect_records), p50/p95 wall of 5 and mean CPU (the process, engine threads included): "
                    "ns_pair_sum = action = allow, aggregateBy source_namespace, dest_namespace, sum bytes_out; "
                    "ns_port_count = aggregateBy source_namespace, dest_port, count. detect_ingest_*: the flows "
                    "ingested through Backend.ingest alone, then with a thread matching a 100,000-entry IP feed (10 % "
                    "CIDRs) against the new records every 0.5 s (CPU loss: the whole process; moves with the "
                    "machine's load, which stretches ingest and so adds searches; 120 times the detector's cadence). "
                    "detect_seq_<minute|10k>_*: the same sequentially, matching's CPU measured apart from ingest's, "
                    "at the detector's cadence (a search a minute: detect_minute_records at this run's ingest rate, "
                    "all of them when more than the run's records: detect_seq_minute_window_records) and after "
                    "every 10,000 records. Full mode: the alerts' flows are one simulated hour repeated to 24 h "
                    "(bulk, times rewritten), stored through Backend.ingest in 50,000-record batches.")
    return out


def peers(bench: Bench) -> dict[str, Any]:
    from .peers import peers as run

    return run(bench)


def reports(bench: Bench) -> dict[str, Any]:
    """Compliance reports on the embedded store: a snapshot of 10,000 pods, and a network-access report over
    7 days of 10 M flows for 5,000 endpoints (`--sizes` sets the flow count when the full size cannot run)."""
    from ..reports.bench import bench as reports_bench
    from ..store.duckdb import DuckDBBackend

    flows = bench.sizes[-1] if bench.sizes else (100_000 if bench.quick else 10_000_000)
    pods, snap = (500, 1_000) if bench.quick else (5_000, 10_000)
    out = reports_bench(lambda path: DuckDBBackend(path), pods=pods, flows=flows, snapshot_pods=snap, end=END,
                        work_dir=bench.work_dir, log=bench.log)
    out["notes"] = ("reports_snapshot_*: a snapshot of N pods (with namespaces, services, policies) parsed from a "
                    "JSON dump, stored and read back; reports_network_access_*: reporter.run of a network-access "
                    "GlobalReport over 7 days (snapshot + 100 policy changes replayed, policies evaluated, flow "
                    "pairs grouped in the engine, the document stored); the steps are timed apart as "
                    "reports_timeline/evaluate/flow_pairs. *_cpu_s: the process's CPU seconds (all threads).")
    return out


SCENARIOS = {"ingest": ingest, "query": query, "scale": scale, "mixed": mixed, "aggregate": aggregate,
             "agent": agent, "forward": forward, "hostile": hostile, "detect": detect, "reports": reports,
             "peers": peers, "fleet": fleet, "rbac": rbac}
