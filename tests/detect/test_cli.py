"""`margay alerts ...` and `margay feeds ...` end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import yaml
from typer.testing import CliRunner

from margay.app import create_app
from margay.cli import app
from margay.config import Settings
from margay.detect.scenarios import denied_flow_spike
from margay.testing.server import ServerThread

runner = CliRunner(env={"COLUMNS": "200"})


def test_templates_new_and_check(tmp_path: Path):
    r = runner.invoke(app, ["alerts", "templates"])
    assert r.exit_code == 0 and "margay.secret-read" in r.output
    r = runner.invoke(app, ["alerts", "new", "margay.denied-flow-spike", "spikes", "--set", "threshold=50"])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.output)
    assert doc["kind"] == "GlobalAlert" and doc["spec"]["threshold"] == 50
    (tmp_path / "a.yaml").write_text(r.output)
    r = runner.invoke(app, ["alerts", "check", str(tmp_path / "a.yaml")])
    assert r.exit_code == 0 and "spikes" in r.output and "count gte 50" in r.output
    doc["spec"]["period"] = "10s"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    r = runner.invoke(app, ["alerts", "check", str(tmp_path / "a.yaml")])
    assert r.exit_code == 1 and "a.yaml document 1: spec.period: must be at least 1m" in r.output
    r = runner.invoke(app, ["alerts", "new", "nope", "x"])
    assert r.exit_code == 1 and "no built-in template 'nope'" in r.output


def test_feeds_pull(tmp_path: Path, feed_server):
    feed_server.routes["/ok"] = (200, b"1.2.3.4\n10.0.0.0/8\n", 0)
    feed_server.routes["/bad"] = (500, b"", 0)
    docs = [{"apiVersion": "projectcalico.org/v3", "kind": "GlobalThreatFeed", "metadata": {"name": n},
             "spec": {"pull": {"http": {"url": feed_server.url + p}}}} for n, p in (("good", "/ok"), ("broken", "/bad"))]
    (tmp_path / "f.yaml").write_text(yaml.safe_dump_all(docs))
    r = runner.invoke(app, ["feeds", "pull", str(tmp_path / "f.yaml")])
    assert r.exit_code == 1 and "loopback" in r.output and not feed_server.seen
    r = runner.invoke(app, ["feeds", "pull", str(tmp_path / "f.yaml"), "--allow-network", "127.0.0.0/8"],
                      terminal_width=200)
    assert r.exit_code == 1 and "HTTP 500" in r.output
    assert [ln.replace("│", " ").split()[:3] for ln in r.output.splitlines() if "good" in ln] == [["good", "2", "0"]]
    r = runner.invoke(app, ["feeds", "check", str(tmp_path / "f.yaml")])
    assert r.exit_code == 0 and "broken" in r.output


def test_dry_run_over_a_stopped_servers_data(tmp_path: Path):
    data = tmp_path / "data"
    now = int(datetime.now(UTC).timestamp())
    with ServerThread(create_app(Settings(data_dir=data, auth="none"))) as server:
        body = b"\n".join(orjson.dumps(x) for x in denied_flow_spike(now)["flows"])
        r = httpx.post(server.url + "/api/v1/flows/logs/bulk", content=body,
                       headers={"x-cluster-id": "c1", "content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
    r = runner.invoke(app, ["alerts", "new", "margay.denied-flow-spike", "spikes"])
    (tmp_path / "a.yaml").write_text(r.output)
    r = runner.invoke(app, ["alerts", "dry-run", str(tmp_path / "a.yaml"), "--since", "1h", "--data-dir", str(data)],
                      terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "spikes: 1 event(s)" in r.output and "c1: 1" in r.output and "120 denied flows from namespace batch" in r.output
