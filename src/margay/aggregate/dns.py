"""DNS log aggregation levels 0-1 (spec §3) with Felix's per-node record limit and `unlogged` overflow.

Key: cluster, host, flush window, client metadata (name and IP only at level 0), question (name, class,
type), rcode and the canonical text of the RR sets. Counts are summed, latency merged (count summed,
mean weighted by count, max of max), client labels intersected, servers unioned. When a node writes
more distinct records in one window than `per_node_limit`, the records first seen are kept and the
rest are counted into one `unlogged` record (no other fields), as Felix does.
"""

# ruff: noqa: S608 - SQL is built from registry names and validated integers, never from input data.
from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..logtypes import REGISTRY
from .batch import Result, run

LT = REGISTRY["dns"]
EXTRA = {"cluster": "VARCHAR"}


@dataclass(frozen=True)
class DNSLevels:
    """Felix's DNS aggregation settings (FelixConfiguration names in comments)."""

    level: int = 1  # dnsLogsFileAggregationKind
    flush_interval: int = 300  # dnsLogsFlushInterval, seconds
    per_node_limit: int = 0  # dnsLogsFilePerNodeLimit; 0 = unlimited (the operator sets 1000)

    def __post_init__(self) -> None:
        if self.level not in (0, 1):
            raise ValueError("DNS aggregation level must be 0 or 1")
        if self.flush_interval < 1:
            raise ValueError("flush_interval must be at least 1")
        if self.per_node_limit < 0:
            raise ValueError("per_node_limit must be 0 (unlimited) or more")


KEY = ("cluster", "host", "_win", "client_name_aggr", "client_namespace", "client_name", "client_ip", "qname",
       "qclass", "qtype", "rcode", "_rr")


def _ts(col: str) -> str:
    """TIMESTAMPTZ -> RFC 3339 text in UTC, with microseconds only when there are some."""
    return (f"CASE WHEN microsecond({col}) % 1000000 = 0 THEN strftime({col}, '%Y-%m-%dT%H:%M:%SZ') "
            f"ELSE strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ') END")


def plan(lv: DNSLevels, present: set[str]) -> str:
    window = lv.flush_interval * 1_000_000
    keyed = (
        "SELECT * REPLACE ("
        f"CASE WHEN {lv.level} >= 1 THEN '-' ELSE client_name END AS client_name, "
        f"CASE WHEN {lv.level} >= 1 THEN NULL ELSE client_ip END AS client_ip), "
        f"(epoch_us(end_time) - 1) // {window} AS _win, "
        "CAST(list_sort(list_transform(rrsets, lambda r: CAST({'name': r.name, 'type': r.type, 'class': r.class, "
        "'rdata': list_sort(r.rdata)} AS VARCHAR))) AS VARCHAR) AS _rr FROM src"
    )
    key = ", ".join(KEY)
    grouped = (
        f"SELECT {key}, min(_row) AS _first, min(start_time) AS start_time, max(end_time) AS end_time, "
        "sum(count) AS count, any_value(rrsets ORDER BY _row) AS rrsets, "
        "CASE WHEN count(servers) = 0 THEN NULL ELSE list_sort(list_distinct(flatten(list(servers)))) END AS servers, "
        "list_reduce(list(map_entries(client_labels)) FILTER (WHERE client_labels IS NOT NULL), "
        "lambda a, b: list_intersect(a, b)) AS _labels, "
        "sum(latency_count) AS latency_count, "
        "sum(latency_mean * latency_count) / nullif(sum(latency_count) FILTER (WHERE latency_mean IS NOT NULL), 0) "
        "AS _mean, max(latency_max) AS latency_max "
        f"FROM ({keyed}) WHERE type IS DISTINCT FROM 'unlogged' GROUP BY ALL"
    )
    over = (f"row_number() OVER (PARTITION BY cluster, host, _win ORDER BY _first) > {lv.per_node_limit}"
            if lv.per_node_limit else "false")
    ranked = f"SELECT *, {over} AS _over FROM g"
    # Overflow: the counts of records over the limit plus `unlogged` records that came in.
    unlogged = (
        "SELECT cluster, host, _win, min(_first) AS _first, min(start_time) AS start_time, "
        "max(end_time) AS end_time, sum(count) AS count FROM ("
        "SELECT cluster, host, _win, _first, start_time, end_time, count FROM r WHERE _over "
        "UNION ALL SELECT cluster, host, (epoch_us(end_time) - 1) // " + str(window) + ", _row, start_time, "
        "end_time, count FROM src WHERE type = 'unlogged') GROUP BY ALL"
    )
    mean = "CAST(round(_mean) AS BIGINT)"
    log_cols = {
        "start_time": _ts("start_time"), "end_time": _ts("end_time"), "type": "'log'", "count": "count",
        "client_ip": "client_ip", "client_name": "client_name", "client_name_aggr": "client_name_aggr",
        "client_namespace": "client_namespace",
        "client_labels": "CASE WHEN _labels IS NULL THEN NULL ELSE map_from_entries(list_sort(_labels)) END",
        "qname": "qname", "qtype": "qtype", "qclass": "qclass", "rcode": "rcode", "rrsets": "rrsets",
        "servers": "servers",
        "latency": ("CASE WHEN latency_count IS NULL AND latency_max IS NULL THEN NULL ELSE "
                    f"{{'count': latency_count, 'mean': {mean}, 'max': latency_max}} END"),
        "latency_count": "latency_count", "latency_mean": mean, "latency_max": "latency_max", "host": "host",
    }
    unlogged_cols = {"start_time": _ts("start_time"), "end_time": _ts("end_time"), "type": "'unlogged'",
                     "count": "count", "host": "host"}
    names = [f.name for f in LT.fields]
    if "cluster" in present:
        names.append("cluster")
        log_cols["cluster"] = unlogged_cols["cluster"] = "cluster"

    def select(cols: dict[str, str], src: str) -> str:
        exprs = []
        for n in names:
            e = cols.get(n, "NULL")
            exprs.append(f"{e} AS \"{n}\"")
        return f"SELECT {', '.join(exprs)}, _win, _first, {1 if src == 'u' else 0} AS _u FROM {src}"

    return (f"WITH g AS ({grouped}), r AS ({ranked}), u AS ({unlogged}) "  # noqa: S608 - registry names only
            f"SELECT * EXCLUDE (_win, _first, _u) FROM ({select(log_cols, 'r WHERE NOT _over')} "
            f"UNION ALL BY NAME {select(unlogged_cols, 'u')}) ORDER BY _win, _u, _first")


def aggregate_dns(body: bytes, levels: DNSLevels | None = None) -> Result:
    """Aggregate NDJSON DNS records to `levels`; returns NDJSON and record counts."""
    lv = levels or DNSLevels()

    def build(con: duckdb.DuckDBPyConnection, present: set[str]) -> str:
        return plan(lv, present)

    return run(LT, body, EXTRA, build)
