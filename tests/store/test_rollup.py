"""Roll-ups: compaction writes them, recovery and drops keep them consistent, and aggregations read them
with answers identical to the raw rows' (randomised data and randomised qualifying requests)."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margay.logtypes import REGISTRY, LogType
from margay.query.linseed_aggs import linseed_request
from margay.query.model import Query
from margay.query.selector import parse_selector
from margay.store import rollup
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb.aggs import Scope
from margay.store.duckdb.reads import linseed_aggregator
from margay.testing.server import ServerProcess

FLOWS, DNS = REGISTRY["flows"], REGISTRY["dns"]
T0 = 1_700_000_000  # not on an hour: 2023-11-14T22:13:20Z
SPAN = 60 * 3600  # records over 2.5 days: three day partitions
NOW = datetime(2026, 11, 27, tzinfo=UTC)

NAMESPACES = ["a", "b", "c", "-", None]
AGGR = ["x-*", "y-*", "pub", "pvt", None]
QNAMES = ["a.com", "b.com", "c.org", None]


def _maybe(r: random.Random, v: Any, p: float = 0.15) -> Any:
    return None if r.random() < p else v


def flow(r: random.Random) -> dict[str, Any]:
    end = T0 + r.randrange(SPAN)
    return {
        "start_time": end - 300, "end_time": end, "action": r.choice(["allow", "deny"]),
        "reporter": r.choice(["src", "dst"]), "proto": r.choice(["tcp", "udp", None]),
        "source_type": r.choice(["wep", "hep", "net", None]), "dest_type": r.choice(["wep", "ns", "net"]),
        "source_namespace": r.choice(NAMESPACES), "dest_namespace": r.choice(NAMESPACES),
        "source_name_aggr": r.choice(AGGR), "dest_name_aggr": r.choice(AGGR),
        "dest_service_namespace": r.choice(NAMESPACES), "dest_service_name": r.choice(["svc", "-", None]),
        "dest_port": r.choice([80, 443, 8080, None]), "dest_domains": r.choice([None, [], ["a.com"], ["b.com", "a.com"]]),
        "host": r.choice(["n1", "n2"]),
        **{m: _maybe(r, r.randrange(0, 10**6)) for m in FLOWS.rollup.measures},  # type: ignore[union-attr]
    }


def dns(r: random.Random) -> dict[str, Any]:
    end = datetime.fromtimestamp(T0 + r.randrange(SPAN), UTC) + timedelta(microseconds=r.randrange(10**6))
    return {
        "start_time": (end - timedelta(seconds=300)).isoformat(), "end_time": end.isoformat(),
        "type": r.choice(["log", "unlogged"]), "count": _maybe(r, r.randrange(1, 100)),
        "client_namespace": r.choice(NAMESPACES), "client_name_aggr": r.choice(AGGR),
        "qname": r.choice(QNAMES), "qtype": r.choice(["A", "AAAA", None]), "qclass": "IN",
        "rcode": r.choice(["NoError", "NXDomain"]), "host": r.choice(["n1", "n2"]),
        "latency_count": _maybe(r, r.randrange(1, 10)), "latency_mean": _maybe(r, r.randrange(10**6)),
        "latency_max": _maybe(r, r.randrange(10**7)),
    }


def ingest(store: DuckDBBackend, lt: LogType, cluster: str, recs: list[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(x) for x in recs)
    resp, _ = store.ingest(lt, cluster, body, key=None, now=NOW, respond=lambda c: {"ok": c.succeeded})
    assert resp["ok"] == len(recs)


def load(store: DuckDBBackend, seed: int) -> None:
    """Compacted files with roll-ups, then a few fresh files without: both halves of the union source."""
    r = random.Random(seed)
    for lt, make in ((FLOWS, flow), (DNS, dns)):
        for cluster in ("c1", "c2"):
            for _ in range(4):
                ingest(store, lt, cluster, [make(r) for _ in range(r.randrange(50, 400))])
    while store.compact():
        pass
    for lt, make in ((FLOWS, flow), (DNS, dns)):
        ingest(store, lt, "c1", [make(r) for _ in range(200)])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBBackend]:
    s = DuckDBBackend(tmp_path_factory.mktemp("rollup"), compact_min_files=2, compact_interval=3600,
                      compact_cold_after=0)
    load(s, 7)
    yield s
    s.close()


def raw(store: DuckDBBackend, q: Query, aggs: dict[str, Any]) -> dict[str, Any]:
    request = linseed_request(q.logtype, aggs)
    return store.run_over(q, lambda run, src, ps: linseed_aggregator(q, run).aggregate(request, Scope(src, ps)))


# -- randomised requests ------------------------------------------------------------------------------------

DIMS = {FLOWS.name: ["action", "reporter", "proto", "source_type", "dest_type", "source_namespace",
                     "dest_namespace", "source_name_aggr", "dest_name_aggr", "dest_service_name", "dest_port"],
        DNS.name: ["type", "qname", "qtype", "rcode", "client_namespace", "client_name_aggr"]}
VALUES = {"action": ["allow", "deny"], "reporter": ["src", "dst"], "proto": ["tcp", "udp"],
          "source_type": ["wep", "hep", "net"], "dest_type": ["wep", "ns", "net"], "type": ["log", "unlogged"],
          "qtype": ["A", "AAAA"], "rcode": ["NoError", "NXDomain"], "qname": ["a.com", "B.com", "x"],
          "dest_service_name": ["svc", "-"], "dest_port": [80, 443, 9]}


def _value(dim: str) -> list[Any]:
    return VALUES.get(dim, ["a", "b", "-", "x-*", "pub"])


@st.composite
def selectors(draw: Any, lt: LogType) -> str | None:
    def leaf() -> str:
        dim = draw(st.sampled_from(DIMS[lt.name]))
        vals = _value(dim)
        show = (lambda v: str(v)) if dim == "dest_port" else (lambda v: f'"{v}"')
        op = draw(st.sampled_from(["=", "!=", "IN", "NOTIN"] + ([">", "<="] if dim == "dest_port" else [])))
        if op in ("IN", "NOTIN"):
            picked = draw(st.lists(st.sampled_from(vals), min_size=1, max_size=3))
            return f"{dim} {op} {{{', '.join(show(v) for v in picked)}}}"
        return f"{dim} {op} {show(draw(st.sampled_from(vals)))}"

    n = draw(st.integers(0, 3))
    if n == 0:
        return None
    parts = [leaf() for _ in range(n)]
    joined = parts[0]
    for p in parts[1:]:
        joined = f"({joined}) {draw(st.sampled_from(['AND', 'OR']))} {p}"
    return f"NOT ({joined})" if draw(st.booleans()) and n == 1 else joined


@st.composite
def metric(draw: Any, lt: LogType) -> dict[str, Any]:
    r = lt.rollup
    assert r is not None
    if draw(st.integers(0, 3)) == 0:
        dim = draw(st.sampled_from(DIMS[lt.name]))
        kinds = ["cardinality", "value_count"] + (["min", "max"] if dim == "dest_port" else [])
        return {draw(st.sampled_from(kinds)): {"field": dim}}
    kind = draw(st.sampled_from(sorted(rollup.MEASURE_METRICS)))
    return {kind: {"field": draw(st.sampled_from(r.measures))}}


@st.composite
def aggs_tree(draw: Any, lt: LogType, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["terms", "terms", "metric", "hist"] if depth < 2 else ["metric"]))
        if kind == "metric":
            out[f"m{depth}{i}"] = draw(metric(lt))
            continue
        subs = draw(aggs_tree(lt, depth + 1)) if draw(st.booleans()) else {}
        if kind == "hist":
            interval = draw(st.sampled_from([{"fixed_interval": "1h"}, {"fixed_interval": "3h"},
                                             {"fixed_interval": "1d"}, {"calendar_interval": "day"},
                                             {"calendar_interval": "1h"}, {"interval": "2h"}]))
            out[f"h{depth}{i}"] = {"date_histogram": {"field": lt.time_field, **interval}, **({"aggs": subs} if subs else {})}
            continue
        spec: dict[str, Any] = {"field": draw(st.sampled_from(DIMS[lt.name])), "size": draw(st.integers(1, 12))}
        metrics = [n for n, s in subs.items() if next(iter(s)) in rollup.MEASURE_METRICS | rollup.DIM_METRICS]
        order = draw(st.sampled_from([None, {"_count": "asc"}, {"_key": "desc"}] + [{m: "desc"} for m in metrics]))
        if order is not None:
            spec["order"] = order
        if draw(st.booleans()):
            spec["min_doc_count"] = draw(st.integers(1, 3))
        out[f"t{depth}{i}"] = {"terms": spec, **({"aggs": subs} if subs else {})}
    return out


@st.composite
def requests(draw: Any) -> tuple[Query, dict[str, Any]]:
    lt = draw(st.sampled_from([FLOWS, DNS]))
    clusters = draw(st.sampled_from([["c1"], ["c2"], ["c1", "c2"]]))
    start = end = None
    if draw(st.booleans()):
        start = datetime.fromtimestamp(T0 - 3600 + draw(st.integers(0, SPAN + 3600)), UTC)
        start += timedelta(microseconds=draw(st.sampled_from([0, 1, 500_000, 999_999])))
    if draw(st.booleans()):
        lo = start or datetime.fromtimestamp(T0, UTC)
        end = lo + timedelta(seconds=draw(st.integers(0, SPAN)), microseconds=draw(st.sampled_from([0, 999_999])))
    text = draw(selectors(lt))
    q = Query(lt, clusters, start=start, end=end, selector=parse_selector(text) if text else None,
              selector_text=text, now=NOW)
    return q, draw(aggs_tree(lt))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(req=requests())
def test_rollup_answers_equal_raw_answers(store: DuckDBBackend, req: tuple[Query, dict[str, Any]]) -> None:
    q, aggs = req
    assert rollup.aggs_qualify(q, aggs)
    got, path = astuple(store.aggregate(q, aggs))
    assert got == raw(store, q, aggs)
    if q.start is None and q.end is None:
        assert path == "rollup"


def test_typical_questions_take_the_rollup_path(store: DuckDBBackend) -> None:
    start, end = datetime.fromtimestamp(T0 + 1000, UTC), datetime.fromtimestamp(T0 + SPAN - 1000, UTC)
    top = {"dest": {"terms": {"field": "dest_name_aggr", "size": 10, "order": {"bytes": "desc"}},
                    "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}
    q = Query(FLOWS, ["c1", "c2"], start=start, end=end)
    got, path = astuple(store.aggregate(q, top))
    assert path == "rollup" and got == raw(store, q, top)
    assert sum(b["doc_count"] for b in got["dest"]["buckets"]) > 0
    dq = Query(DNS, ["c1"], start=start, end=end)
    top_dns = {"domains": {"terms": {"field": "qname", "size": 10}}}
    got, path = astuple(store.aggregate(dq, top_dns))
    assert path == "rollup" and got == raw(store, dq, top_dns)


@pytest.mark.parametrize("aggs,selector", [
    ({"n": {"cardinality": {"field": "bytes_in"}}}, None),  # distinct values do not roll up
    ({"h": {"terms": {"field": "host"}}}, None),  # not a dim
    ({"t": {"terms": {"field": "action"}}}, 'host = "n1"'),  # selector on a non-dim
    ({"h": {"date_histogram": {"field": "end_time", "fixed_interval": "5m"}}}, None),  # finer than an hour
    ({"h": {"date_histogram": {"field": "start_time", "fixed_interval": "1h"}}}, None),  # not the time field
    ({"m": {"max": {"field": "end_time"}}}, None),  # the time field is bucketed in a roll-up
    ({"t": {"terms": {"field": "dest_domains"}}}, None),  # a list
])
def test_other_questions_read_raw_rows(store: DuckDBBackend, aggs: dict[str, Any], selector: str | None) -> None:
    q = Query(FLOWS, ["c1", "c2"], selector=parse_selector(selector) if selector else None, now=NOW)
    assert not rollup.aggs_qualify(q, aggs)
    got, path = astuple(store.aggregate(q, aggs))
    assert path == "raw" and got == raw(store, q, aggs)


def test_scope_filters_on_dims_qualify_and_others_do_not() -> None:
    from margay.query.restriction import Restriction

    q = Query(FLOWS, ["c1", "c2"], restriction=Restriction({"c1": frozenset({"a", "b"})}))
    assert rollup.aggs_qualify(q, {"t": {"terms": {"field": "action"}}})
    narrowed = Restriction({"c1": frozenset({"a"})}, frozenset({"source"}))
    assert rollup.aggs_qualify(Query(FLOWS, ["c1"], restriction=narrowed), {"t": {"terms": {"field": "action"}}})
    for sel in ('host = "n1"', 'dest_domains = "a.com"', 'source_ip = "10.0.0.1"'):
        q2 = Query(FLOWS, ["c1"], selector=parse_selector(sel), restriction=narrowed)
        assert not rollup.aggs_qualify(q2, {"t": {"terms": {"field": "action"}}}), sel


# -- files: compaction, recovery, drops ---------------------------------------------------------------------

def _rollups(data: Path) -> list[Path]:
    """The sidecars placed in a data dir's store (scratch folders come and go under a running server)."""
    return sorted((data / "store").rglob(rollup.GLOB))


