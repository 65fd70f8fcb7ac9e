"""The CLI as users run it: ingest native files, query them, simulate, and the demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from margay.logtypes import SAMPLES

MARGAY = [sys.executable, "-m", "margay"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*MARGAY, *args], capture_output=True, text=True, timeout=300, check=check, env=env)


def test_ingest_native_files_then_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    flows = tmp_path / "flows.log"
    flows.write_text("\n".join(SAMPLES["flows"]) + "\n")
    bird = tmp_path / "node-1" / "bird" / "current"
    bird.parent.mkdir(parents=True)
    bird.write_text("\n".join(SAMPLES["bgp"]) + "\n")
    out = run("ingest", "--type", "flows", "--cluster", "prod", "--data-dir", str(data), str(flows))
    assert "4 records stored, 0 refused" in out.stdout
    out = run("ingest", "--type", "bgp", "--cluster", "prod", "--data-dir", str(data), str(bird))
    assert "3 records stored" in out.stdout
    out = run("query", "flows", 'action = "deny"', "--since", "2023-11-01T00:00:00Z", "--cluster", "prod",
              "--data-dir", str(data), "--json")
    records = [orjson.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(records) == 2 and {r["action"] for r in records} == {"deny"}
    bgp = run("query", "bgp", "", "--since", "2023-11-14T00:00:00Z", "--until", "2023-11-15T00:00:00Z",
              "--cluster", "prod", "--data-dir", str(data), "--json")
    hosts = {orjson.loads(line)["host"] for line in bgp.stdout.splitlines() if line.strip()}
    assert hosts == {"node-1"}  # taken from the BIRD log's path


def test_ingest_reports_bad_lines_and_fails(tmp_path: Path) -> None:
    f = tmp_path / "dns.log"
    f.write_text(SAMPLES["dns"][0] + '\n{"start_time": "never", "end_time": "x"}\n')
    out = run("ingest", "--type", "dns", "--data-dir", str(tmp_path / "d"), str(f), check=False)
    assert out.returncode == 1
    assert "1 records stored, 1 refused" in out.stdout
    assert re.search(r"dns\.log:2: \S*time", out.stdout)


def test_query_syntax_error_is_explained(tmp_path: Path) -> None:
    out = run("query", "flows", "action = ", "--data-dir", str(tmp_path / "d"), check=False)
    assert out.returncode == 2
    assert "expected a value after '=' at position 9" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("query", "flows", "action = deny", "--server", "http://127.0.0.1:9", check=False)
    assert out.returncode == 2 and "is `margay serve` running" in out.stderr


def test_simulate_writes_native_layout(tmp_path: Path) -> None:
    out_dir = tmp_path / "logs"
    run("simulate", "--out", str(out_dir), "--days", "0.02", "--cluster", "c1")
    assert (out_dir / "c1" / "worker-1" / "flowlogs" / "flows.log").stat().st_size > 0
    assert (out_dir / "c1" / "worker-1" / "bird" / "current").exists()


def test_demo_serves_simulated_data(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([*MARGAY, "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0",
                                 "--days", "0.02"], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline and url is None:
            m = re.search(r"margay is running at (http://\S+)", log.read_text())
            url = m.group(1) if m else None
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        assert url, log.read_text()
        r = httpx.post(url + "/api/v1/flows/logs", json={"max_page_size": 1, "clusters": ["cluster", "app-cluster-1"]},
                       headers={"x-cluster-id": "_MULTI_"}, timeout=30)
        assert r.status_code == 200 and r.json()["total_hits"] > 0
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
