"""IP fields over real HTTP, on both engines: a record whose IP field (top level, in a list, in an object, in a
list of objects) holds what OpenSearch's `ip` type does not index (`999.1.1.1`, `""`, `-`, a number, a CIDR) is
its line's error naming the field, the batch's other lines are stored and searchable, and null stays fine.
(Both engines convert with the same checks: ingest/ips.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.client import Client
from margay.config import Settings
from margay.logtypes import REGISTRY, SAMPLES
from margay.testing.server import ServerThread

NDJSON = {"content-type": "application/x-ndjson", "x-cluster-id": "c1"}
MSG = "is not an IP address (expected an IPv4 or IPv6 address)"


@pytest.fixture
def site(engine: dict[str, Any], tmp_path: Path) -> Iterator[tuple[ServerThread, Client]]:
    with ServerThread(create_app(Settings(data_dir=tmp_path / "data", **engine))) as server, \
            Client(server.url) as client:
        yield server, client


def _post(server: ServerThread, name: str, records: list[dict[str, Any]]) -> httpx.Response:
    body = b"\n".join(orjson.dumps(r) for r in records)
    return httpx.post(server.url + "/api/v1" + REGISTRY[name].bulk_path, content=body, headers=NDJSON, timeout=60)


def _sample(name: str, i: int = 0) -> dict[str, Any]:
    return dict(orjson.loads(SAMPLES[name][i]))


def test_bad_ips_in_flows_are_named_and_the_good_lines_kept(site: tuple[ServerThread, Client]) -> None:
    server, client = site
    good = [_sample("flows", i) for i in range(4)]
    good[0] |= {"source_ip": "10.1.2.3", "dest_ip": "::ffff:10.0.0.9"}
    good[1] |= {"source_ip": None, "original_source_ips": ["203.0.113.9", None, "2001:db8::1"]}
    records = [good[0], good[0] | {"source_ip": "999.1.1.1"}, good[1], good[1] | {"dest_ip": "-"},
               good[2] | {"source_ip": ""}, good[3], good[3] | {"original_source_ips": ["10.0.0.1", "10.0.0.0/8"]},
               good[2] | {"dest_ip": 167772161}]
    r = _post(server, "flows", records)
    assert r.status_code == 200, r.text  # Linseed: 200 with per-record errors once any record is stored
    assert r.json() == {"total": 8, "succeeded": 3, "failed": 5, "errors": [
        {"line": 2, "field": "source_ip", "msg": MSG}, {"line": 4, "field": "dest_ip", "msg": MSG},
        {"line": 5, "field": "source_ip", "msg": MSG}, {"line": 7, "field": "original_source_ips", "msg": MSG},
        {"line": 8, "field": "dest_ip", "msg": MSG}]}
    assert client.search("flows", {}, ["c1"])["total_hits"] == 3
    found = client.search("flows", {"selector": 'source_ip = "10.1.2.3"'}, ["c1"])
    assert found["total_hits"] == 1 and found["items"][0]["dest_ip"] == "::ffff:10.0.0.9"


def test_bad_ips_in_objects_and_lists_of_objects_are_named(site: tuple[ServerThread, Client]) -> None:
    server, client = site
    dns = _sample("dns")
    server_ok = dict(dns["servers"][0])
    r = _post(server, "dns", [dns, dns | {"servers": [server_ok, server_ok | {"ip": "kube-dns"}]},
                              dns | {"client_ip": "010.0.0.1"}, dns | {"client_ip": None, "servers": None}])
    assert r.status_code == 200, r.text
    assert r.json()["errors"] == [{"line": 2, "field": "servers.ip", "msg": MSG},
                                  {"line": 3, "field": "client_ip", "msg": MSG}]
    assert r.json()["succeeded"] == 2 and client.search("dns", {}, ["c1"])["total_hits"] == 2
    waf = _sample("waf")
    r = _post(server, "waf", [waf | {"source": dict(waf["source"], ip="[::1]")}, waf,
                              waf | {"destination": dict(waf["destination"], ip=" 10.0.0.1")}])
    assert r.status_code == 200, r.text
    assert r.json()["errors"] == [{"line": 1, "field": "source.ip", "msg": MSG},
                                  {"line": 3, "field": "destination.ip", "msg": MSG}]
    assert client.search("waf", {}, ["c1"])["total_hits"] == 1


def test_a_batch_of_only_bad_ips_stores_nothing(site: tuple[ServerThread, Client]) -> None:
    server, client = site
    r = _post(server, "events", [_sample("events") | {"source_ip": "not-an-ip"}])
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [{"line": 1, "field": "source_ip", "msg": MSG}]
    assert client.search("events", {}, ["c1"])["total_hits"] == 0