def test_compaction_writes_sidecars_that_sum_to_the_data(tmp_path: Path) -> None:
    s = DuckDBBackend(tmp_path, compact_min_files=2, compact_interval=3600, compact_cold_after=0)
    r = random.Random(1)
    for _ in range(3):
        ingest(s, FLOWS, "c1", [flow(r) for _ in range(300)])
    assert _rollups(tmp_path) == []  # never on the ingest path
    while s.compact():
        pass
    files = [f for fs in s.catalog.parts.values() for f in fs]
    assert files and all(f.rollup is not None and f.rollup == rollup.sidecar(f.path, FLOWS) for f in files)
    assert _rollups(tmp_path) == sorted(f.rollup for f in files if f.rollup)
    con = duckdb.connect()
    for f in files:
        n, c, b = con.execute('SELECT count(*), sum("_count"), sum("bytes_in") FROM read_parquet(?)',
                              [str(f.rollup)]).fetchall()[0]
        assert c == f.rows and n <= f.rows
        assert b == con.execute('SELECT sum("bytes_in") FROM read_parquet(?)', [str(f.path)]).fetchall()[0][0]
    s.close()
    reopened = DuckDBBackend(tmp_path, compact_interval=3600)  # the catalog finds them again
    assert all(f.rollup is not None for fs in reopened.catalog.parts.values() for f in fs)
    reopened.close()


