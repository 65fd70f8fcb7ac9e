"""Smoke tests of the rig's real Splunk HEC receiver (tests/rig/fixture_hec.py)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import httpx
import pytest

from margay.rig.hec import HecReceiver

pytestmark = pytest.mark.rig


def _batch(events: list[dict[str, Any]]) -> bytes:
    """Splunk HEC's batch format: JSON objects concatenated (no array, no separator needed)."""
    return "".join(json.dumps(e) for e in events).encode()


def _with_marker(marker: str):
    def match(e: dict[str, Any]) -> bool:
        body = e["event"]
        return (isinstance(body, dict) and body.get("marker") == marker) or (
            isinstance(body, str) and marker in body)
    return match


def test_batch_round_trip(hec: HecReceiver) -> None:
    marker = uuid.uuid4().hex
    sent = [
        {"time": 1700000000.125, "host": "node-1", "source": "calico-flow", "sourcetype": "calico:flow",
         "index": "netsec", "event": {"marker": marker, "src": "10.0.0.1", "bytes": 1200, "allowed": True,
                                      "labels": {"app": "web"}, "ports": [80, 443]},
         "fields": {"cluster": "c1"}},
        {"time": 1700000001.5, "host": "node-2", "source": "calico-dns", "sourcetype": "calico:dns",
         "index": "netsec", "event": {"marker": marker, "qname": "example.svc.cluster.local"}},
        {"time": 1700000002, "host": "node-1", "source": "audit", "sourcetype": "kube:audit",
         "index": "audit", "event": f"plain text event {marker}"},
    ]
    r = httpx.post(hec.url, headers=hec.headers, content=_batch(sent), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "Success", "code": 0}

    got = hec.wait_for_events(_with_marker(marker), count=len(sent), timeout=60)
    assert len(got) == len(sent)
    for want in sent:
        (match,) = [g for g in got if g["event"] == want["event"]]
        assert match["time"] == pytest.approx(want["time"], abs=1e-6)
        for key in ("host", "source", "sourcetype", "index"):
            assert match[key] == want[key], key
        assert match["fields"] == want.get("fields", {})


def test_event_path_and_defaults(hec: HecReceiver) -> None:
    """/services/collector/event is the same endpoint; metadata left out stays absent (no time either)."""
    marker = uuid.uuid4().hex
    r = httpx.post(f"{hec.url}/event", headers=hec.headers, content=_batch([{"event": {"marker": marker}}]),
                   timeout=10)
    assert r.status_code == 200, r.text
    (got,) = hec.wait_for_events(_with_marker(marker), timeout=60)
    assert got["time"] is None
    assert (got["host"], got["source"], got["sourcetype"], got["index"]) == (None, None, None, None)


@pytest.mark.parametrize("authorization", [None, "Splunk wrong-token", "Bearer {token}", "Splunk"])
def test_wrong_token_is_refused(hec: HecReceiver, authorization: str | None) -> None:
    marker = uuid.uuid4().hex
    headers = {} if authorization is None else {"Authorization": authorization.format(token=hec.token)}
    r = httpx.post(hec.url, headers=headers, content=_batch([{"event": {"marker": marker}}]), timeout=10)
    assert r.status_code in (401, 403), (r.status_code, r.text)
    # A good request after it is written; the refused one never is.
    good = uuid.uuid4().hex
    r = httpx.post(hec.url, headers=hec.headers, content=_batch([{"event": {"marker": good}}]), timeout=10)
    assert r.status_code == 200, r.text
    hec.wait_for_events(_with_marker(good), timeout=60)  # the collector batches; slow on a busy machine
    assert not [e for e in hec.read_events() if _with_marker(marker)(e)]


def test_health_needs_token(hec: HecReceiver) -> None:
    assert httpx.get(hec.health_url, timeout=5).status_code == 401
    r = httpx.get(hec.health_url, headers=hec.headers, timeout=5)
    assert r.status_code == 200 and r.json()["text"] == "HEC is healthy"


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets that process `pid` listens on (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as fh:
            next(fh)
            for row in fh:
                cols = row.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state == "0A" and inode in inodes:  # 0A = LISTEN
                    addr_hex, port_hex = local.split(":")
                    if table == "tcp":
                        addr = ".".join(str(b) for b in reversed(bytes.fromhex(addr_hex)))
                    else:
                        addr = addr_hex
                    found.add((addr, int(port_hex, 16)))
    return found


def test_only_the_hec_port_is_open(hec: HecReceiver) -> None:
    assert hec.pid is not None
    assert _listening_ports(hec.pid) == {("127.0.0.1", hec.port)}
