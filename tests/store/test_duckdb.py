"""The embedded store: compaction, dropping frees disk, and journal recovery."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from margay.logtypes import REGISTRY, SAMPLES
from margay.query.model import Query
from margay.store.backend import Partition
from margay.store.duckdb import DuckDBBackend

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
