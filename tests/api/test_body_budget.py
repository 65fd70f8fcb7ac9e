"""One budget for the request bodies held at once (api/budget.py): many small gzip bodies that inflate large
no longer add up past it, and a request alone always gets its own limit."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from margay.api.budget import BodyBudget, Busy, Held
from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

MiB = 1 << 20
BULK = "/api/v1/flows/logs/bulk"
NDJSON = {"content-type": "application/x-ndjson"}


def flows(size: int) -> bytes:
    """Real sample flows repeated to about `size` bytes."""
    one = "\n".join(SAMPLES["flows"]).encode() + b"\n"
    return one * (size // len(one) + 1)


def test_the_budget_refuses_only_while_others_hold_bytes() -> None:
    budget = BodyBudget(1000)
    a, b = Held(budget), Held(budget)
    budget.charge(a, 600)
    budget.charge(a, 900)  # alone: its own bytes never stop it
    assert budget.used == 1500
    with pytest.raises(Busy) as exc:
        budget.charge(b, 1)
    assert exc.value.status == 503 and "max_inflight_body_bytes" in str(exc.value)
    assert (budget.used, b.n, budget.refused) == (1500, 0, 1)
    budget.release(a)
    budget.charge(b, 999)
    budget.charge(a, 1)
    with pytest.raises(Busy):
        budget.charge(a, 1)
    budget.release(a)
    budget.release(b)
    assert budget.used == 0


def _held(url: str) -> float:
    for line in httpx.get(url + "/-/metrics").text.splitlines():
        if line.startswith("margay_request_body_bytes "):
            return float(line.split()[1])
    raise AssertionError("no margay_request_body_bytes in /-/metrics")


def _wait_held(url: str, at_least: int) -> None:
    deadline = time.monotonic() + 20
    while _held(url) < at_least:
        assert time.monotonic() < deadline, f"the server held {_held(url)} bytes, never {at_least}"
        time.sleep(0.05)


def test_bodies_in_flight_share_one_budget(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, max_body_bytes=8 * MiB, max_inflight_body_bytes=1 * MiB)
    with ServerThread(create_app(settings)) as s:
        # A request alone gets its own limit, whatever the budget: 3 MiB inflated from a small gzip body.
        big = flows(3 * MiB)
        r = httpx.post(s.url + BULK, content=gzip.compress(big), headers={**NDJSON, "content-encoding": "gzip"})
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        assert _held(s.url) == 0  # released once answered

        # One request holds 800 KiB and stalls, its body unfinished.
        slow = flows(900 * 1024)
        sent = 800 * 1024
        host = urlsplit(s.url)
        sock = socket.create_connection((host.hostname, host.port))
        try:
            sock.sendall(f"POST {BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                         f"Content-Length: {len(slow)}\r\n\r\n".encode() + slow[:sent])
            _wait_held(s.url, 700 * 1024)
            # Meanwhile a 40 kB gzip body that inflates to 600 kB would go past the budget: 503, retry later.
            bomb = gzip.compress(flows(600 * 1024))
            assert len(bomb) < 100 * 1024
            gz = {**NDJSON, "content-encoding": "gzip", "x-cluster-id": "later"}
            r = httpx.post(s.url + BULK, content=bomb, headers=gz)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "2"
            error = r.json()["error"]
            assert error["type"] == "busy" and "max_inflight_body_bytes" in error["message"], error
            # The stalled request finishes and is stored; then the same body goes through.
            sock.sendall(slow[sent:])
            answer = sock.recv(65536)
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        finally:
            sock.close()
        deadline = time.monotonic() + 20
        while _held(s.url):
            assert time.monotonic() < deadline, "the stalled request's bytes were never released"
            time.sleep(0.05)
        r = httpx.post(s.url + BULK, content=bomb, headers=gz)
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text
        metrics = httpx.get(s.url + "/-/metrics").text
        assert "margay_request_body_refused_total 1" in metrics
