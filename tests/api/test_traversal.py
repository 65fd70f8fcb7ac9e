"""No request can create a file outside the data directory: hostile cluster names through every write path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.errors import QueryError
from margay.logtypes import REGISTRY, SAMPLES
from margay.names import is_cluster_name
from margay.store.catalog import SHARED
from margay.store.duckdb import DuckDBBackend
from margay.testing.server import ServerThread

HOSTILE = ["../escape", "../../escape", "..", ".", "/", "/tmp/escape", "a/b", "a/../../escape", "_MULTI_",
           "Upper", "under_score", "é", "ｅｓｃａｐｅ", "%2e%2e", "%2e%2e%2fescape", "a\\b", "a\x00b", "-x", "x-",
           ".x", "x.", "a..b", "a b", "*", "a,b", "x" * 254, "\u202e", "..%2f..%2fescape"]
FLOW = orjson.loads(SAMPLES["flows"][0])
EVENTLIST = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [
    {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1", "stage": "ResponseComplete",
     "requestURI": "/api/v1/pods", "verb": "list", "user": {"username": "u"},
     "requestReceivedTimestamp": "2026-12-05T10:00:00.000000Z", "stageTimestamp": "2026-12-05T10:00:00.100000Z"}]}


def files_under(root: Path) -> set[str]:
    out = set()
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.join(d, name))
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A server whose data directory sits two levels below a watched folder."""
    data = tmp_path / "a" / "b" / "data"
    app = create_app(Settings(data_dir=data, backend="duckdb"))
    with ServerThread(app) as server:
        yield server.url, tmp_path, data


def post(url: str, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + path, content=content, headers=headers, timeout=30)


def test_the_rule_is_dns_1123() -> None:
    for good in ["cluster", "app-cluster-1", "a", "a.b.c", "0", "x" * 253, "cluster.fluentd-20261205-000001"]:
        assert is_cluster_name(good), good
    for bad in HOSTILE:
        assert not is_cluster_name(bad), bad


def test_no_write_path_leaves_the_data_directory(sandbox: tuple[str, Path, Path]) -> None:
    url, watched, data = sandbox
    outside_before = files_under(watched) - files_under(data)
    answers: list[tuple[str, str, int]] = []
    ndjson = {"content-type": "application/x-ndjson"}
    for name in HOSTILE:
        if "\x00" not in name:  # no HTTP client sends a NUL in a header
            # native bulk and the audit webhook take the cluster from x-cluster-id (raw UTF-8 bytes here)
            header: Any = name.encode("utf-8")
            r = post(url, "/api/v1" + REGISTRY["flows"].bulk_path, orjson.dumps(FLOW),
                     {**ndjson, "x-cluster-id": header})
            answers.append(("native", name, r.status_code))
            r = post(url, "/api/v1" + REGISTRY["audit_kube"].bulk_path, orjson.dumps(EVENTLIST),
                     {"content-type": "application/json", "x-cluster-id": header})
            answers.append(("webhook", name, r.status_code))
        # /es/_bulk takes it from the index name: in the action line and in the URL
        for index in (f"tigera_secure_ee_flows.{name}.20261205", f"tigera_secure_ee_flows.{name}",
                      f"tigera_secure_ee_flows.{name}."):
            body = orjson.dumps({"index": {"_index": index}}) + b"\n" + orjson.dumps(FLOW) + b"\n"
            r = post(url, "/es/_bulk", body, ndjson)
            assert r.status_code < 500, r.text
            item = r.json()["items"][0]["index"] if r.status_code == 200 else {"status": r.status_code}
            answers.append(("es action", index, item["status"]))
        quoted = url + "/es/" + quote("tigera_secure_ee_flows." + name, safe="") + "/_bulk"
        r = httpx.post(quoted, content=orjson.dumps({"index": {}}) + b"\n" + orjson.dumps(FLOW) + b"\n",
                       headers=ndjson, timeout=30)
        assert r.status_code < 500, r.text
        answers.append(("es url", name, r.json()["items"][0]["index"]["status"] if r.status_code == 200
                        else r.status_code))
    # Every hostile name was refused with a 4xx naming the rule, and nothing was stored under it.
    # ... except Calico's write alias `<prefix>.x.`, which names the valid cluster `x`.
    write_alias = {("es action", "tigera_secure_ee_flows.x."), ("es url", "x.")}
    assert all(400 <= status < 500 for kind, name, status in answers if (kind, name) not in write_alias), \
        [a for a in answers if not 400 <= a[2] < 500]
    assert all(400 <= status < 500 for kind, _, status in answers if kind in ("native", "webhook")), answers
    refused = post(url, "/api/v1" + REGISTRY["flows"].bulk_path, orjson.dumps(FLOW),
                   {**ndjson, "x-cluster-id": "../escape"})
    assert "DNS-1123" in refused.json()["error"]["message"]
    assert files_under(watched) - files_under(data) == outside_before, "a file was created outside the data dir"
    store = data / "store"
    assert not is_cluster_name(SHARED)  # the cold layout's folder can never be a client's cluster
    for typedir in store.iterdir():
        for cluster_dir in typedir.iterdir():
            assert is_cluster_name(cluster_dir.name) or cluster_dir.name == SHARED, cluster_dir


