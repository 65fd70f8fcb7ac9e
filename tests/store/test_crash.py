"""Acknowledged means durable: kill -9 the server mid-stream, restart, and every acked record is there once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import orjson

from margay.client import Client
from margay.logtypes import SAMPLES
from margay.testing.server import ServerProcess


def batch(i: int, n: int = 500) -> bytes:
    base = orjson.loads(SAMPLES["flows"][0])
    return b"\n".join(orjson.dumps(dict(base, bytes_in=i * n + j, end_time=1_700_000_300 + j)) for j in range(n))


def test_kill_9_keeps_every_acknowledged_record_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acked: list[int] = []
    stop = threading.Event()
    proc = ServerProcess(data).start()

    def writer(url: str) -> None:
        i = 0
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/api/v1/flows/logs/bulk", content=batch(i),
                                  headers={"content-type": "application/x-ndjson", "idempotency-key": f"b{i}"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(i)
                i += 1

    t = threading.Thread(target=writer, args=(proc.url,))
    t.start()
    while len(acked) < 20:
        threading.Event().wait(0.05)
    proc.kill()  # SIGKILL while the writer is mid-request
    stop.set()
    t.join()
    assert len(acked) >= 20

    with ServerProcess(data) as again, Client(again.url) as client:
        # A retried acknowledged batch is stored once, even across the crash.
        last = acked[-1]
        r = client.bulk("flows", batch(last), key=f"b{last}", compress=False)
        assert r["succeeded"] == 500
        ids: list[int] = []
        body: dict = {"max_page_size": 10_000, "sort": [{"field": "bytes_in"}]}
        while True:
            page = client.search("flows", body, ["cluster"])
            ids += [item["bytes_in"] for item in page["items"]]
            if "after_key" not in page:
                break
            body["after_key"] = page["after_key"]
        batches = {v // 500 for v in ids}
        assert set(acked) <= batches  # every acknowledged batch is there...
        assert len(ids) == len(set(ids))  # ...exactly once
        assert len(ids) == 500 * len(batches)  # and no batch is torn
