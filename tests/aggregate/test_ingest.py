"""Aggregation at ingest (per-cluster Aggregation document), its config errors, the CLI and the bench hook."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from margay.aggregate import IngestAggregation, bench
from margay.app import create_app
from margay.cli import app as cli
from margay.config import Settings
from margay.errors import ConfigError
from margay.testing.server import ServerThread

from .test_flows import INPUT

NDJSON = {"content-type": "application/x-ndjson"}
CONFIG = """
apiVersion: margay.dev/v1
kind: Aggregation
spec:
  clusters:
    - name: busy
      flows: {allowed: 3, denied: 3}
"""


def test_only_the_configured_cluster_is_aggregated(tmp_path: Path) -> None:
    cfg = tmp_path / "margay.yaml"
    cfg.write_text(CONFIG)
    body = b"\n".join(orjson.dumps(r) for r in INPUT)
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data", config=cfg))) as s:
        url = s.url + "/api/v1/flows/logs/bulk"
        busy = httpx.post(url, content=body, headers={**NDJSON, "x-cluster-id": "busy"})
        quiet = httpx.post(url, content=body, headers={**NDJSON, "x-cluster-id": "quiet"})
        assert busy.status_code == 200 and quiet.status_code == 200
        assert busy.json()["succeeded"] == 2 and quiet.json()["succeeded"] == 4
        # A bad line disables aggregation for its batch, so the line is still named (200: the good ones are
        # stored, as Linseed answers a partly good batch).
        bad = httpx.post(url, content=body + b'\n{"start_time":1,"end_time":2,"action":"permit","reporter":"src"}',
                         headers={**NDJSON, "x-cluster-id": "busy"})
        assert bad.status_code == 200 and bad.json()["errors"][0]["line"] == 5 and bad.json()["failed"] == 1


@pytest.mark.parametrize(("text", "field"), [
    ("spec: {clusters: [{flows: {}}]}", "spec.clusters[0].name"),
    ("spec: {clusters: [{name: a, flows: {allowed: 7}}]}", "spec.clusters[0].flows.allowed"),
    ("spec: {clusters: [{name: a, dns: {level: 2}}]}", "spec.clusters[0].dns.level"),
    ("spec: {clusters: [{name: a, flushInterval: 0}]}", "spec.clusters[0].flushInterval"),
    ("spec: {clusters: [{name: a, flows: {allowd: 1}}]}", "spec.clusters[0].flows.allowd"),
])
def test_invalid_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("apiVersion: margay.dev/v1\nkind: Aggregation\n" + text)
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        IngestAggregation.from_file(cfg)


def test_cli_aggregate_writes_ndjson(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(b"\n".join(orjson.dumps(r) for r in INPUT))
    result = CliRunner().invoke(cli, ["aggregate", "--type", "flows", "--level", "3", "--level-denied", "3",
                                      str(src)])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 2


def test_bench_measures_each_level() -> None:
    body = b"\n".join(orjson.dumps(r) for r in INPUT * 5)
    res = bench(body)
    assert res["records_in"] == 20 and set(res["levels"]) == {0, 1, 2, 3}
    assert res["levels"][3]["records_out"] == 2 and res["levels"][3]["records_per_s"] > 0
    # the process's CPU per level: DuckDB parses and groups the records, so never zero; at most wall x cores
    for r in res["levels"].values():
        assert 0 < r["cpu_s"] <= r["seconds"] * (os.cpu_count() or 1) + 0.05
