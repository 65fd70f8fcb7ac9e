"""Compliance data written over the API in Linseed's shapes (`/compliance/snapshots/bulk`,
`/compliance/benchmarks/bulk`) is what the reports read, on both engines; a bad document is a 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from margay.app import create_app
from margay.config import Settings
from margay.reports import cis, reporter, snapshots
from margay.testing.server import ServerThread

T = datetime(2026, 12, 1, tzinfo=UTC)
NDJSON = {"content-type": "application/x-ndjson", "x-cluster-id": "c1"}


def test_snapshots_and_benchmarks_over_the_api(engine: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", **engine))
    with ServerThread(app) as server:
        snap = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
                "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                           "spec": {"containers": [{"name": "c"}]}}],
                "requestStartedTimestamp": "2026-11-30T23:59:00Z", "requestCompletedTimestamp": "2026-11-30T23:59:01Z"}
        r = httpx.post(server.url + "/api/v1/compliance/snapshots/bulk", content=orjson.dumps(snap), headers=NDJSON)
        assert r.status_code == 200, r.text
        bench = cis.from_kube_bench(b'{"Controls": [{"version": "cis-1.6", "tests": [{"section": "4.1", "results": '
                                    b'[{"test_number": "4.1.1", "status": "FAIL", "scored": true}]}]}]}',
                                    "n1", "v1.30.2", T + timedelta(hours=1))
        r = httpx.post(server.url + "/api/v1/compliance/benchmarks/bulk", content=orjson.dumps(bench),
                       headers=NDJSON)
        assert r.status_code == 200, r.text
        r = httpx.post(server.url + "/api/v1/compliance/snapshots/bulk", content=b'{"kind": "PodList"}',
                       headers=NDJSON)
        assert r.status_code == 400 and "requestCompletedTimestamp" in r.text
        backend = app.state.margay.backend
        got = snapshots.latest(backend, "c1", T)
        assert got is not None and list(got[1]["Pod"]) == [("a", "p")]
        report = {"kind": "GlobalReport", "metadata": {"name": "cis"}, "spec": {"reportType": "cis-benchmark"}}
        reporter.run(backend, "c1", report, T, T + timedelta(days=1), T + timedelta(days=1))
        files = reporter.downloads(reporter.stored(backend, "c1", "cis", T + timedelta(days=1)))
        assert files["node-summary.csv"] == ("node,version,status,testsPassing,testsFailing,testsUnknown,testsTotal\n"
                                             "n1,v1.30.2,LOW,0,1,0,1\n\n")
