"""margay beside ClickHouse (embedded, through chDB), VictoriaLogs and OpenSearch on the same flows (`peers`
scenario).

Every system gets the same level-0 Felix flow records and answers the same four questions: a search (3 pages
of 100, one namespace + allow, 24 h, newest first), the denied flows of one namespace (1 page), the top 10
destinations by bytes over 7 days, and the flow visualizer's 24 h namespace graph. Each figure is the
server's CPU (ms per query, seconds per million records ingested) beside wall time: this machine is shared
and noisy, CPU is what the systems spend. Two data variants: the simulator's, and a high-cardinality one
(10x pods, distinct IPs and ports) so no figure depends on the simulator's regularity. The run fails unless
every system answered each question alike (peers_check).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..rig.victorialogs import VictoriaLogs
from .data import Batch, flow_batches, topology, tree_bytes
from .harness import Bench, cpu_seconds, percentile
from .peers_check import CLUSTER, DAY, WEEK, Question, disagreements, reduce
from .peers_opensearch import OpenSearchPeer
from .targets import MargayTarget, post_parallel

SIZES = {"quick": 100_000, "full": 2_000_000, "large": 10_000_000}


def high_cardinality(batches: Iterator[Batch], factor: int = 10) -> Iterator[Batch]:
    """The same flows with `factor` times the pods: each record's pods get one of `factor` replicas (name,
    IP) picked from its position, and the client port is spread over the ephemeral range."""
    n = 0
    for b in batches:
        out = []
        for line in b.body.split(b"\n"):
            if not line.strip():
                continue
            r = orjson.loads(line)
            n += 1
            k = (n * 2654435761) % factor
            for side in ("source", "dest"):
                if r.get(f"{side}_type") == "wep" and r.get(f"{side}_name") not in (None, "-"):
                    r[f"{side}_name"] = f"{r[f'{side}_name']}-r{k}"
                    ip = str(r.get(f"{side}_ip") or "10.0.0.0").split(".")
                    if len(ip) == 4:
                        r[f"{side}_ip"] = f"10.{(int(ip[1]) * factor + k) % 256}.{ip[2]}.{(int(ip[3]) * 7 + k) % 256}"
            r["source_port"] = 32768 + (n * 40503) % 28232
            out.append(orjson.dumps(r))
        yield Batch(b.log_type, b.cluster, b.day, b"\n".join(out))


class ClickHouseTarget:
    """ClickHouse embedded through chDB (in this process): CPU is this process's while it inserts or asks.

    The table: LowCardinality strings, ZSTD, a partition per day, sorted by cluster, namespaces, action and
    time; objects (labels, policies) kept as JSON strings. `projection` adds an aggregate projection per hour
    (namespaces, action, destination) like margay's roll-ups, and the aggregate questions are then asked on
    hour boundaries so ClickHouse can use it."""

    name = "clickhouse"
    LC = "LowCardinality(String)"
    COLUMNS = [
        ("cluster", LC), ("start_time", "DateTime"), ("end_time", "DateTime"),
        ("source_ip", "String"), ("source_name", LC), ("source_name_aggr", LC), ("source_namespace", LC),
        ("source_port", "Nullable(UInt16)"), ("source_type", LC), ("source_labels", "String"),
        ("dest_ip", "String"), ("dest_name", LC), ("dest_name_aggr", LC), ("dest_namespace", LC),
        ("dest_port", "Nullable(UInt16)"), ("dest_type", LC), ("dest_labels", "String"),
        ("dest_service_namespace", LC), ("dest_service_name", LC), ("dest_service_port", LC),
        ("dest_service_port_num", "Nullable(UInt16)"), ("dest_domains", "Array(String)"),
        ("nat_outgoing_ports", "Array(UInt16)"), ("proto", LC), ("action", LC), ("reporter", LC),
        ("policies", "String"), ("bytes_in", "UInt64"), ("bytes_out", "UInt64"), ("packets_in", "UInt64"),
        ("packets_out", "UInt64"), ("num_flows", "UInt32"), ("num_flows_started", "UInt32"),
        ("num_flows_completed", "UInt32"), ("http_requests_allowed_in", "UInt32"),
        ("http_requests_denied_in", "UInt32"), ("process_name", LC), ("num_process_names", "UInt32"),
        ("process_id", LC), ("num_process_ids", "UInt32"), ("process_args", "Array(String)"),
        ("num_process_args", "UInt32"), ("original_source_ips", "Array(String)"),
        ("num_original_source_ips", "UInt32"), ("host", LC), ("`@timestamp`", "UInt64"),
    ]

    def __init__(self, work: Path, *, bulk: bool = False, projection: bool = False) -> None:
        self.work = work
        self.bulk = bulk
        self.projection = projection
        self.variant = "bulk" if bulk else ("projection" if projection else "per_batch")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        self.sess: Any = None

    def config(self) -> dict[str, Any]:
        import chdb

        return {"engine": f"chDB {chdb.__version__} (ClickHouse {self.q('SELECT version()').strip()})",
                "table": "MergeTree, PARTITION BY toYYYYMMDD(end_time), ORDER BY (cluster, source_namespace, "
                         "dest_namespace, action, end_time), CODEC(ZSTD(3)) on every column, LowCardinality strings",
                "insert": "one INSERT of all records" if self.bulk else "one INSERT per 10,000-record batch",
                "projection": self.projection,
                "durability": "ClickHouse defaults (fsync_after_insert=0: an acknowledged insert is not fsync'd)"}

    def q(self, sql: str, fmt: str = "CSV", **params: Any) -> str:
        """One statement; values travel as ClickHouse query parameters (`{name:Type}`), never in the text."""
        return str(self.sess.query(sql, fmt, params=params or None))

    def start(self) -> ClickHouseTarget:
        from chdb import session

        self.sess = session.Session(str(self.work / "db"))
        cols = ", ".join(f"{n} {t} CODEC(ZSTD(3))" for n, t in self.COLUMNS)
        self.q("CREATE DATABASE IF NOT EXISTS bench")
        self.q(f"CREATE TABLE bench.flows ({cols}) ENGINE = MergeTree PARTITION BY toYYYYMMDD(end_time) "
               "ORDER BY (cluster, source_namespace, dest_namespace, action, end_time)")
        if self.projection:
            self.q("ALTER TABLE bench.flows ADD PROJECTION hourly (SELECT cluster, source_namespace, dest_namespace, "
                   "action, dest_name_aggr, toStartOfHour(end_time), sum(bytes_in), sum(num_flows) GROUP BY "
                   "cluster, source_namespace, dest_namespace, action, dest_name_aggr, toStartOfHour(end_time))")
        return self

    def ingest(self, batches: list[Batch]) -> tuple[int, float, float]:
        """(records, wall seconds, CPU seconds of this process) for the inserts alone."""
        names = ", ".join(n for n, _ in self.COLUMNS[1:])
        files: list[tuple[str, Path]] = []
        spool = self.work / "spool"
        spool.mkdir(exist_ok=True)
        for i, b in enumerate(batches):
            path = spool / f"{i:06d}-{b.cluster}.ndjson"
            path.write_bytes(b.body)
            files.append((b.cluster, path))
        if self.bulk:  # one INSERT per cluster of every file at once (a glob)
            groups: dict[str, list[Path]] = {}
            for cluster, path in files:
                groups.setdefault(cluster, []).append(path)
            work = [(c, str(spool / f"*-{c}.ndjson")) for c in groups]
        else:
            work = [(c, str(p)) for c, p in files]
        records = sum(b.records for b in batches)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        insert = (f"INSERT INTO bench.flows (cluster, {names}) SELECT {{cluster:String}}, {names} FROM "  # noqa: S608
                  "file({path:String}, JSONEachRow) SETTINGS input_format_null_as_default = 1, "
                  "input_format_json_read_objects_as_strings = 1")
        for cluster, pattern in work:
            self.q(insert, cluster=cluster, path=pattern)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        shutil.rmtree(spool)
        return records, wall, cpu

    def count(self) -> int:
        return int(self.q("SELECT count() FROM bench.flows").strip())

    def settle(self) -> None:
        self.q("OPTIMIZE TABLE bench.flows FINAL")

    def bytes_per_flow(self) -> float:
        used = int(self.q("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' AND "
                          "table = 'flows' AND active").strip())
        return used / max(self.count(), 1)

    def questions(self) -> dict[str, Question]:
        t = "toStartOfHour(end_time)" if self.projection else "end_time"  # the projection's own terms: hour-aligned
        day = {"cluster": CLUSTER, "lo": DAY[0].strftime("%Y-%m-%d %H:%M:%S"), "hi": DAY[1].strftime("%Y-%m-%d %H:%M:%S")}
        week = {**day, "lo": WEEK[0].strftime("%Y-%m-%d %H:%M:%S")}
        where = f"cluster = {{cluster:String}} AND {t} >= {{lo:DateTime}} AND {t} < {{hi:DateTime}}"
        page = ("SELECT * FROM bench.flows WHERE cluster = {cluster:String} AND end_time >= {lo:DateTime} AND "
                "end_time < {hi:DateTime} AND source_namespace = 'shop' AND action = {action:String} "
                "ORDER BY end_time DESC LIMIT 100 OFFSET {offset:UInt32}")
        top = (f"SELECT dest_name_aggr, sum(bytes_in) AS b FROM bench.flows WHERE {where} "  # noqa: S608
               "GROUP BY dest_name_aggr ORDER BY b DESC LIMIT 10")
        graph = (f"SELECT source_namespace, dest_namespace, action, sum(bytes_in), sum(num_flows) "  # noqa: S608
                 f"FROM bench.flows WHERE {where} GROUP BY source_namespace, dest_namespace, action")
        return {
            "search": lambda: [self.q(page, "JSONEachRow", **day, action="allow", offset=100 * i) for i in range(3)],
            "denied": lambda: self.q(page, "JSONEachRow", **day, action="deny", offset=0),
            "topdest": lambda: self.q(top, "JSONEachRow", **week),
            "flowgraph": lambda: self.q(graph, "JSONEachRow", **day),
        }

    def cpu(self) -> float:
        return time.process_time()

    def stop(self) -> None:
        if self.sess is not None:
            self.sess.close()
            self.sess = None


class VictoriaLogsTarget:
    """A real VictoriaLogs server fed through /insert/jsonline (stream fields: cluster and the namespaces),
    asked in LogsQL; its timed ingest ends with a flush."""

    name = "victorialogs"
    STREAM = "cluster,source_namespace,dest_namespace"

    def __init__(self, work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)
        self.server = VictoriaLogs(work / "data")
        self.work = work

    def config(self) -> dict[str, Any]:
        return {"engine": "VictoriaLogs v1.52.1 (go install from the module proxy)",
                "insert": f"/insert/jsonline, _stream_fields={self.STREAM}, _time_field=end_time, "
                          "no _msg field (every field stays a field), cluster as an extra field; one request per 10,000-record batch, "
                          "then /internal/force_flush inside the timed ingest; -inmemoryDataFlushInterval=1s (an "
                          "acknowledged insert reaches the disk within a second, not fsync'd before the answer)"}

    def start(self) -> VictoriaLogsTarget:
        self.server.start()
        return self

    def ingest(self, batches: list[Batch], clients: int = 4) -> tuple[int, float, float]:
        def send(http: httpx.Client, i: int, b: Batch) -> int:
            r = http.post("/insert/jsonline", content=b.body, params={
                "_stream_fields": self.STREAM, "_time_field": "end_time",
                "extra_fields": f"cluster={b.cluster}"})
            r.raise_for_status()
            return b.records

        cpu0 = cpu_seconds(self.server.pid)
        t0 = time.perf_counter()
        n, _ = post_parallel(send, batches, clients, self.server.url)
        self.server.flush()
        return n, time.perf_counter() - t0, cpu_seconds(self.server.pid) - cpu0

    def _query(self, logsql: str) -> list[dict[str, Any]]:
        r = httpx.post(self.server.url + "/select/logsql/query", data={"query": logsql}, timeout=600)
        r.raise_for_status()
        return [orjson.loads(x) for x in r.content.splitlines() if x.strip()]

    def count(self) -> int:
        rows = self._query("* | stats count() as n")
        return int(rows[0]["n"]) if rows else 0

    def settle(self) -> None:
        """Flushed, on disk (in-memory parts are written every second) and merged: the size stops moving."""
        self.server.flush()
        last = -1
        while (size := self._disk()) != last:
            last = size
            time.sleep(3)
            self.server.merge()

    def _disk(self) -> int:
        return tree_bytes(self.server.data_dir)

    def bytes_per_flow(self) -> float:
        return self._disk() / max(self.count(), 1)

    def questions(self) -> dict[str, Question]:
        def rng(r: tuple[Any, Any]) -> str:
            return f"_time:[{r[0].strftime('%Y-%m-%dT%H:%M:%SZ')}, {r[1].strftime('%Y-%m-%dT%H:%M:%SZ')})"

        base = f'{{cluster="{CLUSTER}"}} {rng(DAY)}'
        def page(action: str, offset: int) -> str:
            return f"{base} source_namespace:=shop action:={action} | sort by (_time desc) | offset {offset} | limit 100"

        return {
            "search": lambda: [self._query(page("allow", 100 * i)) for i in range(3)],
            "denied": lambda: self._query(page("deny", 0)),
            "topdest": lambda: self._query(f'{{cluster="{CLUSTER}"}} {rng(WEEK)} | stats by (dest_name_aggr) '
                                           "sum(bytes_in) as b | sort by (b desc) | limit 10"),
            "flowgraph": lambda: self._query(f"{base} | stats by (source_namespace, dest_namespace, action) "
                                             "sum(bytes_in) as bytes, sum(num_flows) as flows"),
        }

    def cpu(self) -> float:
        return cpu_seconds(self.server.pid)

    def stop(self) -> None:
        self.server.stop()


class MargayPeer:
    """margay (a real `margay serve`) in the peers scenario's terms."""

    name = "margay"

    def __init__(self, work: Path) -> None:
        self.target = MargayTarget(work)

    def config(self) -> dict[str, Any]:
        return {"engine": "margay serve (embedded DuckDB over Parquet)",
                "insert": "POST /api/v1/flows/logs/bulk, gzip, one request per 10,000-record batch, 4 clients; "
                          "a 2xx means fsync'd and journaled"}

    def start(self) -> MargayPeer:
        self.target.start()
        return self

    def ingest(self, batches: list[Batch]) -> tuple[int, float, float]:
        cpu0 = self.target.cpu()
        n, seconds = self.target.ingest(batches, 4)
        return n, seconds, self.target.cpu() - cpu0

    def count(self) -> int:
        return self.target.count("flows")

    def settle(self) -> None:
        self.target.settle()

    def bytes_per_flow(self) -> float:
        return self.target.bytes_per_record("flows")

    def questions(self) -> dict[str, Question]:
        http = httpx.Client(base_url=self.target.url, timeout=600)
        asked = self.target.queries()
        denied = {"time_range": {"from": DAY[0].isoformat(), "to": DAY[1].isoformat()}, "max_page_size": 100,
                  "selector": 'source_namespace = "shop" AND action = "deny"',
                  "sort": [{"field": "end_time", "descending": True}]}

        def post_denied() -> Any:
            r = http.post("/api/v1/flows/logs", json=denied, headers={"x-cluster-id": CLUSTER})
            r.raise_for_status()
            return r.json()

        return {"search": lambda: asked["search"](http), "denied": post_denied,
                "topdest": lambda: asked["topdest"](http), "flowgraph": lambda: asked["flowgraph"](http)}

    def cpu(self) -> float:
        return self.target.cpu()

    def stop(self) -> None:
        self.target.stop()


