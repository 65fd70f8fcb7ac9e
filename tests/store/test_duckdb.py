"""The embedded store: compaction, dropping frees disk, and journal recovery."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query, SortKey
from margay.query.selector import parse_selector
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import reader as duckdb_mod
from margay.store.sql import SearchCompiler

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FLOWS = REGISTRY["flows"]


def batch(start: int, n: int) -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    return b"\n".join(orjson.dumps(dict(base, bytes_in=start + j)) for j in range(n))


def ingest(store: DuckDBBackend, body: bytes, key: str | None = None, cluster: str = "c") -> dict:
    return store.ingest(FLOWS, cluster, body, key=key, now=NOW, respond=lambda c: {"succeeded": c.succeeded})[0]


def all_bytes(store: DuckDBBackend, cluster: str = "c") -> list[int]:
    res = store.search(Query(FLOWS, [cluster], size=10_000, sort=[]))
    return sorted(i["bytes_in"] for i in res.items)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_compaction_merges_files_and_keeps_every_record(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_min_files=4, compact_interval=3600)
    for i in range(10):
        ingest(store, batch(i * 100, 100))
    assert store.stats()["files"] == 10
    assert store.compact() == 2  # two merges of 4 like-sized files; 2 files wait for more company
    assert store.stats()["files"] == 4
    assert (store.stats()["merges"], store.stats()["compacting"]) == (2, False)
    while store.compact():
        pass
    assert store.stats()["files"] == 1  # 400 + 400 + 100 + 100 are one tier: merged once more
    assert all_bytes(store) == list(range(1000))
    store.close()
    reopened = DuckDBBackend(tmp_path, compact_interval=3600)
    assert all_bytes(reopened) == list(range(1000))
    reopened.close()


def test_drop_frees_disk(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(store, batch(0, 5000), cluster="a")
    ingest(store, batch(0, 10), cluster="b")
    before = dir_bytes(tmp_path / "store")
    dropped = store.drop(Partition("flows", "a", "20231114"))
    after = dir_bytes(tmp_path / "store")
    assert dropped == 5000
    assert after < before / 2
    assert not (tmp_path / "store" / "flows" / "a" / "20231114").exists()
    assert all_bytes(store, "a") == [] and len(all_bytes(store, "b")) == 10
    store.close()



def test_a_batch_committed_to_an_index_after_its_drop_is_kept(tmp_path: Path) -> None:
    """Late data for a dropped index land in its folder again: neither the drop's deferred delete (a read was
    running) nor replaying the drop's journal line on start-up may take them (both deleted the whole folder)."""
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(store, batch(0, 5), key="k1", cluster="a")
    with store.catalog.snapshot():  # a read running across the drop and the late commit
        assert store.drop(Partition("flows", "a", "20231114")) == 5
        assert ingest(store, batch(100, 5), key="k2", cluster="a") == {"succeeded": 5}
    assert all_bytes(store, "a") == list(range(100, 105))
    store.close()
    again = DuckDBBackend(tmp_path, compact_interval=3600)
    assert all_bytes(again, "a") == list(range(100, 105))
    assert again.ingest(FLOWS, "a", batch(100, 5), key="k2", now=NOW, respond=lambda c: {})[1] is True
    assert all_bytes(again, "a") == list(range(100, 105))
    again.close()

def test_recovery_rolls_a_journaled_commit_forward(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(store, batch(0, 3), key="k1")
    store.close()
    # Simulate a crash after the journal line but before the rename: move the file back to scratch.
    entry = orjson.loads((tmp_path / "journal.ndjson").read_bytes().splitlines()[-1])
    assert entry["key"] == "c/flows/k1"
    store2 = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(store2, batch(100, 2), key="k2")
    journal = (tmp_path / "journal.ndjson").read_bytes().splitlines()
    last = orjson.loads(journal[-1])
    src, dst = last["moves"][0]
    Path(src).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).rename(src)
    store2.journal.close()
    store2.con.close()
    store3 = DuckDBBackend(tmp_path, compact_interval=3600)
    assert all_bytes(store3) == [0, 1, 2, 100, 101]
    # Both keys survived the restarts: a retry is answered from the journal.
    assert store3.seen(FLOWS, "c", "k1") == {"succeeded": 3}
    assert store3.seen(FLOWS, "c", "k2") == {"succeeded": 2}
    store3.close()


