"""margay.agent.bench measures a real agent process; a small run keeps the test short."""

from __future__ import annotations

from pathlib import Path

from margay.agent import bench


def test_bench_measures_throughput_and_cpu(tmp_path: Path) -> None:
    result = bench(lines=3000, work_dir=tmp_path)
    assert result["agent_records_shipped"] == 3000
    assert result["agent_lines_per_s"] > 0 and result["agent_cpu_s"] > 0
    assert abs(result["agent_cpu_s_per_10k_flows"] - result["agent_cpu_s"] / 3000 * 10_000) < 0.01
