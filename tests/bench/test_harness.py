"""The benchmark harness's bookkeeping: sizes, and each mode's results (quick, full, large) beside the others'."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from margay.bench.harness import parse_sizes, run


def test_sizes_read_like_people_write_them() -> None:
    assert parse_sizes("10m, 2m") == [2_000_000, 10_000_000]
    assert parse_sizes("500k,1200") == [1_200, 500_000]
    for bad in ("", "ten", "5g", "0m", "m"):
        with pytest.raises(ValueError, match="record count"):
            parse_sizes(bad)


def test_each_mode_lands_beside_the_others_and_the_largest_sizes_win(tmp_path: Path) -> None:
    def query(bench: Any) -> dict[str, Any]:
        size = (bench.sizes or [{"quick": 120_000, "full": 2_000_000}[bench.mode]])[-1]
        return {"records": size, "query_p95_ms_search_margay": size / 1e5,
                f"query_p95_ms_search_{size // 1_000_000}m_margay": size / 1e5, "notes": f"at {size:,}"}

    out, work = tmp_path / "results", tmp_path / "work"
    run({"query": query}, ["query"], mode="full", work_dir=work, out_dir=out, log=lambda _: None)
    latest = run({"query": query}, ["query"], mode="large", work_dir=work, out_dir=out, log=lambda _: None,
                 sizes=[10_000_000])
    assert len(list(out.glob("*-query-full.json"))) == 1 and len(list(out.glob("*-query-large.json"))) == 1
    # Both sizes stay; the unsuffixed names take the largest data measured.
    assert latest["query_p95_ms_search_2m_margay"] == 20 and latest["query_p95_ms_search_10m_margay"] == 100
    assert latest["records"] == 10_000_000 and latest["query_p95_ms_search_margay"] == 100
    assert orjson.loads((out / "latest.json").read_bytes()) == latest
    summary = (out / "SUMMARY.md").read_text()
    assert "## query (large)" in summary and "at 10,000,000" in summary and "at 2,000,000" in summary
    # A later full run does not take the unsuffixed names back from the large one.
    latest = run({"query": query}, ["query"], mode="full", work_dir=work, out_dir=out, log=lambda _: None)
    assert latest["records"] == 10_000_000
    # A quick run (`make bench`) the same day keeps its own file: the full run's stays, and its figures win.
    latest = run({"query": query}, ["query"], mode="quick", work_dir=work, out_dir=out, log=lambda _: None)
    assert len(list(out.glob("*-query.json"))) == 1 and len(list(out.glob("*-query-full.json"))) == 1
    assert orjson.loads(next(out.glob("*-query.json")).read_bytes())["metrics"]["records"] == 120_000
    assert latest["records"] == 10_000_000 and latest["query_p95_ms_search_2m_margay"] == 20
    assert latest["query_p95_ms_search_0m_margay"] == 1.2  # the quick run's own size is still listed
    assert "## query (full)" in (out / "SUMMARY.md").read_text()


def test_settle_waits_for_the_compactor_to_finish(tmp_path: Path) -> None:
    """The query timings must not share the cores with a merge: settle() returns only once the server's
    compactor has merged what it will merge and then stayed idle."""
    from margay.bench.data import flow_batches, topology
    from margay.bench.targets import MargayTarget

    target = MargayTarget(tmp_path / "m").start()
    try:
        batches = list(flow_batches(topology(2), 40_000, batch=1_000))  # 40 small files in one partition
        stored, _ = target.ingest(batches, 2)
        target.settle(timeout=120, quiet=3)
        merges, rollups, active, retired = target.compaction()
        assert merges >= 2 and active == 0  # 16 like-sized files make a merge: at least two were done
        assert retired == 0  # and the files they replaced are gone: the size on disk is the settled store's
        assert target.count("flows") == stored
        listed = sum(i["bytes"] for i in target.indices("flows"))
        assert abs(target.disk_bytes("flows") - listed) <= 0.01 * listed  # du agrees with the catalog
        time.sleep(3)
        assert target.compaction()[:2] == (merges, rollups)  # and it stayed idle
    finally:
        target.stop()


def test_tree_bytes_counts_files_and_skips_one_a_merge_removes_mid_walk(tmp_path: Path, monkeypatch: Any) -> None:
    from margay.bench import data

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one").write_bytes(b"x" * 10)
    (tmp_path / "a" / "b" / "two").write_bytes(b"y" * 32)
    (tmp_path / "a" / "b" / "gone").write_bytes(b"z" * 1000)
    assert data.tree_bytes(tmp_path) == 1042
    real = os.stat

    def stat(path: Any, **kw: Any) -> os.stat_result:
        if str(path).endswith("gone"):  # removed by the store between the folder's listing and its stat
            raise FileNotFoundError(path)
        return real(path, **kw)

    monkeypatch.setattr(data.os, "stat", stat)
    assert data.tree_bytes(tmp_path) == 42
    assert data.tree_bytes(tmp_path / "missing") == 0


def test_wait_idle_waits_out_a_busy_compactor_and_gives_up_at_its_timeout() -> None:
    from margay.bench.settle import wait_idle

    states = iter([(0, 0, 1), (1, 0, 1), (1, 1, 0)])  # merging, merging, then idle for good
    seen: list[tuple[int, int, int]] = []

    def state() -> tuple[int, int, int]:
        seen.append(next(states, (1, 1, 0)))
        return seen[-1]

    assert wait_idle(state, cold_at=0, quiet=0.5, timeout=30)
    assert seen[:3] == [(0, 0, 1), (1, 0, 1), (1, 1, 0)] and len(seen) >= 4  # idle only after an unchanged poll
    assert not wait_idle(lambda: (0, 0, 1), cold_at=0, quiet=0.5, timeout=3)  # always busy
    assert not wait_idle(lambda: (1, 1, 0, 5), cold_at=0, quiet=0.5, timeout=3, settled=lambda s: not s[3])
