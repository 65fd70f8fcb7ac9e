"""Files whose time span (Parquet statistics) misses a query's range are not read: same answers, fewer files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query, SortKey
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb.files import _time_span

NOW = datetime(2026, 11, 27, tzinfo=UTC)
T0 = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(offsets=list(range(0, 80_000, 1000)), chunk=10, lo=20_000, hi=20_000, dns=False, desc=True)
@example(offsets=list(range(0, 80_000, 1000)), chunk=10, lo=9_999, hi=30_001, dns=True, desc=False)
@given(offsets=st.lists(st.integers(0, 86_399), min_size=1, max_size=120), chunk=st.integers(1, 40),
       lo=st.integers(0, 86_399), hi=st.integers(0, 86_399), dns=st.booleans(), desc=st.booleans())
def test_pruned_files_change_no_answer(tmp_path: Path, offsets: list[int], chunk: int, lo: int, hi: int,
                                       dns: bool, desc: bool) -> None:
    lt = REGISTRY["dns" if dns else "flows"]
    lo, hi = min(lo, hi), max(lo, hi)
    store = DuckDBBackend(tmp_path / uuid.uuid4().hex, compact_interval=3600)
    try:
        base = orjson.loads(SAMPLES[lt.name][0])
        docs = []
        for i, off in enumerate(offsets):  # in arrival order (not sorted): files overlap in time
            t = T0 + off
            when = datetime.fromtimestamp(t, UTC).isoformat()
            docs.append(dict(base, start_time=when, end_time=when, qname=f"q{i}.example") if dns
                        else dict(base, start_time=t - 10, end_time=t, bytes_in=i))
        for c in range(0, len(docs), chunk):
            store.ingest(lt, "c", b"\n".join(orjson.dumps(d) for d in docs[c:c + chunk]), key=None, now=NOW,
                         respond=lambda _: {})
        q = Query(lt, ["c"], start=datetime.fromtimestamp(T0 + lo, UTC), end=datetime.fromtimestamp(T0 + hi, UTC),
                  sort=[SortKey(lt.time_field, desc)], size=7, now=NOW)
        expected = sorted(((T0 + off, i) for i, off in enumerate(offsets) if lo <= off <= hi), reverse=desc)
        got, after = [], None
        for _ in range(100):
            page = store.search(Query(**{**q.__dict__, "after_key": after}))
            assert page.total == len(expected)
            got += [i["end_time"] for i in page.items]
            after = page.after_key
            if after is None:
                break
        want = [datetime.fromtimestamp(t, UTC).isoformat() if dns else t for t, _ in expected]  # as sent
        assert got == want
        with store.catalog.snapshot() as view:
            kept = store._data_files(q, view)
            every = [f for fs in view.values() for f in fs]
        spans = [_time_span(f.path, lt.time_field) for f in every]
        # Exactly the files whose span meets the range are read.
        assert sorted(f.path for f in kept) == sorted(
            f.path for f, (a, b) in zip(every, spans, strict=True) if b >= T0 + lo and a <= T0 + hi)
    finally:
        store.close()


def test_a_file_without_the_time_column_is_never_pruned(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"other": [1, 2]}), path)
    assert _time_span(path, "end_time") == (float("-inf"), float("inf"))
    pq.write_table(pa.table({"end_time": ["a", "b"]}), path)  # not a time: statistics cannot bound it
    assert _time_span(path, "end_time") == (float("-inf"), float("inf"))
    pq.write_table(pa.table({"end_time": [5, 3]}), path)
    assert _time_span(path, "end_time") == (3.0, 5.0)