def test_calico_write_alias_and_ilm_backing_indices_still_parse(sandbox: tuple[str, Path, Path]) -> None:
    url, _, _ = sandbox
    for index in ("tigera_secure_ee_flows.cluster.", "tigera_secure_ee_flows.cluster.20261205",
                  "tigera_secure_ee_flows.cluster.fluentd-20261205-000001"):
        body = orjson.dumps({"index": {"_index": index}}) + b"\n" + orjson.dumps(FLOW) + b"\n"
        r = post(url, "/es/_bulk", body, {"content-type": "application/x-ndjson"})
        assert r.status_code == 200 and r.json()["items"][0]["index"]["status"] == 201, (index, r.text)
    r = httpx.post(url + "/api/v1/flows/logs", json={"max_page_size": 0, "time_range": {"from": "2000-01-01T00:00:00Z"}},
                   headers={"x-cluster-id": "cluster"}, timeout=30)
    assert r.json()["total_hits"] == 3  # the write alias, the dated and the ILM backing index name `cluster`


def test_malformed_bulk_action_lines_are_400(sandbox: tuple[str, Path, Path]) -> None:
    url, _, _ = sandbox
    for action in (b'{"index":"x"}', b'{"index":[1]}', b'{"index":null}', b'{"create":7}', b'[]', b'"x"'):
        r = post(url, "/es/_bulk", action + b"\n" + orjson.dumps(FLOW) + b"\n", {"content-type": "application/x-ndjson"})
        assert r.status_code == 400, (action, r.text)
        assert "line 1" in str(r.json()["error"]), r.text
    # blank lines count: the error names the body's own line, as an editor numbers it
    body = b"\n\n" + orjson.dumps({"index": {}}) + b"\n" + orjson.dumps(FLOW) + b"\n\n\n" + b'{"index":"x"}\n{}\n'
    r = post(url, "/es/_bulk", body, {"content-type": "application/x-ndjson"})
    assert r.status_code == 400 and "line 7" in str(r.json()["error"]), r.text


def test_a_bulk_body_of_too_many_lines_is_refused_before_it_is_split(sandbox: tuple[str, Path, Path]) -> None:
    from margay.api.es import MAX_BULK_LINES

    url, _, _ = sandbox
    r = post(url, "/es/_bulk", b"{}\n" * (MAX_BULK_LINES + 1), {"content-type": "application/x-ndjson"})
    assert r.status_code == 400 and "at most 1,000,000 lines" in r.text, r.text


def test_the_store_refuses_a_path_outside_its_folder(tmp_path: Path) -> None:
    """The last line of defence, below the edge: the embedded store itself."""
    data = tmp_path / "x" / "data"
    backend = DuckDBBackend(data)
    try:
        before = files_under(tmp_path) - files_under(data)
        for cluster in ("../../escape", "..", "a/b", "/abs", "", "a\x00b"):
            with pytest.raises(QueryError, match="refusing to store"):
                backend.ingest(REGISTRY["flows"], cluster, orjson.dumps(FLOW) + b"\n", key=None,
                               now=datetime.now(UTC), respond=lambda conv: {"ok": conv.succeeded})
        assert files_under(tmp_path) - files_under(data) == before
        assert not list((data / "scratch").glob("*/*.parquet"))  # the refused batch's scratch files are gone
    finally:
        backend.close()

