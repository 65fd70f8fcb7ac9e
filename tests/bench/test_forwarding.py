"""The forwarding benchmark measures delivery throughput per store against the real peers."""

from __future__ import annotations

import os

import pytest

from margay.bench.forwarding import bench

pytestmark = pytest.mark.rig


def test_bench_measures_each_store(tmp_path):
    result = bench(records=4000, work_dir=tmp_path, batch_size=1000)
    assert result["stored"] == 4000
    for kind in ("s3", "syslog", "splunk"):
        r = result[kind]
        assert r["records"] == 4000 and r["seconds"] > 0 and abs(r["records_per_s"] - 4000 / r["seconds"]) < 0.01 * r["records_per_s"]
        # the bench process read, rendered and sent 4,000 records: CPU it spent, at most wall x cores
        assert 0 < r["cpu_s"] <= r["seconds"] * (os.cpu_count() or 1) + 0.05
