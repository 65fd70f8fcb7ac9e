"""Flow log aggregation levels 0-3 (spec §2) as one DuckDB plan: key per level, Calico's merge rules.

The plan runs in three steps, all in the engine:
  A. GROUP BY the level's key plus the process name (one row per key and process);
  B. rank each key's process names by first appearance;
  C. GROUP BY again with names beyond the per-flow process limit folded into `*`.
Merge rules: counters summed; labels intersected; one record per distinct `all_policies` trace with the
other policy arrays unioned; bounded, sorted sets for domains (5), original IPs (50), NAT ports (3),
process args (5) and, beyond Calico, `source_ips`/`dest_ips` (10) for denied and pub/pvt flows once
their IPs leave the key. `action`, `reporter`, `host` and `cluster` are always in the key.
"""

# ruff: noqa: S608 - SQL is built from registry names and validated integers, never from input data.
from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..logtypes import REGISTRY
from .batch import Result, run

LT = REGISTRY["flows"]
EXTRA = {"cluster": "VARCHAR", "@timestamp": "BIGINT"}


@dataclass(frozen=True)
class FlowLevels:
    """Felix's flow aggregation settings (FelixConfiguration names in comments)."""

    allowed: int = 2  # flowLogsFileAggregationKindForAllowed
    denied: int = 1  # flowLogsFileAggregationKindForDenied
    flush_interval: int = 300  # flowLogsFlushInterval, seconds
    process_limit: int = 2  # flowLogsFilePerFlowProcessLimit
    args_limit: int = 5  # flowLogsFilePerFlowProcessArgsLimit
    domains_limit: int = 5  # flowLogsFileDomainsLimit
    original_ips_limit: int = 50  # flowLogsMaxOriginalIPsIncluded
    nat_ports_limit: int = 3  # flowLogsFileNatOutgoingPortLimit
    ips_limit: int = 10  # beyond Calico: source_ips / dest_ips kept for denied and pub/pvt flows

    def __post_init__(self) -> None:
        for name in ("allowed", "denied"):
            if getattr(self, name) not in (0, 1, 2, 3):
                raise ValueError(f"flow aggregation level for {name} must be 0, 1, 2 or 3")
        for name in ("flush_interval", "process_limit", "args_limit", "domains_limit", "original_ips_limit",
                     "nat_ports_limit", "ips_limit"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")


_PLAIN_KEY = ("cluster", "host", "action", "reporter", "proto", "source_name_aggr", "source_namespace",
              "source_type", "dest_name_aggr", "dest_namespace", "dest_type", "dest_service_namespace",
              "dest_service_name")
_LEVELED = ("source_port", "source_ip", "dest_ip", "source_name", "dest_name", "dest_port", "dest_service_port",
            "dest_service_port_num")
KEY = (*_PLAIN_KEY, *_LEVELED, "_win", "_trace")

_SUMS = ("bytes_in", "bytes_out", "packets_in", "packets_out", "transit_bytes_in", "transit_bytes_out",
         "transit_packets_in", "transit_packets_out", "num_flows", "num_flows_started", "num_flows_completed",
         "http_requests_allowed_in", "http_requests_denied_in", "tcp_total_retransmissions", "tcp_lost_packets",
         "tcp_unrecovered_to")
_MINS = ("tcp_min_send_congestion_window", "tcp_min_mss")
_MAXES = ("tcp_max_smooth_rtt", "tcp_max_min_rtt")
_MEANS = ("tcp_mean_send_congestion_window", "tcp_mean_smooth_rtt", "tcp_mean_min_rtt", "tcp_mean_mss")
_INTERSECT = lambda x: f"list_reduce(list({x}) FILTER (WHERE {x} IS NOT NULL), lambda a, b: list_intersect(a, b))"  # noqa: E731
_UNION = lambda x: f"list_distinct(flatten(list({x})))"  # noqa: E731


def _q(name: str) -> str:
    return '"' + name + '"'


def _measures() -> list[tuple[str, str, str, str]]:
    """(column, step-A aggregate over input rows, step-C aggregate over step-A rows, the same for one row).

    The last form serves keys that hold a single input row: they skip the GROUP BYs (level 0 is mostly
    such keys) yet come out exactly as if they had gone through them.
    """
    m: list[tuple[str, str, str, str]] = [("_first", "min(_row)", "min(_first)", "_row"),
                                          ("start_time", "min(start_time)", "min(start_time)", "start_time"),
                                          ("end_time", "max(end_time)", "max(end_time)", "end_time")]
    m += [(c, f"sum({_q(c)})", f"sum({_q(c)})", _q(c)) for c in _SUMS]
    m += [(c, f"min({_q(c)})", f"min({_q(c)})", _q(c)) for c in _MINS]
    m += [(c, f"max({_q(c)})", f"max({_q(c)})", _q(c)) for c in _MAXES]
    for c in _MEANS:
        m += [(f"_s_{c}", f"sum({_q(c)})", f"sum(_s_{c})", _q(c)),
              (f"_n_{c}", f"count({_q(c)})", f"sum(_n_{c})", _one(_q(c)))]
    m += [("_slab", _INTERSECT("source_labels.labels"), _INTERSECT("_slab"), "source_labels.labels"),
          ("_dlab", _INTERSECT("dest_labels.labels"), _INTERSECT("_dlab"), "dest_labels.labels"),
          ("_pol", "count(policies)", "sum(_pol)", _one("policies"))]
    for p in ("enforced_policies", "pending_policies", "transit_policies"):
        m.append((f"_{p}", _UNION(f"policies.{p}"), _UNION(f"_{p}"), _DISTINCT(f"policies.{p}")))
    for col, src, num in (("dest_domains", "dest_domains", None), ("nat_outgoing_ports", "nat_outgoing_ports", None),
                          ("original_source_ips", "original_source_ips", "num_original_source_ips"),
                          ("source_ips", "_sips", "num_source_ips"), ("dest_ips", "_dips", "num_dest_ips"),
                          ("process_args", "process_args", "num_process_args")):
        m += [(f"_u_{col}", _UNION(src), _UNION(f"_u_{col}"), _DISTINCT(src)),
              (f"_h_{col}", f"count({src})", f"sum(_h_{col})", _one(src))]
        if num:
            m.append((f"_m_{num}", f"max({num})", f"max(_m_{num})", num))
    m += [("_pids", "list_distinct(list(process_id) FILTER (WHERE process_id <> '-'))", _UNION("_pids"),
           "CASE WHEN process_id IS NULL OR process_id = '-' THEN [] ELSE [process_id] END"),
          ("_pid0", "max(process_id)", "max(_pid0)", "process_id"),
          ("_m_num_process_ids", "max(num_process_ids)", "max(_m_num_process_ids)", "num_process_ids"),
          ("_m_num_process_names", "max(num_process_names)", "max(_m_num_process_names)", "num_process_names"),
          ("_names", "list_distinct(list(process_name) FILTER (WHERE process_name NOT IN ('-', '*')))",
           _UNION("_names"),
           "CASE WHEN process_name IS NULL OR process_name IN ('-', '*') THEN [] ELSE [process_name] END")]
    return m


def _one(x: str) -> str:
    return f"CASE WHEN {x} IS NULL THEN 0 ELSE 1 END"


def _DISTINCT(x: str) -> str:  # noqa: N802 - reads like the other SQL builders
    return f"coalesce(list_distinct({x}), [])"


def _keyed(lv: FlowLevels) -> str:
    """Input rows with the level's key columns blanked; allowed and denied flows use their own level."""
    lvl = f"(CASE WHEN action = 'deny' THEN {lv.denied} ELSE {lv.allowed} END)"
    keep_ips = f"({lvl} >= 2 AND (action = 'deny' OR source_name_aggr IN ('pub', 'pvt') " \
               "OR dest_name_aggr IN ('pub', 'pvt')))"
    blank = {
        "source_port": f"CASE WHEN {lvl} >= 1 THEN NULL ELSE source_port END",
        "source_ip": f"CASE WHEN {lvl} >= 2 THEN NULL ELSE source_ip END",
        "dest_ip": f"CASE WHEN {lvl} >= 2 THEN NULL ELSE dest_ip END",
        "source_name": f"CASE WHEN {lvl} >= 2 THEN '-' ELSE source_name END",
        "dest_name": f"CASE WHEN {lvl} >= 2 THEN '-' ELSE dest_name END",
        "dest_port": f"CASE WHEN {lvl} >= 3 THEN NULL ELSE dest_port END",
        "dest_service_port": f"CASE WHEN {lvl} >= 3 THEN '-' ELSE dest_service_port END",
        "dest_service_port_num": f"CASE WHEN {lvl} >= 3 THEN NULL ELSE dest_service_port_num END",
    }
    ips = {side: (f"CASE WHEN {keep_ips} THEN nullif(list_concat(coalesce({side}_ips, []), "
                  f"CASE WHEN {side}_ip IS NULL THEN [] ELSE [{side}_ip] END), []) ELSE {side}_ips END")
           for side in ("source", "dest")}
    return ("SELECT * REPLACE (" + ", ".join(f"{e} AS {c}" for c, e in blank.items()) + "), "
            f"(end_time - 1) // {lv.flush_interval} AS _win, list_sort(policies.all_policies) AS _trace, "
            f"{ips['source']} AS _sips, {ips['dest']} AS _dips FROM src")


def _capped(col: str, limit: int) -> str:
    return f"CASE WHEN _h_{col} = 0 THEN NULL ELSE list_sort(_u_{col})[1:{limit}] END"


def _num(col: str, num: str) -> str:
    return f"CASE WHEN _h_{col} = 0 AND _m_{num} IS NULL THEN NULL ELSE greatest(coalesce(_m_{num}, 0), len(_u_{col})) END"


def plan(lv: FlowLevels, present: set[str]) -> str:
    ms = _measures()
    key = ", ".join(KEY)
    # Keys seen once skip the GROUP BYs. A hash collision only sends a row the slow (still exact) way.
    keyed = f"SELECT *, hash({key}) AS _hk FROM ({_keyed(lv)})"
    counts = "SELECT _hk FROM k GROUP BY _hk HAVING count(*) = 1"
    step_a = (f"SELECT {key}, process_name, " + ", ".join(f"{a} AS {c}" for c, a, _, _ in ms)
              + " FROM k ANTI JOIN single USING (_hk) GROUP BY ALL")
    step_b = f"SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY _first, process_name) AS _rank FROM a"
    name = f"CASE WHEN _rank > {lv.process_limit} THEN '*' ELSE process_name END"
    step_c = (f"SELECT {key}, {name} AS process_name, " + ", ".join(f"{c_} AS {c}" for c, _, c_, _ in ms)
              + " FROM b GROUP BY ALL")
    step_1 = (f"SELECT {key}, process_name, " + ", ".join(f"{one} AS {c}" for c, _, _, one in ms)
              + " FROM k SEMI JOIN single USING (_hk)")
    out = {
        "start_time": "start_time", "end_time": "end_time",
        "source_labels": "CASE WHEN _slab IS NULL THEN NULL ELSE {'labels': list_sort(_slab)} END",
        "dest_labels": "CASE WHEN _dlab IS NULL THEN NULL ELSE {'labels': list_sort(_dlab)} END",
        "dest_domains": _capped("dest_domains", lv.domains_limit),
        "policies": ("CASE WHEN _pol = 0 THEN NULL ELSE {'all_policies': _trace, "
                     "'enforced_policies': list_sort(_enforced_policies), "
                     "'pending_policies': list_sort(_pending_policies), "
                     "'transit_policies': list_sort(_transit_policies)} END"),
        "process_name": "process_name",
        "process_id": ("CASE WHEN process_name = '*' AND len(_pids) > 0 THEN '*' "
                       "WHEN len(_pids) = 1 THEN _pids[1] WHEN len(_pids) > 1 THEN '*' ELSE _pid0 END"),
        "process_args": _capped("process_args", lv.args_limit),
        "num_process_names": "greatest(coalesce(_m_num_process_names, 0), len(_names))",
        "num_process_ids": ("greatest(coalesce(_m_num_process_ids, 0), "
                            "len(list_filter(_pids, lambda p: p <> '*')))"),
        "num_process_args": _num("process_args", "num_process_args"),
        "nat_outgoing_ports": _capped("nat_outgoing_ports", lv.nat_ports_limit),
        "original_source_ips": _capped("original_source_ips", lv.original_ips_limit),
        "num_original_source_ips": _num("original_source_ips", "num_original_source_ips"),
        "source_ips": _capped("source_ips", lv.ips_limit), "dest_ips": _capped("dest_ips", lv.ips_limit),
        "num_source_ips": _num("source_ips", "num_source_ips"), "num_dest_ips": _num("dest_ips", "num_dest_ips"),
    }
    for c in _MEANS:
        out[c] = f"CAST(round(_s_{c} / nullif(_n_{c}, 0)) AS BIGINT)"
    cols = []
    for f in LT.fields:
        cols.append(f"{out.get(f.name, _q(f.name))} AS {_q(f.name)}")
    if "cluster" in present:
        cols.append("cluster")
    if "@timestamp" in present:
        cols.append('end_time * 1000 AS "@timestamp"')
    return (f"WITH k AS MATERIALIZED ({keyed}), single AS MATERIALIZED ({counts}), a AS ({step_a}), "  # noqa: S608
            f"b AS ({step_b}), c AS ({step_c} UNION ALL BY NAME {step_1}) "
            f"SELECT {', '.join(cols)} FROM c ORDER BY _win, _first, process_name")


def aggregate_flows(body: bytes, levels: FlowLevels | None = None) -> Result:
    """Aggregate NDJSON flow records (any level) to `levels`; returns NDJSON and record counts."""
    lv = levels or FlowLevels()

    def build(con: duckdb.DuckDBPyConnection, present: set[str]) -> str:
        return plan(lv, present)

    return run(LT, body, EXTRA, build)
