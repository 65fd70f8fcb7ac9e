"""The CLI as users run it: ingest native files, query them, simulate, and the demo."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.client import Client
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

MARGAY = [sys.executable, "-m", "margay"]


def run(*args: str, check: bool = True, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARGAY_") or k == "MARGAY_RIG_DIR"},
           "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*MARGAY, *args], capture_output=True, text=True, timeout=300, check=check, env=env,
                          cwd=cwd)


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server with an admin token holding sample flows of two clusters: prod (older) and dev (newer)."""
    data = tmp_path_factory.mktemp("authed") / "data"
    with ServerThread(create_app(Settings(data_dir=data, auth="tokens", admin_token=True))) as server:
        token = (data / "admin-token").read_text().strip()
        lines = [orjson.loads(x) for x in SAMPLES["flows"]]
        with Client(server.url, token) as c:
            for cluster, shift in (("prod", 0), ("dev", 3600)):
                body = b"".join(orjson.dumps({**r, "start_time": r["start_time"] + shift,
                                              "end_time": r["end_time"] + shift}) + b"\n" for r in lines)
                assert c.bulk("flows", body, cluster=cluster)["failed"] == 0
        yield server.url, token


# Each misuse: the arguments (with {url}, {token}, {closed} filled in), and what the one-line error says.
MISUSE = [
    ("unknown type", ["query", "flow", "--server", "{url}", "--token", "{token}"],
     "unknown log type 'flow': did you mean 'flows'?"),
    ("missing scheme", ["query", "flows", "--server", "127.0.0.1:8080"],
     "has no scheme: use --server http://127.0.0.1:8080"),
    ("bad URL", ["query", "flows", "--server", "http://127.0.0.1:port"], "is not a valid URL"),
    ("bad scheme", ["query", "flows", "--server", "ftp://127.0.0.1"], "the scheme must be http or https"),
    ("bad token", ["query", "flows", "--server", "{url}", "--token", "not-a-token"],
     "pass --token TOKEN or set MARGAY_TOKEN"),
    ("no token", ["query", "flows", "--server", "{url}"], "pass --token TOKEN or set MARGAY_TOKEN"),
    ("unknown cluster", ["query", "flows", "--server", "{url}", "--token", "{token}", "--cluster", "nope"],
     "no flows logs of cluster nope on this server (or none you may read); clusters with flows logs you may "
     "read: dev, prod"),
    ("no server", ["query", "flows"], "no --server given and ./data holds no margay store: pass --server"),
    ("server not running", ["query", "flows", "--server", "{closed}"], "is `margay serve` running there?"),
    ("missing argument", ["query"], "Missing argument 'type'. (see `"),
    ("unknown option", ["query", "flows", "--frob"], "No such option: --frob (see `"),
    ("bad option value", ["query", "flows", "--limit", "many"], "Invalid value for '--limit'"),
    ("ingest without scheme", ["ingest", "--type", "flows", "--server", "localhost:8080", "{file}"],
     "has no scheme: use --server http://localhost:8080"),
    ("agent without scheme", ["agent", "--server", "10.0.0.1:8080", "--cluster", "c", "--state-dir", "st"],
     "has no scheme: use --server http://10.0.0.1:8080"),
    ("simulate without scheme", ["simulate", "--server", "localhost:8080", "--days", "0.01"],
     "has no scheme: use --server http://localhost:8080"),
]


@pytest.mark.parametrize(("case", "args", "says"), MISUSE, ids=[m[0] for m in MISUSE])
def test_misuse_is_one_line_that_says_what_to_do(case: str, args: list[str], says: str, authed: tuple[str, str],
                                                 tmp_path: Path) -> None:
    url, token = authed
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    sample = tmp_path / "flows.log"
    sample.write_text(SAMPLES["flows"][0] + "\n")
    filled = [a.format(url=url, token=token, closed=closed, file=sample) for a in args]
    out = run(*filled, check=False, cwd=tmp_path)
    assert out.returncode != 0, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert says in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "data").exists(), "a failed query must not create ./data"