def _ask(target: Any, q: Question, runs: int) -> tuple[list[float], float]:
    """Wall ms of each timed run (after 2 warm-ups) and the mean server CPU ms per run."""
    for _ in range(2):
        q()
    walls = []
    cpu0 = target.cpu()
    for _ in range(runs):
        t0 = time.perf_counter()
        q()
        walls.append((time.perf_counter() - t0) * 1000)
    return walls, (target.cpu() - cpu0) * 1000 / runs


def peers(bench: Bench) -> dict[str, Any]:
    records = SIZES[bench.mode] if not bench.sizes else bench.sizes[-1]
    runs = 8 if bench.quick else 20
    out: dict[str, Any] = {"peers_records": records, "peers_config": {}}
    variants = {"sim": lambda: flow_batches(topology(), records),
                "highcard": lambda: high_cardinality(flow_batches(topology(), records))}
    for variant, make in variants.items():
        batches = list(make())
        n_records = sum(b.records for b in batches)
        systems: list[Any] = [MargayPeer(bench.work_dir / "peers-margay"),
                              ClickHouseTarget(bench.work_dir / "peers-ch"),
                              ClickHouseTarget(bench.work_dir / "peers-ch-bulk", bulk=True),
                              ClickHouseTarget(bench.work_dir / "peers-ch-proj", projection=True),
                              VictoriaLogsTarget(bench.work_dir / "peers-vl"),
                              OpenSearchPeer(bench.work_dir / "peers-os")]
        answers: dict[str, dict[str, Any]] = {}
        for system in systems:
            label = system.name + (f"_{system.variant}" if isinstance(system, ClickHouseTarget) else "")
            system.start()
            try:
                n, wall, cpu = system.ingest(batches)
                assert n == n_records, f"{label} took {n} of {n_records}"
                cpu_settle = system.cpu()
                system.settle()
                cpu_settle = system.cpu() - cpu_settle
                stored = system.count()
                assert stored == n_records, f"{label} holds {stored:,} of {n_records:,} records"
                key = f"{variant}_{label}"
                out[f"peers_ingest_cpu_s_per_million_{key}"] = round(cpu / n * 1e6, 2)
                # The merges, roll-ups and flushes a system does once the timed ingest ended (and its idle
                # CPU while the bench waits for them): the work the ingest figure above leaves out.
                out[f"peers_settle_cpu_s_per_million_{key}"] = round(cpu_settle / n * 1e6, 2)
                out[f"peers_ingest_rps_{key}"] = round(n / wall)
                out[f"peers_bytes_per_flow_{key}"] = round(system.bytes_per_flow(), 2)
                answers[label] = {}
                for name, q in system.questions().items():
                    answers[label][name] = reduce(system.name, name, q())
                    walls, cpu_ms = _ask(system, q, runs)
                    out[f"peers_cpu_ms_{name}_{key}"] = round(cpu_ms, 1)
                    out[f"peers_p50_ms_{name}_{key}"] = round(percentile(walls, 0.5), 1)
                    out[f"peers_p95_ms_{name}_{key}"] = round(percentile(walls, 0.95), 1)
                out["peers_config"][label] = system.config()
                bench.log(f"  {variant} {label:<24} ingest {out[f'peers_ingest_cpu_s_per_million_{key}']:.1f} CPU-s/M "
                          f"(+{out[f'peers_settle_cpu_s_per_million_{key}']:.1f} settling), "
                          f"{out[f'peers_bytes_per_flow_{key}']:.1f} B/flow; CPU-ms search "
                          f"{out[f'peers_cpu_ms_search_{key}']}, denied {out[f'peers_cpu_ms_denied_{key}']}, "
                          f"topdest {out[f'peers_cpu_ms_topdest_{key}']}, graph {out[f'peers_cpu_ms_flowgraph_{key}']}")
            finally:
                system.stop()
        out[f"peers_records_{variant}"] = n_records
        # Every system must have answered alike, or its figures compare different work.
        wrong = disagreements(answers)
        if wrong:
            raise RuntimeError(f"the {variant} variant's systems answered differently:\n" + "\n".join(wrong))
        out[f"peers_answers_agree_{variant}"] = len(systems)
    out["notes"] = (f"{records:,} level-0 Felix flows (two clusters) per variant: sim (the simulator's) and highcard "
                    "(10x pods, distinct IPs and client ports). Each system on a fresh store: ingest (server CPU-s per "
                    "million records and records/s), then compaction settled (OPTIMIZE FINAL / force_merge / the "
                    "compactor idle / OpenSearch's flush, force merge to one segment and refresh; its server CPU per million records apart: peers_settle_cpu_s_per_million_*, "
                    "the merges and roll-ups done after the timed ingest, plus idle CPU while waiting), then bytes per flow and four questions of cluster 'cluster', "
                    f"{runs} timed runs after 2 warm-ups: server CPU-ms per question (chDB: this process's CPU, it "
                    "runs in-process; OpenSearch: its JVM's) and wall p50/p95. Before timing, each answer is checked against the first system's: the same page sizes, the same top 10 with the same bytes, the same namespace graph (margay's graph folds reporters into edges: not compared); the run fails otherwise (peers_answers_agree_<variant>: systems that agreed). search: 3 pages of 100, namespace shop + allow, 24 h, newest "
                    "first; denied: 1 page of shop's denied flows; topdest: top 10 destinations by bytes, 7 days; "
                    "flowgraph: namespace pairs x action with bytes and flows, 24 h. peers_config holds each "
                    "system's configuration.")
    return out