def test_missing_rollups_are_built_for_large_files(tmp_path: Path) -> None:
    s = DuckDBBackend(tmp_path, compact_interval=3600)
    r = random.Random(2)
    ingest(s, DNS, "c1", [dns(r) for _ in range(500)])
    assert s.build_rollups(1000) == 0  # small files wait for their merge
    assert s.build_rollups(1) == len(s.catalog.parts)  # one file per day partition
    assert all(f.rollup is not None for fs in s.catalog.parts.values() for f in fs)
    q = Query(DNS, ["c1"])
    aggs = {"q": {"terms": {"field": "qname"}, "aggs": {"n": {"sum": {"field": "count"}}}}}
    got, path = astuple(s.aggregate(q, aggs))
    assert path == "rollup" and got == raw(s, q, aggs)
    # A read over roll-ups counts their rows, not the raw ones, to pick its engine (reader.cursor); a roll-up
    # it cannot read counts as unknown (the large engine).
    files = [f for fs in s.catalog.parts.values() for f in fs]
    rolled = sum(duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(f.rollup)]).fetchall()[0][0]
                 for f in files)
    assert s._rolled_rows(files) == rolled < sum(f.rows for f in files)
    files[0].rollup.rename(files[0].rollup.with_suffix(".gone"))  # type: ignore[union-attr]
    assert s._rolled_rows(files[:1]) < 1 << 62  # read once per file, then remembered
    s._rollup_rows.clear()
    assert s._rolled_rows(files[:1]) == 1 << 62
    s.close()