def test_query_reads_every_readable_cluster_newest_first(authed: tuple[str, str]) -> None:
    url, token = authed
    out = run("query", "flows", "--since", "2023-11-01T00:00:00Z", "--server", url, "--token", token)
    assert "flows: 8 of 8 records in 2 clusters (dev, prod), newest first" in out.stdout
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("│") and "20" in ln]
    times = [ln.split("│")[1].strip() for ln in lines if re.match(r"\s*\d{4}-\d\d-\d\d", ln.split("│")[1])]
    assert times and times == sorted(times, reverse=True), out.stdout
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times)  # UTC, not epochs
    assert "end_time (UTC)" in out.stdout and "verdict" in out.stdout
    dev_rows = [ln for ln in lines if "│ dev " in ln]
    prod_rows = [ln for ln in lines if "│ prod " in ln]
    assert lines.index(dev_rows[-1]) < lines.index(prod_rows[0])  # dev's flows are an hour newer
    records = [orjson.loads(x) for x in SAMPLES["flows"]]
    deny = next(r for r in records if r["action"] == "deny")
    from margay.logtypes.policy import verdict

    assert verdict(deny["policies"]["enforced_policies"]) == "deny security.block-egress rule 2"
    assert "deny security.block-egress rule 2" in out.stdout
    one = run("query", "flows", "--since", "2023-11-01T00:00:00Z", "--server", url, "--token", token,
              "--cluster", "prod", "--json")
    assert {orjson.loads(x)["cluster"] for x in one.stdout.splitlines()} == {"prod"}
    env = run("query", "flows", "--since", "2023-11-01T00:00:00Z", "--json",
              env={"MARGAY_SERVER": url, "MARGAY_TOKEN": token})
    assert len(env.stdout.splitlines()) == 8


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


def test_query_syntax_error_is_explained(authed: tuple[str, str]) -> None:
    out = run("query", "flows", "action = ", "--server", authed[0], "--token", authed[1], check=False)
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


class Demo:
    """`margay demo` as a user runs it, in its own process group; stop() is Ctrl-C."""

    def __init__(self, data: Path, log: Path, cwd: Path) -> None:
        self.log = log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen([*MARGAY, "demo", "--data-dir", str(data), "--port", "0", "--days", "0.05"],
                                         stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
                                         env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
        deadline = time.monotonic() + 120
        self.url = ""
        while time.monotonic() < deadline and not self.url:
            m = re.search(r"margay is running at (http://\S+)", log.read_text())
            self.url = m.group(1) if m else ""
            assert self.proc.poll() is None, log.read_text()
            time.sleep(0.2)
        assert self.url, log.read_text()
        time.sleep(0.5)  # the commands are printed right after the URL
        text = log.read_text()
        self.commands = [ln[2:] for ln in text.split("try:\n", 1)[1].splitlines() if ln.startswith("  ")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _count(url: str, kind: str, start: int, end: int) -> int:
    body = {"all_clusters": True, "max_page_size": 1, "time_range": {"from": start, "to": end}}
    r = httpx.post(url + f"/api/v1/{kind}", json=body, headers={"x-cluster-id": "_MULTI_"}, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["total_hits"])


def test_demo_prints_commands_that_work_and_a_rerun_continues_the_data(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = Demo(data, tmp_path / "demo1.log", tmp_path)
    try:
        assert len(demo.commands) == 3, demo.log.read_text()
        for command in demo.commands:  # pasted into a shell, as printed
            out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                 env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
            assert out.returncode == 0 and "Traceback" not in out.stderr, (command, out.stdout, out.stderr)
            if command.startswith("curl"):
                answer = orjson.loads(out.stdout)
                assert answer["total_hits"] > 0 and {i["action"] for i in answer["items"]} == {"deny"}
            else:
                assert "records in 2 clusters (app-cluster-1, cluster), newest first" in out.stdout, out.stdout
                assert re.search(r"│ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out.stdout), out.stdout
        newest = httpx.post(demo.url + "/api/v1/flows/logs", json={"all_clusters": True, "max_page_size": 1, "sort": [
            {"field": "end_time", "descending": True}]}, headers={"x-cluster-id": "_MULTI_"}, timeout=30).json()
        until = newest["items"][0]["end_time"]
        since = until - 3600
        before = {k: _count(demo.url, k, since, until + 1) for k in ("flows/logs", "dns/logs", "l7/logs")}
        assert all(before.values()), before  # the demo has flows, DNS and L7 logs
        busy = run("demo", "--data-dir", str(data), "--port", "0", check=False, cwd=tmp_path)
        lines = busy.stderr.strip().splitlines()
        assert busy.returncode != 0 and len(lines) == 1, busy
        assert "in use by another margay demo: stop it" in lines[0]
    finally:
        demo.stop()

    rerun = Demo(data, tmp_path / "demo2.log", tmp_path)
    try:
        assert "continuing the stored demo data" in rerun.log.read_text()
        after = {k: _count(rerun.url, k, since, until + 1) for k in before}
        assert after == before  # not doubled
    finally:
        rerun.stop()
