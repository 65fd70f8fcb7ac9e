"""The simulator: deterministic, registry-valid records of every type, the topology's graph, files and posts."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.clock import FakeClock
from margay.logtypes import REGISTRY, SAMPLES, Field, Kind
from margay.simulate import (
    GENERATORS,
    Topology,
    bgp_lines,
    feed,
    flows,
    ndjson_batches,
    parse_bird_line,
    post_to_server,
    run_live,
    write_native_files,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
TRACE = re.compile(r"^(\d+)\|([^|]+)\|([^|]+)\|(allow|deny|pass)\|(-?\d+)$")
BIRD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{5} bird: .+$")


@pytest.fixture(scope="module")
def topo() -> Topology:
    return Topology.build(seed=7)


@pytest.fixture(scope="module")
def generated(topo: Topology) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {c: {kind: list(gen(topo, c, START, END)) for kind, gen in GENERATORS.items()} for c in topo.clusters}


def _all_bytes(topo: Topology) -> bytes:
    out = []
    for c in topo.clusters:
        for gen in GENERATORS.values():
            out += ndjson_batches(gen(topo, c, START, END), 1000)
        out += [line.encode() for n in topo.nodes(c) for line in bgp_lines(topo, c, START, END, node=n.name)]
    return b"".join(out)


def test_same_seed_gives_identical_bytes(topo: Topology) -> None:
    again = Topology.build(seed=7)
    assert _all_bytes(again) == _all_bytes(topo)
    assert _all_bytes(Topology.build(seed=8)) != _all_bytes(topo)


def test_a_window_split_in_two_gives_the_same_records(topo: Topology) -> None:
    mid = START + timedelta(minutes=47)
    for kind in ("flows", "dns", "audit_ee", "audit_kube", "events"):
        gen = GENERATORS[kind]
        whole = list(gen(topo, "cluster", START, END))
        assert whole == list(gen(topo, "cluster", START, mid)) + list(gen(topo, "cluster", mid, END)), kind


def test_flow_lines_match_the_dicts(topo: Topology) -> None:
    for level in (0, 1, 2, 3):
        stream = flows(topo, "cluster", START, END, level=level)
        assert b"".join(ndjson_batches(stream, 333)) == b"".join(orjson.dumps(r) + b"\n" for r in stream)


def _check(fields: Iterable[Field], rec: dict[str, Any], where: str, extra: tuple[str, ...] = ()) -> None:
    by_name = {f.name: f for f in fields}
    unknown = set(rec) - set(by_name) - set(extra)
    assert not unknown, f"{where}: unknown keys {unknown}"
    for f in by_name.values():
        if f.required:
            assert rec.get(f.name) is not None, f"{where}: missing {f.name}"
    for name, value in rec.items():
        if name in extra:
            continue
        f = by_name[name]
        assert f.py_ok(value), f"{where}: {name}={value!r} is not {f.expect()}"
        if f.allowed is not None and value is not None:
            assert value in f.allowed, f"{where}: {name}={value!r}"
        if f.kind is Kind.STRUCT and value is not None:
            _check(f.children, value, f"{where}.{name}")
        if f.kind is Kind.STRUCT_LIST and value is not None:
            for item in value:
                _check(f.children, item, f"{where}.{name}[]")


def test_every_record_fits_the_registry(generated: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    for cluster, kinds in generated.items():
        for kind, recs in kinds.items():
            assert recs, f"{cluster}/{kind}: nothing generated"
            extra = ("@timestamp",) if kind == "flows" else ()
            for rec in recs:
                _check(REGISTRY[kind].fields, rec, f"{cluster}/{kind}", extra)


def test_flow_records_follow_the_aggregation_levels(generated: dict[str, Any]) -> None:
    for rec in generated["cluster"]["flows"]:
        assert rec["source_port"] is None
        assert rec["@timestamp"] == rec["end_time"] * 1000 and rec["end_time"] - rec["start_time"] == 300
        assert 0 <= rec["num_flows_completed"] <= rec["num_flows"] and rec["num_flows_started"] <= rec["num_flows"]
        if rec["action"] == "allow":  # level 2
            assert rec["source_ip"] is None and rec["dest_ip"] is None
            assert rec["source_name"] == "-" and rec["dest_name"] == "-"
            assert rec["dest_port"] is not None
        else:  # level 1: names and IPs kept, source port dropped
            assert rec["source_ip"] and rec["dest_ip"]
            assert rec["source_name"] != "-" or rec["source_type"] == "net"
        if rec["dest_type"] == "net":
            assert rec["dest_name_aggr"] in ("pvt", "pub") and rec["dest_namespace"] == "-"
            assert (rec["dest_domains"] is not None) == (rec["dest_name_aggr"] == "pub")
        if rec["source_type"] == "wep":
            assert rec["source_name_aggr"].endswith("*")
        assert rec["process_name"] == "-" or rec["num_process_names"] >= 1
        assert rec["process_id"] in ("-", "*") or rec["process_id"].isdigit()


def test_flows_draw_the_topology_graph(topo: Topology, generated: dict[str, Any]) -> None:
    for cluster in topo.clusters:
        edges = topo.edges(cluster)
        seen = {(r["source_namespace"], r["source_name_aggr"], r["dest_namespace"], r["dest_name_aggr"], r["action"])
                for r in generated[cluster]["flows"]}
        graph = {e[:4] for e in edges}
        assert {s[:4] for s in seen} == graph
        for denied in topo.denied(cluster):
            assert denied in seen, denied
        final = {e[:4]: e[4] for e in edges}
        for key in seen:
            if key[4] == "deny":
                assert final[key[:4]] == "deny"


def test_the_known_denied_pairs(topo: Topology) -> None:
    denied = {(s, sa.split("-")[0], d, da.split("-")[0]) for s, sa, d, da, _ in topo.denied("cluster")}
    assert denied == {("data", "exporter", "-", "pub"), ("shop", "web", "data", "db"),
                      ("shop", "cart", "payments", "ledger"), ("-", "pvt", "data", "db")}
    web = next(w for w in topo.cluster("cluster").workloads if w.name == "web")
    assert re.fullmatch(r"web-[a-z0-9]+-\*", web.name_aggr)
    assert all(re.fullmatch(re.escape(web.generate_name) + r"[a-z0-9]{5}", m.name) for m in web.members)


def test_policy_traces_and_both_staged_forms(generated: dict[str, Any]) -> None:
    traces = set()
    for rec in generated["cluster"]["flows"]:
        for name, entries in rec["policies"].items():
            orders = [int(TRACE.match(t).group(1)) for t in entries]  # type: ignore[union-attr]
            assert sorted(orders) == list(range(len(entries))), (name, entries)
            traces.update(entries)
        if rec["action"] == "deny":
            assert TRACE.match(rec["policies"]["enforced_policies"][-1]).group(4) == "deny"  # type: ignore[union-attr]
    policies = {TRACE.match(t).group(3) for t in traces}  # type: ignore[union-attr]
    assert "payments/staged:security.restrict-egress" in policies  # docs form
    assert "data/security.staged:db-lockdown" in policies  # code form
    assert "data/staged:knp.default.db-open" in policies
    assert any(re.fullmatch(r"[a-z-]+/knp\.default\.[a-z-]+", p) for p in policies)
    assert any(p.startswith("__PROFILE__.kns.") for p in policies)
    assert any(re.fullmatch(r"[a-z]+\.[a-z-]+", p) for p in policies)  # a GlobalNetworkPolicy


def test_bird_lines_parse_and_noise_is_dropped(topo: Topology) -> None:
    lines = list(bgp_lines(topo, "cluster", START, START + timedelta(days=1), node="worker-2"))
    assert lines and all(BIRD.match(line) for line in lines)
    parsed = [parse_bird_line(line, "worker-2", "IPv4") for line in lines]
    assert any(p is None for p in parsed) and any("State changed to up" in p["message"] for p in parsed if p)
    for line, rec in zip(lines, parsed, strict=True):
        assert (rec is None) == ("device1: Scanning interfaces" in line)
        if rec is not None:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["logtime"])
            _check(REGISTRY["bgp"].fields, rec, "bgp")
    assert [parse_bird_line(s, "n", "IPv6") is None for s in SAMPLES["bgp"]] == [False, True, False, False]
    assert parse_bird_line("garbage", "n", "IPv4") is None


def test_native_files_layout(topo: Topology, tmp_path: Path) -> None:
    counts = write_native_files(topo, tmp_path, START, START + timedelta(hours=1))
    assert all(counts.values()), counts
    written = {k: 0 for k in counts}
    for cluster in topo.clusters:
        for node in topo.nodes(cluster):
            base = tmp_path / cluster / node.name
            for rel, kind in (("flowlogs/flows.log", "flows"), ("dnslogs/dns.log", "dns"), ("l7logs/l7.log", "l7"),
                              ("bird/current", "bgp"), ("bird6/current", "bgp"), ("waf/waf.log", "waf")):
                lines = (base / rel).read_bytes().splitlines()
                written[kind] += len(lines)
            first = orjson.loads((base / "flowlogs/flows.log").read_bytes().splitlines()[0])
            assert "host" not in first and "@timestamp" not in first
        audit = tmp_path / cluster / "worker-1" / "audit"
        written["audit_ee"] += len((audit / "tsee-audit.log").read_bytes().splitlines())
        written["audit_kube"] += len((audit / "kube-audit.log").read_bytes().splitlines())
        written["events"] += len((tmp_path / cluster / "events.ndjson").read_bytes().splitlines())
    assert written == counts


def test_post_to_server_sends_gzipped_ndjson_with_retries(topo: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "_sleep", lambda s: None)
    seen: list[httpx.Request] = []
    failures = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/dns/logs/bulk") and failures["n"] < 2:
            failures["n"] += 1
            return httpx.Response(503)
        seen.append(request)
        n = gzip.decompress(request.content).count(b"\n")
        return httpx.Response(200, json={"total": n, "succeeded": n, "failed": 0})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    end = START + timedelta(minutes=30)
    counts = post_to_server("http://margay/", topo, START, end, token="t0k", batch_size=500, client=client)
    expected = {k: sum(1 for _ in GENERATORS[k](topo, c, START, end)) for k in GENERATORS for c in topo.clusters[:1]}
    assert counts["flows"] == expected["flows"] + sum(1 for _ in flows(topo, "app-cluster-1", START, end))
    assert failures["n"] == 2
    paths = {r.url.path for r in seen}
    assert paths == {"/api/v1/flows/logs/bulk", "/api/v1/dns/logs/bulk", "/api/v1/audit/logs/ee/bulk",
                     "/api/v1/audit/logs/kube/bulk", "/api/v1/bgp/logs/bulk", "/api/v1/events/bulk",
                     "/api/v1/l7/logs/bulk", "/api/v1/waf/logs/bulk"}
    for r in seen:
        assert r.headers["content-type"] == "application/x-ndjson"
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["authorization"] == "Bearer t0k"
        assert r.headers["x-cluster-id"] in topo.clusters
        for line in gzip.decompress(r.content).splitlines():
            orjson.loads(line)
    keys = [r.headers["idempotency-key"] for r in seen]
    assert len(set(keys)) == len(keys)
    again: list[str] = []
    client2 = httpx.Client(transport=httpx.MockTransport(
        lambda r: again.append(r.headers["idempotency-key"]) or httpx.Response(200, json={})))
    post_to_server("http://margay", topo, START, end, batch_size=500, client=client2)
    assert again == keys


def test_post_to_server_gives_up_on_client_errors(topo: Topology) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, json={"error": {}})))
    with pytest.raises(httpx.HTTPStatusError):
        post_to_server("http://margay", topo, START, START + timedelta(minutes=10), client=client, gzip=False)


def test_run_live_posts_now_data_until_stopped(topo: Topology) -> None:
    stop = threading.Event()
    sent: list[tuple[str, str, int]] = []

    def progress(cluster: str, kind: str, n: int) -> None:
        sent.append((cluster, kind, n))
        stop.set()  # the loop finishes the window it is posting, then returns

    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    clock = FakeClock(START + timedelta(seconds=123))
    counts = run_live("http://margay", topo, rate_per_s=50, stop_event=stop, clock=clock, progress=progress,
                      client=client)
    assert counts["flows"] > 0 and sent[0][1] == "flows"
    assert sum(n for _, k, n in sent if k == "flows") == counts["flows"]


def test_naive_datetimes_are_refused(topo: Topology) -> None:
    with pytest.raises(ValueError):
        list(flows(topo, "cluster", datetime(2026, 1, 1), datetime(2026, 1, 2)))  # noqa: DTZ001


def test_generation_speed(topo: Topology) -> None:
    """Reports flow records rendered to NDJSON per second; no assertion (machines differ)."""
    end = START + timedelta(days=1)
    flows(topo, "cluster", START, end)  # warm the templates
    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(body.count(b"\n") for body in ndjson_batches(flows(topo, "cluster", START, end), 5000))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\nsimulate: {n} flow records to NDJSON: {n / cpu:,.0f}/s CPU, {n / wall:,.0f}/s wall")


def test_backfill_days_posts_whole_days_back_from_the_clock(topo: Topology) -> None:
    windows: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ends = [orjson.loads(line)["end_time"] for line in request.content.splitlines()]
        windows.append((min(ends), max(ends)))
        return httpx.Response(200, json={})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    clock = FakeClock(START + timedelta(seconds=299))
    counts = feed.backfill_days("http://margay", topo, 1.5, clock=clock, client=client, gzip=False,
                                kinds=("flows",), batch_size=100_000)
    stop = int(START.timestamp())
    assert len(windows) == 2 * len(topo.clusters)
    assert min(w[0] for w in windows) == stop - int(1.5 * 86400) and max(w[1] for w in windows) == stop - 300
    assert counts == {"flows": sum(1 for c in topo.clusters for _ in flows(
        topo, c, START - timedelta(days=1.5), START))}


def test_live_traffic_is_the_backfill_continued(topo: Topology) -> None:
    """After a gap and then window by window, live posts exactly what a backfill of that time holds:
    the same records at the same rate (no time-lapse spike)."""
    posted: list[bytes] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            posted.extend(gzip.decompress(request.content).splitlines())
        return httpx.Response(200, json={})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    clock = FakeClock(START + timedelta(seconds=7))
    gap_from = START - timedelta(minutes=40)  # the demo stopped 40 minutes ago
    stop = threading.Event()
    thread = threading.Thread(target=run_live, args=("http://margay", topo), kwargs={
        "stop_event": stop, "clock": clock, "start": gap_from, "client": client, "poll": 0.05})
    thread.start()
    try:
        for _ in range(3):
            time.sleep(0.5)
            clock.advance(300)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=60)
    end = clock.now()
    expected = [line for c in topo.clusters for kind in feed.KINDS
                for body in ndjson_batches(feed.records(topo, c, kind, gap_from, end), 5000) for line in body.splitlines()]
    missing, extra = set(expected) - set(posted), set(posted) - set(expected)
    assert not missing and not extra, (len(missing), len(extra))
    assert sorted(posted) == sorted(expected)  # and nothing twice
    flow_ends = sorted({orjson.loads(line)["end_time"] for line in posted if b'"reporter"' in line})
    assert flow_ends == list(range(int(gap_from.timestamp()), int(START.timestamp()) + 901, 300))  # every window once


def test_resume_points_continue_after_what_the_server_stores(topo: Topology, server: Any) -> None:
    # The newest hour-aligned start at least 4 hours back whose first two hours hold every kind: the rare kinds
    # (WAF, events) are drawn per hour, and some hours have none.
    latest = datetime.fromtimestamp(time.time() // 3600 * 3600 - 4 * 3600, UTC)
    start = next(s for s in (latest - timedelta(hours=h) for h in range(48))
                 if all(any(True for c in topo.clusters for _ in feed.records(topo, c, kind, s, s + timedelta(hours=2)))
                        for kind in feed.KINDS))
    first = post_to_server(server.url, topo, start, start + timedelta(hours=2))
    assert all(first.values()), first
    resume = feed.resume_points(server.url, topo, start - timedelta(days=1))
    assert resume[("cluster", "flows")] == start + timedelta(hours=2, seconds=-299)  # last window: ends 5 min before
    second = post_to_server(server.url, topo, start, start + timedelta(hours=3), resume=resume)
    for kind in ("flows", "dns", "l7"):  # window-aligned: exactly the third hour was sent
        assert second[kind] == sum(1 for c in topo.clusters for _ in feed.records(
            topo, c, kind, start + timedelta(hours=2), start + timedelta(hours=3))), kind
    stored = {kind: 0 for kind in feed.KINDS}
    for kind in feed.KINDS:
        lt = REGISTRY[kind]
        path, extra = feed._NEWEST[kind]
        for c in topo.clusters:
            r = httpx.post(server.url + path, json={"time_range": {"from": start.isoformat(), "to": "now"},
                                                   "max_page_size": 1, **extra}, headers={"x-cluster-id": c})
            stored[kind] += r.json()["total_hits"]
        generated = sum(1 for c in topo.clusters for _ in feed.records(topo, c, kind, start, start + timedelta(hours=3)))
        # Nothing twice; at most a record per cluster lost in the second after the newest stored one
        # (BGP and event times are whole seconds).
        assert generated - len(topo.clusters) <= stored[kind] <= generated, (kind, lt.name, stored[kind], generated)
    assert stored["flows"] == first["flows"] + second["flows"]