@pytest.mark.parametrize("undone", [2, 1])  # crashed before both renames / between the two
def test_recovery_rolls_a_compaction_with_its_rollup_forward(tmp_path: Path, undone: int) -> None:
    # A hot partition's tier merge (a cold day's merge across clusters: tests/store/test_layout.py).
    s = DuckDBBackend(tmp_path, compact_min_files=2, compact_interval=3600, compact_cold_after=3600)
    r = random.Random(3)
    recs = [dict(flow(r), end_time=T0 + 10 * i, start_time=T0 + 10 * i - 300) for i in range(400)]  # one day
    ingest(s, FLOWS, "c1", recs[:200])
    ingest(s, FLOWS, "c1", recs[200:])
    before = raw(s, Query(FLOWS, ["c1"]), {"a": {"terms": {"field": "action"}}})
    assert s.compact() == 1
    # A crash after the journal line, before the renames: the merged file and its roll-up back in scratch.
    entry = orjson.loads((tmp_path / "journal.ndjson").read_bytes().splitlines()[-1])
    assert entry["op"] == "compact" and len(entry["moves"]) == 2
    s.close()
    for src, dst in entry["moves"][-undone:]:
        Path(src).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(dst, src)
    s2 = DuckDBBackend(tmp_path, compact_interval=3600)
    files = [f for fs in s2.catalog.parts.values() for f in fs]
    assert len(files) == 1 and files[0].rollup is not None and files[0].rollup.exists()
    assert not any(Path(p).exists() for p in entry["delete"])
    q = Query(FLOWS, ["c1"])
    got, path = astuple(s2.aggregate(q, {"a": {"terms": {"field": "action"}}}))
    assert path == "rollup" and got == before
    s2.close()


