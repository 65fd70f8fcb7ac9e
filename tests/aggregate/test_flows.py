"""Flow aggregation levels 0-3 against hand-computed results, and properties that hold for any input."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margay.aggregate import FlowLevels, aggregate_flows

BASE: dict[str, Any] = {
    "start_time": 1700000000, "end_time": 1700000300, "host": "worker-1", "action": "allow", "reporter": "src",
    "proto": "tcp", "source_ip": "10.0.0.1", "source_name": "web-abc-1", "source_name_aggr": "web-abc-*",
    "source_namespace": "shop", "source_port": 40000, "source_type": "wep",
    "source_labels": {"labels": ["app=web", "pod-template-hash=abc"]},
    "dest_ip": "10.0.1.1", "dest_name": "db-0", "dest_name_aggr": "db-*", "dest_namespace": "data",
    "dest_port": 5432, "dest_type": "wep", "dest_labels": {"labels": ["app=db"]},
    "dest_service_namespace": "data", "dest_service_name": "db", "dest_service_port": "pg",
    "dest_service_port_num": 5432, "policies": {"all_policies": ["0|default|data/default.allow|allow|0"],
                                                "enforced_policies": ["0|default|data/default.allow|allow|0"],
                                                "pending_policies": [], "transit_policies": []},
    "bytes_in": 100, "bytes_out": 10, "packets_in": 4, "packets_out": 2, "num_flows": 1,
    "num_flows_started": 1, "num_flows_completed": 1, "process_name": "psql", "process_id": "11",
    "num_process_names": 1, "num_process_ids": 1,
}


def rec(**kw: Any) -> dict[str, Any]:
    return {**BASE, **kw}


def run(records: list[dict[str, Any]], **levels: Any) -> list[dict[str, Any]]:
    body = b"\n".join(orjson.dumps(r) for r in records)
    result = aggregate_flows(body, FlowLevels(**levels))
    out = [orjson.loads(line) for line in result.body.splitlines() if line.strip()]
    assert result.records_in == len(records) and result.records_out == len(out)
    return out


# Four level-0 records: two connections of pod web-abc-1 (ports 40000, 40001), one of pod web-abc-2 to
# db-1 on another port, one denied from web-abc-1.
INPUT = [
    rec(),
    rec(source_port=40001, bytes_in=200, process_id="12"),
    rec(source_name="web-abc-2", source_ip="10.0.0.2", source_port=40002, dest_name="db-1", dest_ip="10.0.1.2",
        dest_port=5433, dest_service_port="pg-alt", source_labels={"labels": ["app=web", "pod-template-hash=xyz"]}),
    rec(action="deny", source_port=40003, bytes_in=0, packets_in=0),
]


def test_level_0_keeps_every_connection() -> None:
    out = run(INPUT, allowed=0, denied=0)
    assert len(out) == 4
    assert [o["source_port"] for o in out] == [40000, 40001, 40002, 40003]


def test_level_1_drops_source_ports() -> None:
    out = run(INPUT, allowed=1, denied=1)
    assert len(out) == 3
    first = out[0]
    assert first["source_port"] is None and first["source_ip"] == "10.0.0.1"
    assert (first["bytes_in"], first["packets_in"], first["num_flows"]) == (300, 8, 2)
    # Two PIDs for one process name: the id becomes `*`, both are counted.
    assert (first["process_name"], first["process_id"], first["num_process_ids"]) == ("psql", "*", 2)


def test_level_2_groups_by_prefix_and_keeps_dest_port() -> None:
    out = run(INPUT, allowed=2, denied=1)
    allowed = [o for o in out if o["action"] == "allow"]
    denied = [o for o in out if o["action"] == "deny"]
    assert len(allowed) == 2  # dest ports 5432 and 5433 stay apart
    assert len(denied) == 1 and denied[0]["source_ip"] == "10.0.0.1"  # denied at its own level 1
    a = allowed[0]
    assert (a["source_ip"], a["dest_ip"], a["source_name"], a["dest_name"]) == (None, None, "-", "-")
    assert a["bytes_in"] == 300 and a["dest_port"] == 5432


def test_level_3_drops_dest_ports_and_intersects_labels() -> None:
    out = run(INPUT, allowed=3, denied=3)
    allowed = [o for o in out if o["action"] == "allow"]
    assert len(allowed) == 1
    a = allowed[0]
    assert a["dest_port"] is None and a["dest_service_port"] == "-" and a["dest_service_port_num"] is None
    assert (a["bytes_in"], a["bytes_out"], a["num_flows"]) == (400, 30, 3)
    assert a["source_labels"] == {"labels": ["app=web"]}  # only labels common to all members
    assert a["dest_labels"] == {"labels": ["app=db"]}


def test_one_record_per_distinct_policy_trace_with_other_arrays_unioned() -> None:
    other = {"all_policies": ["0|default|data/default.other|allow|0"],
             "enforced_policies": ["0|default|data/default.other|allow|0"], "pending_policies": [],
             "transit_policies": []}
    pend = {**BASE["policies"], "pending_policies": ["0|default|data/staged:default.x|deny|0"]}
    out = run([rec(), rec(source_port=1, policies=pend), rec(source_port=2, policies=other)], allowed=2)
    assert len(out) == 2
    assert out[0]["policies"]["pending_policies"] == ["0|default|data/staged:default.x|deny|0"]
    assert out[1]["policies"]["all_policies"] == other["all_policies"]


def test_process_limit_folds_extra_names_into_star() -> None:
    names = ["a", "b", "c", "d"]
    out = run([rec(source_port=i, process_name=n, process_id=str(i), process_args=[f"-{n}", "x"])
               for i, n in enumerate(names)], allowed=2)
    assert [o["process_name"] for o in out] == ["a", "b", "*"]  # limit 2: first seen keep their name
    star = out[2]
    assert (star["process_id"], star["num_process_names"], star["num_process_ids"]) == ("*", 2, 2)
    assert star["process_args"] == ["-c", "-d", "x"] and star["num_process_args"] == 3
    assert sum(o["num_flows"] for o in out) == 4


def test_bounded_sets_are_sorted_capped_and_counted() -> None:
    rows = [rec(source_port=i, dest_domains=[f"d{i}.example.com"], nat_outgoing_ports=[31000 + i],
                original_source_ips=[f"203.0.113.{i}"], num_original_source_ips=1) for i in range(7)]
    out = run(rows, allowed=2)
    assert len(out) == 1
    o = out[0]
    assert o["dest_domains"] == [f"d{i}.example.com" for i in range(5)]
    assert o["nat_outgoing_ports"] == [31000, 31001, 31002]
    assert len(o["original_source_ips"]) == 7 and o["num_original_source_ips"] == 7
    assert o["process_args"] is None


def test_denied_and_public_flows_keep_bounded_ips() -> None:
    denied = [rec(action="deny", source_port=i, source_ip=f"10.0.0.{i}") for i in range(12)]
    public = [rec(source_port=i, dest_ip=f"198.51.100.{i}", dest_name="-", dest_name_aggr="pub", dest_type="net")
              for i in range(3)]
    internal = [rec(source_port=i, source_ip=f"10.0.0.{i}") for i in range(3)]
    out = run(denied + public + internal, allowed=2, denied=2)
    by = {(o["action"], o["dest_name_aggr"]): o for o in out}
    d = by[("deny", "db-*")]
    assert d["source_ip"] is None and len(d["source_ips"]) == 10 and d["num_source_ips"] == 12
    assert d["dest_ips"] == ["10.0.1.1"] and d["num_dest_ips"] == 1
    p = by[("allow", "pub")]
    assert p["dest_ips"] == ["198.51.100.0", "198.51.100.1", "198.51.100.2"] and p["num_dest_ips"] == 3
    i = by[("allow", "db-*")]
    assert i["source_ips"] is None and i["num_source_ips"] is None


def test_flush_interval_windows() -> None:
    rows = [rec(start_time=t - 60, end_time=t, source_port=t) for t in (60, 300, 360, 600)]
    assert len(run(rows, allowed=2, flush_interval=300)) == 2
    assert len(run(rows, allowed=2, flush_interval=600)) == 1
    first = run(rows, allowed=2, flush_interval=300)[0]
    assert (first["start_time"], first["end_time"]) == (0, 300)


# -- properties -------------------------------------------------------------------------------------------

record = st.fixed_dictionaries({
    "end_time": st.integers(1, 4).map(lambda k: 1700000000 + 150 * k),
    "action": st.sampled_from(["allow", "deny"]), "reporter": st.sampled_from(["src", "dst", "fwd"]),
    "cluster": st.sampled_from(["c1", "c2"]), "host": st.sampled_from(["n1", "n2"]),
    "source_port": st.integers(1, 3), "dest_port": st.integers(1, 2),
    "source_ip": st.sampled_from(["10.0.0.1", "10.0.0.2", None]), "dest_name_aggr": st.sampled_from(["db-*", "pub"]),
    "process_name": st.sampled_from(["a", "b", "c", "-"]), "bytes_in": st.integers(0, 10**9),
    "bytes_out": st.integers(0, 10**6), "packets_in": st.integers(0, 1000), "packets_out": st.integers(0, 1000),
    "num_flows": st.integers(0, 50), "num_flows_started": st.integers(0, 50),
    "num_flows_completed": st.integers(0, 50),
})
COUNTERS = ("bytes_in", "bytes_out", "packets_in", "packets_out", "num_flows", "num_flows_started",
            "num_flows_completed")


def _totals(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[int, ...]]:
    out: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        t = out.setdefault((r["action"], r["reporter"], r["cluster"]), [0] * len(COUNTERS))
        for i, c in enumerate(COUNTERS):
            t[i] += r[c] or 0
    return {k: tuple(v) for k, v in out.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=30), st.integers(0, 3), st.integers(0, 3))
def test_counters_are_preserved_per_action_reporter_and_cluster(parts: list[dict[str, Any]], allowed: int,
                                                                denied: int) -> None:
    rows = [rec(**{**p, "start_time": p["end_time"] - 150}) for p in parts]
    out = run(rows, allowed=allowed, denied=denied)
    # Totals per (action, reporter, cluster) equal: nothing is lost and nothing crosses those keys.
    assert _totals(out) == _totals(rows)
    assert len(out) <= len(rows)
