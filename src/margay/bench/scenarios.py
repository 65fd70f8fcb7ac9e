"""The scenarios: end-to-end ingest through the bulk API, and the flow graph query over millions of flows."""

from __future__ import annotations

import gzip
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import httpx

from ..simulate import Topology, flows, ndjson_batches
from ..testing.server import ServerProcess
from .harness import Bench, cpu_seconds, percentile, rss_mib

END = datetime(2026, 11, 26, tzinfo=UTC)
BATCH = 10_000


def _topology() -> Topology:
    return Topology.build(7, clusters=["cluster", "app-cluster-1"], namespaces_per_cluster=40,
                          deployments_per_namespace=10)


def flow_batches(topo: Topology, hours: float, *, level: int = 0) -> Any:
    """NDJSON batches of simulated level-0 Felix flows over the `hours` before END, cluster by cluster."""
    start = END - timedelta(hours=hours)
    for cluster in topo.clusters:
        for body in ndjson_batches(flows(topo, cluster, start, END, level=level, denied_level=level), BATCH):
            yield cluster, body


def _post_all(url: str, batches: list[tuple[str, bytes]], clients: int) -> tuple[int, float]:
    """Post batches from `clients` threads (gzip, durable acknowledgement); (records, seconds)."""
    lock = threading.Lock()
    queue = list(enumerate(batches))
    sent = [0]

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    i, (cluster, body) = queue.pop()
                r = http.post("/api/v1/flows/logs/bulk", content=body,
                              headers={"content-type": "application/x-ndjson", "content-encoding": "gzip",
                                       "x-cluster-id": cluster, "idempotency-key": f"bench-{i}"})
                r.raise_for_status()
                with lock:
                    sent[0] += r.json()["succeeded"]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent[0], time.perf_counter() - started


def ingest(bench: Bench) -> dict[str, Any]:
    topo = _topology()
    hours = 0.75 if bench.quick else 3
    raw = list(flow_batches(topo, hours))
    records = sum(b.count(b"\n") for _, b in raw)
    batches = [(c, gzip.compress(b, 1)) for c, b in raw]
    bytes_per_record = sum(len(b) for _, b in raw) / records
    del raw
    out: dict[str, Any] = {"ingest_records": records, "ingest_ndjson_bytes_per_record": round(bytes_per_record, 1)}
    best = 0.0
    for clients in (1, 4, 16):
        data = bench.work_dir / f"ingest-{clients}"
        shutil.rmtree(data, ignore_errors=True)
        with ServerProcess(data, log=bench.work_dir / f"ingest-{clients}.log") as server:
            assert server.proc is not None
            cpu0 = cpu_seconds(server.proc.pid)
            n, seconds = _post_all(server.url, batches, clients)
            cpu = cpu_seconds(server.proc.pid) - cpu0
            rss = rss_mib(server.proc.pid)
            stored = httpx.get(server.url + "/api/v1/indices", timeout=60).json()["items"]
            disk = sum(i["bytes"] for i in stored)
        assert n == records, f"stored {n} of {records}"
        rps = n / seconds
        best = max(best, rps)
        out[f"ingest_rps_margay_{clients}c"] = round(rps)
        out[f"ingest_server_cpu_s_per_million_{clients}c"] = round(cpu / n * 1e6, 2)
        out[f"ingest_rss_mib_{clients}c"] = round(rss, 1)
        out["bytes_per_flow_margay"] = round(disk / n, 2)
        bench.log(f"  {clients:>2} clients: {rps:,.0f} records/s, {cpu / n * 1e6:.1f} CPU s per million")
    out["ingest_rps_margay"] = round(best)
    out["notes"] = (f"{records:,} simulated level-0 Felix flow records ({bytes_per_record:.0f} bytes of NDJSON each) "
                    f"in gzip batches of {BATCH:,} posted to `margay serve` (a separate process) with durable "
                    "acknowledgement; the load generator runs on the same cores.")
    return out


def query(bench: Bench) -> dict[str, Any]:
    topo = _topology()
    hours = 3 if bench.quick else 24
    data = bench.work_dir / "query"
    shutil.rmtree(data, ignore_errors=True)
    out: dict[str, Any] = {}
    with ServerProcess(data, log=bench.work_dir / "query.log") as server:
        assert server.proc is not None
        loaded = 0
        gen = flow_batches(topo, hours)
        while True:
            chunk = [(c, gzip.compress(b, 1)) for c, b in islice(gen, 8)]
            if not chunk:
                break
            n, _ = _post_all(server.url, chunk, 2)
            loaded += n
        bench.log(f"  loaded {loaded:,} flow records over {hours} h")
        time.sleep(6)  # let the compactor merge the small files, as it would in steady state
        body = {"time_range": {"from": (END - timedelta(hours=24)).isoformat(), "to": END.isoformat()},
                "max_page_size": 1000}
        timings = []
        runs = 10 if bench.quick else 30
        with httpx.Client(base_url=server.url, timeout=300) as http:
            for i in range(runs + 2):
                started = time.perf_counter()
                r = http.post("/api/v1/flows", json=body)
                r.raise_for_status()
                if i >= 2:  # the first two runs warm the caches
                    timings.append((time.perf_counter() - started) * 1000)
        out.update({"records": loaded, "query_p50_ms_l3flows_24h_margay": round(percentile(timings, 0.5), 1),
                    "query_p95_ms_l3flows_24h_margay": round(percentile(timings, 0.95), 1),
                    "rss_peak_mib_margay": round(rss_mib(server.proc.pid), 1),
                    "l3flows_items": len(r.json()["items"])})
        out["notes"] = (f"POST /api/v1/flows (aggregated L3 flows, page of 1000) over the last 24 h of "
                        f"{loaded:,} stored flow records in cluster `cluster`; {runs} timed runs after 2 warm-ups.")
    return out


def agent(bench: Bench) -> dict[str, Any]:
    """`margay agent` (a real process) shipping a flows.log to a real server: lines/s, CPU s per 10k flows."""
    from ..agent import bench as agent_bench

    out = agent_bench(lines=100_000 if bench.quick else 1_000_000, work_dir=bench.work_dir)
    out["notes"] = (f"margay agent tailing a {out['agent_lines']:,}-line flows.log into a margay server on the same "
                    "machine; CPU is the agent process's own (wait4), wall time from its start to the last ack.")
    return out


SCENARIOS = {"ingest": ingest, "query": query, "agent": agent}
