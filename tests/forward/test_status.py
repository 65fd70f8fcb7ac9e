"""`margay forward status` without a server: each store's cursor and lag, from a stopped server's data dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import orjson
from typer.testing import CliRunner

from margay.cli import app
from margay.forward.cursor import Cursor
from margay.logtypes import REGISTRY
from margay.simulate import flows, ndjson_batches
from margay.store.duckdb import DuckDBBackend

from .conftest import END, syslog_store, topology, write_config

runner = CliRunner(env={"COLUMNS": "200"})


def _store(data: Path, batches: int, per_batch: int) -> list[int]:
    """Store `batches` batches of simulated flows; the store's head `_seq` after each."""
    topo = topology()
    records = flows(topo, topo.clusters[0], END - timedelta(hours=6), END)
    heads = []
    backend = DuckDBBackend(data)
    try:
        for body in islice(ndjson_batches(records, per_batch), batches):
            resp, _ = backend.ingest(REGISTRY["flows"], topo.clusters[0], body, key=None, now=datetime.now(UTC),
                                     respond=lambda c: {"succeeded": c.succeeded})
            assert resp["succeeded"] == per_batch
            heads.append(backend.head_seq())
    finally:
        backend.close()
    return heads


def _status(data: Path, config: Path) -> dict[str, dict]:
    r = runner.invoke(app, ["forward", "status", "--data-dir", str(data), "--config", str(config), "--json"])
    assert r.exit_code == 0, r.output
    return {row["store"]: row for row in orjson.loads(r.output)}


def test_lag_is_what_each_store_has_not_delivered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    heads = _store(data, 2, 300)
    config = write_config(tmp_path / "margay.yaml", {"syslog": syslog_store(1, logTypes=["Flows"])})
    row = _status(data, config)["syslog"]
    assert row["types"] == ["flows"] and row["cursor"] == {}
    assert row["lag_records"] == 600 and row["lag_seconds"] >= 0

    Cursor.for_store(data, "syslog").advance("flows", heads[0])  # the first batch delivered
    row = _status(data, config)["syslog"]
    assert row["cursor"] == {"flows": heads[0]} and row["lag_records"] == 300

    Cursor.for_store(data, "syslog").advance("flows", heads[1])
    assert _status(data, config)["syslog"]["lag_records"] == 0


def test_a_store_of_other_types_lags_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _store(data, 1, 100)
    config = write_config(tmp_path / "margay.yaml", {"syslog": syslog_store(1, logTypes=["DNS"])})
    row = _status(data, config)["syslog"]
    assert row["types"] == ["dns"] and row["lag_records"] == 0 and row["lag_seconds"] == 0.0


def test_a_bad_config_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "margay.yaml").write_text("kind: LogCollector\nspec: {additionalStores: {syslog: {}}}\n")
    r = runner.invoke(app, ["forward", "status", "--data-dir", str(tmp_path / "data"), "--config",
                            str(tmp_path / "margay.yaml")])
    assert r.exit_code != 0 and "logTypes" in r.output and "Traceback" not in r.output
