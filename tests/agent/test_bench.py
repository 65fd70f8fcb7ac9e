"""margay.agent.bench measures a real agent process; a small run keeps the test short."""

from __future__ import annotations

from pathlib import Path

from margay.agent import bench


def test_bench_measures_throughput_cpu_rss_and_the_drain_after_an_outage(tmp_path: Path) -> None:
    result = bench(lines=3000, work_dir=tmp_path, outage=2.0, rate=500.0)
    assert result["agent_records_shipped"] == 3000
    assert result["agent_lines_per_s"] > 0 and result["agent_cpu_s"] > 0
    assert abs(result["agent_cpu_s_per_10k_flows"] - result["agent_cpu_s"] / 3000 * 10_000) < 0.01
    assert abs(result["agent_lines_per_cpu_s"] - 3000 / result["agent_cpu_s"]) < 0.01 * result["agent_lines_per_cpu_s"]
    assert 10 < result["agent_rss_peak_mib"] < 4096
    assert result["agent_server_cpu_s"] > 0  # the server converted and stored 3,000 records meanwhile
    lines = result["agent_outage_lines"]
    assert 900 <= lines <= 1000 and result["agent_drain_records_shipped"] == lines
    # the backlog of ~10 small spooled batches is sent coalesced, in fewer requests
    assert result["agent_outage_spooled_batches"] >= 5
    assert result["agent_drain_requests"] < result["agent_outage_spooled_batches"]
    assert result["agent_drain_lines_per_s"] > 0