def test_uncommitted_scratch_is_forgotten(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(store, batch(0, 3))
    store.close()
    junk = tmp_path / "scratch" / "abc" / "out.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"half a file")
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    assert not junk.exists()
    assert all_bytes(store) == [0, 1, 2]
    store.close()


def test_cold_partitions_are_merged_into_one_file(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_min_files=16, compact_interval=3600, compact_cold_after=0)
    for i in range(5):  # fewer than a tier's 16: only the cold rule merges them
        ingest(store, batch(i * 10, 10))
    assert store.stats()["files"] == 5
    assert store.compact() == 1
    assert store.stats()["files"] == 1
    assert all_bytes(store) == list(range(50))
    store.close()
    hot = DuckDBBackend(tmp_path / "hot", compact_min_files=16, compact_interval=3600, compact_cold_after=3600)
    for i in range(5):
        ingest(hot, batch(i * 10, 10))
    assert hot.compact() == 0 and hot.stats()["files"] == 5  # written just now: left for the tiers
    hot.close()


def test_merged_files_are_in_seq_order_whether_or_not_ranges_overlap(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    for i in range(4):
        ingest(store, batch(i * 10, 10))
    [key] = store.catalog.parts
    a, b, c, d = store.catalog.parts[key]
    assert store._merge(key, [c, a])  # disjoint ranges, handed out of order: streamed in `_seq` order
    [ac] = [f for f in store.catalog.parts[key] if f.rows == 20]

    def seqs(f: Any) -> list[int]:
        return [r[0] for r in store.con.execute("SELECT _seq FROM read_parquet(?)", [str(f.path)]).fetchall()]

    assert seqs(ac) == sorted(seqs(ac)) and len(seqs(ac)) == 20
    assert store._merge(key, [d, ac, b])  # ac's range holds b's: sorted
    [merged] = store.catalog.parts[key]
    assert seqs(merged) == sorted(seqs(merged)) and len(seqs(merged)) == 40
    assert all_bytes(store) == list(range(40))
    store.close()


def test_engines_have_memory_caps_and_spill_under_the_data_dir(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600, memory_bytes=256 << 20)

    def setting(con: Any, name: str) -> str:
        return str(con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0])

    assert setting(store.con, "memory_limit") == "256.0 MiB"
    assert setting(store.compact_con, "memory_limit") == "128.0 MiB"  # the compactor: half
    for con in (store.con, store.ingest_con, store.compact_con):
        assert Path(setting(con, "temp_directory")).parent == tmp_path / "scratch"
    store.close()
    # At the default 1 GiB the compactor gets less than half: a cold day's merge sorts all its rows and takes
    # whatever its cap allows, which sets the server's peak RSS; under ~384 MiB a 1 M-row merge's sort costs
    # ~5x the CPU (bench/results/before-after/README.md, "The peers scenario at full size").
    default = DuckDBBackend(tmp_path / "default", compact_interval=3600)
    assert setting(default.con, "memory_limit") == "1.0 GiB"
    assert setting(default.compact_con, "memory_limit") == "448.0 MiB"
    default.close()


# -- searches sorted by time try a narrow window first ---------------------------------------------------

DNS = REGISTRY["dns"]


def _walk(store: DuckDBBackend, q: Any) -> list[list[Any]]:
    pages, after = [], None
    for _ in range(200):
        res = store.search(replace(q, after_key=after))
        pages.append([(i["end_time"], i["id"]) for i in res.items] + [res.total])
        after = res.after_key
        if after is None:
            break
    return pages


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(times=list(range(0, 86_400, 300)), skew=1, descending=True, size=5, deny_old=False, dns=False)
@example(times=list(range(0, 86_400, 300)), skew=1, descending=False, size=5, deny_old=False, dns=True)
@example(times=list(range(0, 86_400, 300)), skew=2, descending=True, size=3, deny_old=True, dns=False)
@example(times=list(range(0, 86_400, 300)), skew=1, descending=True, size=40, deny_old=True, dns=True)
@given(times=st.lists(st.integers(0, 86_400), min_size=1, max_size=300), skew=st.integers(1, 4),
       descending=st.booleans(), size=st.integers(1, 40), deny_old=st.booleans(), dns=st.booleans())
def test_narrowed_search_pages_are_the_whole_range_pages(tmp_path: Path, times: list[int], skew: int,
                                                         descending: bool, size: int, deny_old: bool,
                                                         dns: bool) -> None:
    """Whatever the spread of the data, trying a narrow window first gives the same pages, totals and
    order as searching the whole range at once (the only proof that a narrowed page is the answer)."""
    t0 = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    ts = sorted(t0 + t ** skew // 86_400 ** (skew - 1) for t in times)  # skewed towards the start
    store = DuckDBBackend(tmp_path / f"s{uuid.uuid4().hex}", compact_interval=3600)
    try:
        lt = DNS if dns else FLOWS
        base = orjson.loads(SAMPLES[lt.name][0])
        docs = []
        for i, t in enumerate(ts):
            if dns:
                when = datetime.fromtimestamp(t, UTC).isoformat()
                docs.append(dict(base, start_time=when, end_time=when, qname=f"q{i}.example",
                                 rcode="NXDomain" if deny_old and t < t0 + 3_600 else "NoError"))
            else:
                old = t < t0 + 3_600
                docs.append(dict(base, start_time=t - 10, end_time=t, bytes_in=i,
                                 action="deny" if deny_old and old else "allow"))
        for chunk in range(0, len(docs), 97):  # several files, as ingest makes them
            store.ingest(lt, "c", b"\n".join(orjson.dumps(d) for d in docs[chunk:chunk + 97]), key=None, now=NOW,
                         respond=lambda c: {})
        sel = 'rcode = "NXDomain"' if dns else 'action = "deny"'
        q = Query(lt, ["c"], start=datetime.fromtimestamp(t0, UTC), end=datetime.fromtimestamp(t0 + 86_400, UTC),
                  selector=parse_selector(sel) if deny_old else None, selector_text=sel if deny_old else None,
                  sort=[SortKey(lt.time_field, descending)], size=size, now=NOW)
        narrow = store.compiler.windows
        # Narrowed even where the range holds too few rows for it to pay (windows() would skip it then).
        store.compiler.windows = lambda query, rows=None: narrow(query)  # type: ignore[method-assign]
        narrowed = _walk(store, q)
        store.compiler.windows = lambda query, rows=None: [None]  # type: ignore[method-assign]
        store._counts.clear()  # each walk counts afresh
        whole = _walk(store, q)
        assert narrowed == whole
        store._counts.clear()
        inline, duckdb_mod._INLINE_TOTAL_ROWS = duckdb_mod._INLINE_TOTAL_ROWS, 0  # totals by their own statement
        try:
            assert _walk(store, q) == whole
        finally:
            duckdb_mod._INLINE_TOTAL_ROWS = inline
        # Documents rendered in the first statement (a tiny input) or fetched by a second one: the same pages.
        for one_pass in (0, 10_000):
            store._counts.clear()
            kept, duckdb_mod._ONE_PASS_ROWS = duckdb_mod._ONE_PASS_ROWS, one_pass
            try:
                assert _walk(store, q) == whole, f"one pass up to {one_pass} rows"
            finally:
                duckdb_mod._ONE_PASS_ROWS = kept
    finally:
        store.close()


def test_narrow_window_is_tried_only_where_it_can_hold_a_page() -> None:
    q = Query(FLOWS, ["c"], start=datetime(2026, 11, 20, tzinfo=UTC), end=datetime(2026, 11, 21, tzinfo=UTC),
              sort=[SortKey("end_time", True)], size=100)
    compiler = SearchCompiler()
    assert compiler.windows(q, 32 * 101 - 1) == [None]
    narrowed = compiler.windows(q, 32 * 101)
    assert len(narrowed) == 2 and narrowed[0] is not None and narrowed[-1] is None
    assert compiler.windows(q) == narrowed  # rows unknown: tried


def test_search_totals_from_rollups_equal_raw_totals(tmp_path: Path) -> None:
    """A search whose selector names only roll-up dimensions counts its hits over roll-ups: same totals."""
    from datetime import timedelta

    from margay.simulate import Topology, flows, ndjson_batches

    start = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # across midnight: two day partitions
    topo = Topology.build(5, clusters=["c"], namespaces_per_cluster=5, deployments_per_namespace=3)
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    try:
        for body in ndjson_batches(flows(topo, "c", start, start + timedelta(hours=4), level=0, denied_level=0), 4000):
            store.ingest(FLOWS, "c", body, key=None, now=NOW, respond=lambda c: {})
        ns = store.search(Query(FLOWS, ["c"], selector=parse_selector('source_type = "wep"'), size=1)).items[0]
        questions = []
        for sel in (None, 'action = "deny"', f'source_namespace IN {{"{ns["source_namespace"]}", "x"}} AND NOT reporter = "src"'):
            for lo, hi in ((0, 240), (13, 227), (61, 119), (70, 80)):
                questions.append(Query(FLOWS, ["c"], start=start + timedelta(minutes=lo),
                                       end=start + timedelta(minutes=hi), selector=parse_selector(sel) if sel else None,
                                       selector_text=sel, size=3, now=NOW))
        raw = [store.search(q).total for q in questions]
        assert store.build_rollups(0) >= 2
        with store.catalog.snapshot() as view:
            rolled_sql = [store._count_sql(q, view, store.compiler.search(q, "x", []))[0] for q in questions]
        # Over roll-ups: the ranges that hold a whole hour; the others count raw rows.
        assert ['"_count"' in s for s in rolled_sql] == [True, True, False, False] * 3
        assert [store.search(q).total for q in questions] == raw
        assert min(raw[:2] + raw[4:6] + raw[8:10]) > 0
    finally:
        store.close()


def test_files_of_an_older_schema_are_read_by_column_name(tmp_path: Path) -> None:
    """A partition holding a file written before a registry change (fewer columns) still reads whole:
    the relation matches columns by name when, and only when, the files' schemas differ."""
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    try:
        for i in range(2):
            doc = dict(orjson.loads(SAMPLES["flows"][0]), bytes_in=i)
            store.ingest(FLOWS, "c", orjson.dumps(doc), key=None, now=NOW, respond=lambda c: {})
        with store.catalog.snapshot() as view:
            files = [f for fs in view.values() for f in fs]
        assert len(files) == 2 and store._relation(files) == "read_parquet(?)"
        old = files[0].path  # rewrite one file as an older margay would have: without `bytes_out`
        pq.write_table(pq.read_table(old).drop_columns(["bytes_out"]), old)
        store._schemas.clear()
        assert store._relation(files) == "read_parquet(?, union_by_name = true)"
        res = store.search(Query(FLOWS, ["c"], size=10, sort=[SortKey("bytes_in", False)]))
        assert [(d["bytes_in"], d["bytes_out"] is None) for d in res.items] == [(0, True), (1, False)]
        assert res.total == 2
    finally:
        store.close()


def test_a_journal_trimmed_while_merged_files_wait_for_a_read_still_deletes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal is rewritten to its keys once large; files a merge retired while a read held them are
    deleted later, so their delete must survive the rewrite, or a crash brings them back beside their merge."""
    store = DuckDBBackend(tmp_path, compact_min_files=4, compact_interval=3600)
    for i in range(4):
        ingest(store, batch(i * 10, 10), key=f"k{i}")
    reading = store.catalog.snapshot()
    reading.__enter__()  # a read that outlives the merge (and the process)
    assert store.compact() == 1 and store.catalog.pending() == 4
    monkeypatch.setattr(store.journal, "size", lambda: 1 << 30)  # past the size that rewrites it
    store._trim_keys()
    store._stop.set()  # kill -9: nothing pending is applied
    store.journal.close()
    for con in (store.con, store.ingest_con, store.compact_con):
        con.close()
    again = DuckDBBackend(tmp_path, compact_interval=3600)
    assert all_bytes(again) == list(range(40))
    assert again.ingest(FLOWS, "c", batch(0, 10), key="k0", now=NOW, respond=lambda c: {})[1] is True
    again.close()


def test_the_sequence_never_goes_back_when_the_newest_records_are_dropped(tmp_path: Path) -> None:
    """Late data of an old day hold the newest `_seq`s; once retention drops that day, a restart took the highest
    `_seq` left on disk: forwarders' cursors then skipped the next records, and `_seq` ids were reused."""
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    day2 = dict(orjson.loads(SAMPLES["flows"][0]))["end_time"] + 86_400
    ingest(store, b"\n".join(orjson.dumps(dict(orjson.loads(SAMPLES["flows"][0]), start_time=day2 - 5,
                                               end_time=day2, bytes_in=j)) for j in range(5)), cluster="a")
    ingest(store, batch(100, 5), cluster="a")  # late: the older day
    head = store.head_seq()
    assert store.drop(Partition("flows", "a", min(p.day for p in store.partitions()))) == 5
    store.close()
    for _ in range(2):  # and again after the journal was rewritten at start-up
        again = DuckDBBackend(tmp_path, compact_interval=3600)
        assert again.head_seq() >= head
        again.close()
    again = DuckDBBackend(tmp_path, compact_interval=3600)
    ingest(again, batch(200, 1), cluster="a")
    seqs = again.records_after(FLOWS, head, 10)
    assert [r["bytes_in"] for r in seqs] == [200]
    again.close()
