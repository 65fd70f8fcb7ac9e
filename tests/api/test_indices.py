"""GET /api/v1/indices for a fleet: filtered by type, cluster (name or prefix) and day, paged by index name,
on both engines; bad parameters are a 400 naming the parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000  # 2023-11-14
CLUSTERS = [f"prod-{i:02d}" for i in range(12)] + ["lab"]


def test_a_fleet_lists_its_indices_in_filtered_pages(engine: dict[str, Any], tmp_path: Path) -> None:
    base = orjson.loads(SAMPLES["flows"][0])
    two_days = b"\n".join(orjson.dumps(dict(base, start_time=t, end_time=t + 300)) for t in (T0, T0 + 86_400))
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data", **engine))) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        for c in CLUSTERS:
            r = http.post("/api/v1/flows/logs/bulk", content=two_days,
                          headers={"content-type": "application/x-ndjson", "x-cluster-id": c})
            assert r.status_code == 200, r.text
        r = http.post("/api/v1/dns/logs/bulk", content=SAMPLES["dns"][0].encode(),
                      headers={"content-type": "application/x-ndjson", "x-cluster-id": "lab"})
        assert r.status_code == 200, r.text

        def get(**params: Any) -> dict[str, Any]:
            r = http.get("/api/v1/indices", params=params)
            assert r.status_code == 200, r.text
            return dict(r.json())

        flows = get(log_type="flows")
        assert flows["total"] == 2 * len(CLUSTERS) and "after" not in flows
        assert {i["log_type"] for i in flows["items"]} == {"flows"}
        prod = get(log_type="flows", cluster="prod-*", **{"from": "20231115"})
        assert prod["total"] == 12 and {i["day"] for i in prod["items"]} == {"20231115"}
        assert {i["cluster"] for i in prod["items"]} == {c for c in CLUSTERS if c.startswith("prod-")}
        assert get(cluster="lab")["total"] == 3  # two days of flows and a day of DNS
        seen: list[str] = []
        params: dict[str, Any] = {"log_type": "flows", "limit": 5}
        while True:
            page = get(**params)
            assert len(page["items"]) <= 5 and page["total"] == 2 * len(CLUSTERS)
            seen += [i["index"] for i in page["items"]]
            if "after" not in page:
                break
            params["after"] = page["after"]
        assert seen == sorted(i["index"] for i in flows["items"]) and len(set(seen)) == len(seen)
        for params, field in (({"log_type": "flowz"}, "log_type"), ({"cluster": "a*b*"}, "cluster"),
                              ({"cluster": "Bad_Name"}, "cluster"), ({"from": "2023-11-14"}, "from"),
                              ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                              ({"limit": "\u00b2"}, "limit"), ({"limit": "9" * 5000}, "limit"), ({"size": "3"}, "size")):
            r = http.get("/api/v1/indices", params=params)
            assert r.status_code == 400 and field in r.json()["error"]["message"], (params, r.text)