def test_a_rollup_without_its_data_file_is_removed(tmp_path: Path) -> None:
    s = DuckDBBackend(tmp_path, compact_interval=3600)
    r = random.Random(4)
    ingest(s, FLOWS, "c1", [flow(r) for _ in range(100)])
    f = next(f for fs in s.catalog.parts.values() for f in fs)
    s.close()
    orphan = rollup.sidecar(f.path.with_name("0000000000000900-0000000000000999-9.parquet"), FLOWS)
    orphan.write_bytes(b"x")
    stale = f.path.with_name(f.path.name.replace(".parquet", ".rollup-00000000.parquet"))  # another definition
    stale.write_bytes(b"x")
    s2 = DuckDBBackend(tmp_path, compact_interval=3600)
    assert not orphan.exists() and not stale.exists()
    assert all(f.rollup is None for fs in s2.catalog.parts.values() for f in fs)
    assert s2.build_rollups(0) == len(s2.catalog.parts)  # rebuilt for the current definition
    assert len(_rollups(tmp_path)) == len(s2.catalog.parts)
    s2.close()


def test_drop_and_merges_remove_sidecars(tmp_path: Path) -> None:
    s = DuckDBBackend(tmp_path, compact_min_files=2, compact_interval=3600, compact_cold_after=0)
    r = random.Random(5)
    day = [dict(flow(r), end_time=T0 + i, start_time=T0 + i - 300) for i in range(200)]  # one day partition
    ingest(s, FLOWS, "c1", day[:100])
    s.build_rollups(0)
    ingest(s, FLOWS, "c1", day[100:])
    s.build_rollups(0)
    first = _rollups(tmp_path)
    assert len(first) == 2
    assert s.compact() == 1
    after = _rollups(tmp_path)
    assert len(after) == 1 and not set(first) & set(after)  # the merged-away files' roll-ups went with them
    (key,) = s.catalog.parts
    assert s.drop(Partition(*key)) == 200
    assert _rollups(tmp_path) == [] and not any((tmp_path / "store").rglob("*.parquet"))
    s.close()


def test_kill_9_during_compaction_leaves_rollups_consistent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = ServerProcess(data).start()
    stop = threading.Event()
    r = random.Random(6)
    bodies = [b"\n".join(orjson.dumps(dict(flow(r), end_time=T0 + j, start_time=T0 + j - 300)) for j in range(300))
              for _ in range(8)]

    def writer() -> None:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                try:
                    http.post("/api/v1/flows/logs/bulk", content=bodies[i % len(bodies)],
                              headers={"content-type": "application/x-ndjson"})
                except httpx.HTTPError:
                    return
                i += 1

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 60
    while not _rollups(data) and time.monotonic() < deadline:  # at least one merge wrote its roll-up
        time.sleep(0.05)
    time.sleep(random.random())
    proc.kill()
    stop.set()
    t.join()
    assert _rollups(data)
    s = DuckDBBackend(data, compact_interval=3600)  # recovery, as a restarted server runs it
    files = [f for fs in s.catalog.parts.values() for f in fs]
    assert {f.rollup for f in files if f.rollup} == set(_rollups(data))  # no orphans, all attached
    con = duckdb.connect()
    for f in files:
        if f.rollup is not None:
            assert con.execute('SELECT sum("_count") FROM read_parquet(?)', [str(f.rollup)]).fetchall()[0][0] == f.rows
    q = Query(FLOWS, ["cluster"])
    aggs = {"d": {"terms": {"field": "dest_name_aggr"}, "aggs": {"b": {"sum": {"field": "bytes_in"}}}}}
    got, path = astuple(s.aggregate(q, aggs))
    assert path == "rollup" and got == raw(s, q, aggs)
    s.close()
