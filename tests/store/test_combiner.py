"""Group commit on the embedded store: small batches that arrive together share one conversion and one commit,
and each is answered exactly as if it had come alone (counts, per-line errors, keys, durability)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.ingest.parse import Converted
from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query
from margay.store.duckdb import DuckDBBackend
from margay.store.duckdb import engine as engine_mod
from margay.store.duckdb.combiner import Pending

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FLOWS = REGISTRY["flows"]
DAY2 = 1700000000 + 86_400


def respond(conv: Converted) -> dict[str, Any]:
    """What the bulk API answers (api/ingest.py), built from the conversion."""
    return {"total": conv.total, "succeeded": conv.succeeded, "failed": conv.failed_lines,
            "errors": [e.as_dict() for e in conv.errors]}


def line(marker: int, **changes: Any) -> bytes:
    return orjson.dumps(dict(orjson.loads(SAMPLES["flows"][0]), bytes_in=marker, **changes))


def batches() -> list[tuple[str, bytes]]:
    """Small batches of three clusters: clean ones, one spanning two days, one with a rejected line and a blank
    line, one with an oversized line (refused before the reader), one of only a rejected line."""
    out = [(f"c{i % 3}", b"\n".join(line(i * 100 + j) for j in range(5))) for i in range(6)]
    out.append(("c0", b"\n".join([line(700), line(701, start_time=DAY2, end_time=DAY2 + 300), line(702)])))
    out.append(("c1", b"\n".join([line(800), line(801, reporter="nope"), b"", line(802, action="maybe")])))
    out.append(("c2", b"\n".join([line(900), b'{"pad": "' + b"x" * (4 * 1024 * 1024 + 10) + b'"}', line(901)])))
    out.append(("c2", line(1000, reporter="nope")))
    return out


def stored(store: DuckDBBackend, cluster: str) -> list[int]:
    res = store.search(Query(FLOWS, [cluster], size=10_000, sort=[]))
    return sorted(i["bytes_in"] for i in res.items)


def pending(cluster: str, body: bytes, key: str | None) -> Pending:
    return Pending(FLOWS, cluster, body, body.count(b"\n") + 1, f"{cluster}/flows/{key}" if key else None, NOW,
                   respond)


def test_a_group_answers_each_batch_as_if_it_came_alone(tmp_path: Path) -> None:
    alone = DuckDBBackend(tmp_path / "alone", compact_interval=3600)
    expected = [alone.ingest_one(FLOWS, c, b, b.count(b"\n") + 1, bkey=None, now=NOW, respond=respond)
                for c, b in batches()]
    grouped = DuckDBBackend(tmp_path / "grouped", compact_interval=3600)
    group = [pending(c, b, f"k{i}") for i, (c, b) in enumerate(batches())]
    grouped.combiner._run(group)
    assert grouped.combiner.groups == 1 and grouped.combiner.grouped == len(group)
    assert [g.outcome for g in group] == expected
    # The rejected lines are named by each batch's own line numbers.
    assert expected[7][0]["errors"] == [{"line": 2, "field": "reporter", "msg": "must be one of: src, dst, fwd, "
                                         "src,fwd, dst,fwd"},
                                        {"line": 4, "field": "action", "msg": "must be one of: allow, deny"}]
    assert expected[8][0]["failed"] == 1 and expected[8][0]["succeeded"] == 2
    for cluster in ("c0", "c1", "c2"):
        assert stored(grouped, cluster) == stored(alone, cluster)
    assert stored(grouped, "c0") == [0, 1, 2, 3, 4, 300, 301, 302, 303, 304, 700, 701, 702]
    # The same indices (one file per day holds every cluster of the group), and every record has its own `_seq`.
    parts = {(p.cluster, p.day) for p in grouped.partitions()}
    assert parts == {(p.cluster, p.day) for p in alone.partitions()}
    seqs = grouped.con.execute("SELECT count(*), count(DISTINCT _seq) FROM read_parquet(?, union_by_name=true)",
                               [[str(f.path) for fs in grouped.catalog.parts.values() for f in fs]]).fetchall()
    assert seqs[0][0] == seqs[0][1] == sum(r["succeeded"] for r, _ in expected)
    alone.close()
    grouped.close()


def test_a_group_of_one_cluster_splits_by_day_and_names_rejected_lines(tmp_path: Path) -> None:
    one = [("c0", b) for _, b in batches()]
    alone = DuckDBBackend(tmp_path / "alone", compact_interval=3600)
    expected = [alone.ingest_one(FLOWS, c, b, b.count(b"\n") + 1, bkey=None, now=NOW, respond=respond) for c, b in one]
    grouped = DuckDBBackend(tmp_path / "grouped", compact_interval=3600)
    group = [pending(c, b, None) for c, b in one]
    grouped.combiner._run(group)
    assert grouped.combiner.groups == 1
    assert [g.outcome for g in group] == expected
    assert stored(grouped, "c0") == stored(alone, "c0")
    assert len(grouped.partitions()) == 2  # two days of one cluster
    alone.close()
    grouped.close()


def test_group_keys_survive_a_restart_and_retries_store_nothing(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    group = [pending(c, b, f"k{i}") for i, (c, b) in enumerate(batches())]
    store.combiner._run(group)
    before = {c: stored(store, c) for c in ("c0", "c1", "c2")}
    store.close()
    reopened = DuckDBBackend(tmp_path, compact_interval=3600)
    for i, (item, (cluster, body)) in enumerate(zip(group, batches(), strict=True)):
        assert item.outcome is not None
        assert reopened.seen(FLOWS, cluster, f"k{i}") == item.outcome[0]
        response, replayed = reopened.ingest(FLOWS, cluster, body, key=f"k{i}", now=NOW, respond=respond)
        assert replayed and response == item.outcome[0]
    assert {c: stored(reopened, c) for c in ("c0", "c1", "c2")} == before
    reopened.close()


def test_a_group_the_reader_refuses_commits_nothing_and_each_batch_goes_alone(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    bodies = [("c0", line(1)), ("c1", b"\n".join([line(2), b'{"action": "allow", oops'])), ("c0", line(3))]
    group = [pending(c, b, None) for c, b in bodies]
    store.combiner._run(group)
    assert [g.outcome for g in group] == [None, None, None] and store.stats()["records"] == 0
    answers = [store.ingest(FLOWS, c, b, key=None, now=NOW, respond=respond)[0] for c, b in bodies]
    assert [a["succeeded"] for a in answers] == [1, 1, 1]
    assert [e["line"] for e in answers[1]["errors"]] == [2] and "JSON" in answers[1]["errors"][0]["msg"]
    assert stored(store, "c0") == [1, 3] and stored(store, "c1") == [2]
    store.close()


def test_concurrent_small_batches_are_grouped_and_each_stored_once(tmp_path: Path) -> None:
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    work = [(f"c{i % 4}", f"k{i}", b"\n".join(line(i * 10 + j) for j in range(10))) for i in range(120)]
    work += work[::3]  # retries of a third of the batches, some while the first copy is still queued
    answers: list[tuple[dict[str, Any], bool]] = []
    lock = threading.Lock()

    def client(part: list[tuple[str, str, bytes]]) -> None:
        for cluster, key, body in part:
            answer = store.ingest(FLOWS, cluster, body, key=key, now=NOW, respond=respond)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=(work[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(work) and all(a["succeeded"] == 10 for a, _ in answers)
    assert sum(1 for _, replayed in answers if replayed) == 40
    assert sorted(v for c in ("c0", "c1", "c2", "c3") for v in stored(store, c)) == list(range(1200))
    assert store.combiner.groups > 0  # eight clients, each batch a conversion long: batches met in the queue
    store.close()


@pytest.mark.parametrize("grouped", [True, False])
def test_a_batch_whose_renames_fail_after_its_journal_line_is_kept_once_and_its_retry_answered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool) -> None:
    """The journal line is the commit point: should the renames then fail (a full disk making a folder), the
    files must stay in scratch for the next start to roll forward, and a retry must be answered from the key.
    The group discarded its scratch (a retry answered 'stored' for records gone), the lone batch registered its
    key only after the renames (a retry stored again: the file renamed before the failure came back as a
    duplicate on start-up)."""
    store = DuckDBBackend(tmp_path, compact_interval=3600)
    real = engine_mod.apply_moves  # a group's files are placed by the engine too (engine._place)

    def full_disk(moves: list[list[str]]) -> None:
        real(moves[:1])
        raise OSError(28, "No space left on device")

    two_days = b"\n".join([line(0), line(1, start_time=DAY2, end_time=DAY2 + 300)])
    work = [("c0", two_days, "k0"), ("c1", b"\n".join([line(100), line(101)]), "k1")]
    monkeypatch.setattr(engine_mod, "apply_moves", full_disk)
    if grouped:
        group = [pending(c, b, k) for c, b, k in work]
        store.combiner._run(group)
        assert all(isinstance(g.error, OSError) and g.outcome is None for g in group)
    else:
        for c, b, k in work[:1]:
            with pytest.raises(OSError):
                store.ingest(FLOWS, c, b, key=k, now=NOW, respond=respond)
    monkeypatch.undo()
    for c, b, k in work if grouped else work[:1]:
        response, replayed = store.ingest(FLOWS, c, b, key=k, now=NOW, respond=respond)
        assert replayed and response["succeeded"] == 2
    store.close()
    again = DuckDBBackend(tmp_path, compact_interval=3600)
    assert stored(again, "c0") == [0, 1]
    assert stored(again, "c1") == ([100, 101] if grouped else [])
    again.close()


def test_batches_converted_on_their_own_at_once_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API calls ingest from many threads (so small batches can wait for a group commit); large batches,
    each converted on its own with its reader's buffers, are still converted at most CONVERSIONS at a time."""
    import time

    store = DuckDBBackend(tmp_path, compact_interval=3600)
    lock = threading.Lock()
    active, peak = [0], [0]
    real = store.ingest_one

    def counted(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.02)  # long enough for every thread to be waiting at the bound
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(store, "ingest_one", counted)
    body = b"\n".join(line(i) for i in range(engine_mod.GROUP_BELOW))
    threads = [threading.Thread(target=store.ingest, args=(FLOWS, f"c{i}", body),
                                kwargs={"key": None, "now": NOW, "respond": respond})
               for i in range(engine_mod.CONVERSIONS * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == engine_mod.CONVERSIONS
    assert all(len(stored(store, f"c{i}")) == engine_mod.GROUP_BELOW for i in range(engine_mod.CONVERSIONS * 2))
    store.close()
