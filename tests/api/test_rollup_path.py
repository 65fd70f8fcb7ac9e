"""Aggregations over HTTP say which rows answered them (x-margay-aggregation-path, a metric)."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000


def test_aggregation_path_is_visible_and_answers_agree(tmp_path: Path) -> None:
    base = orjson.loads(SAMPLES["flows"][0])
    body = b"\n".join(orjson.dumps(dict(base, end_time=T0 + i, start_time=T0 + i - 300, bytes_in=i,
                                        dest_name_aggr=f"d{i % 7}")) for i in range(3000))
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with ServerThread(app) as s, httpx.Client(base_url=s.url, timeout=60, headers={"x-cluster-id": "east"}) as http:
        http.post("/api/v1/flows/logs/bulk", content=body,
                  headers={"content-type": "application/x-ndjson"}).raise_for_status()
        top = {"time_range": {"from": T0 - 3600, "to": T0 + 7200}, "aggregations": {
            "dest": {"terms": {"field": "dest_name_aggr", "size": 3, "order": {"bytes": "desc"}},
                     "aggs": {"bytes": {"sum": {"field": "bytes_in"}}}}}}
        before = http.post("/api/v1/flows/logs/aggregation", json=top)
        assert before.headers["x-margay-aggregation-path"] == "raw"  # no roll-up yet
        assert app.state.margay.backend.build_rollups(0) == 1
        after = http.post("/api/v1/flows/logs/aggregation", json=top)
        assert after.headers["x-margay-aggregation-path"] == "rollup"
        assert after.json() == before.json()
        assert after.json()["dest"]["buckets"][0] == {
            "key": "d3", "doc_count": 429, "bytes": {"value": float(sum(range(3, 3000, 7)))}}
        hosts = http.post("/api/v1/flows/logs/aggregation", json={"aggregations": {"h": {"terms": {"field": "host"}}}})
        assert hosts.headers["x-margay-aggregation-path"] == "raw"
        text = http.get("/-/metrics").text
        assert 'margay_aggregations_total{path="rollup"} 1' in text
        assert 'margay_aggregations_total{path="raw"} 2' in text
