"""Scroll and point-in-time on /es/, on both engines, with the real clients' own helpers: every record once,
a snapshot taken at opening, the reader's grant kept (a scoped reader's scroll stays scoped; another caller
cannot use it), bounded server state (a limit on open contexts, expiry on the injected clock)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import elasticsearch
import elasticsearch.helpers
import elasticsearch7
import elasticsearch7.helpers
import elasticsearch8
import elasticsearch8.helpers
import httpx
import orjson
import pytest
import yaml
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers

from access.conftest import RBAC, TOKENS, token_of, write_tokens
from margay.api.es_scroll import Contexts
from margay.app import create_app
from margay.clock import FakeClock
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000
N = 57


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]) -> Iterator[tuple[Any, str, str]]:
    base: Path = tmp_path_factory.mktemp("es-scroll")
    write_tokens(base / "tokens.yaml", TOKENS)
    (base / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    clock = FakeClock(datetime(2023, 11, 15, tzinfo=UTC))
    app = create_app(Settings(data_dir=base / "data", tokens=base / "tokens.yaml", rbac=base / "rbac.yaml",
                              admin_token=True, **module_engine), clock=clock)
    admin = app.state.margay.access.admin_token
    with ServerThread(app) as server:
        ingest(server.url, admin, "east", range(N))
        ingest(server.url, admin, "west", range(10))
        yield app, server.url, admin


def ingest(url: str, admin: str, cluster: str, ids: range) -> None:
    base = orjson.loads(SAMPLES["flows"][0])
    lines = [orjson.dumps(dict(base, start_time=T0 + i, end_time=T0 + 300 + i // 3, bytes_in=i,
                               source_namespace="shop" if i % 3 == 0 else "other",
                               dest_namespace="shop" if i % 3 == 0 else "other")) for i in ids]
    r = httpx.post(f"{url}/api/v1/flows/logs/bulk", content=b"\n".join(lines), timeout=60,
                   headers={"authorization": f"Bearer {admin}", "x-cluster-id": cluster,
                            "content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["succeeded"] == len(ids), r.text


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_every_client_scans_every_record_once(env: tuple[Any, str, str]) -> None:
    _, url, admin = env
    index, query = "tigera_secure_ee_flows.east.*", {"query": {"range": {"bytes_in": {"gte": 0}}}}
    es9 = elasticsearch.Elasticsearch(url + "/es", headers=auth(admin), request_timeout=30)
    es8 = elasticsearch8.Elasticsearch(url + "/es", headers=auth(admin), request_timeout=30)
    osc = OpenSearch(hosts=[url + "/es"], headers=auth(admin), timeout=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es7 = elasticsearch7.Elasticsearch([url + "/es"], headers=auth(admin), timeout=30)
    try:
        for name, hits in [
            ("es9", list(elasticsearch.helpers.scan(es9, index=index, query=query, size=10))),
            ("es8", list(elasticsearch8.helpers.scan(es8, index=index, query=query, size=7, scroll="2m"))),
            ("es7", list(elasticsearch7.helpers.scan(es7, index=index, query=query, size=20))),
            ("opensearch-py", list(os_helpers.scan(osc, index=index, query=query, size=9))),
        ]:
            values = sorted(h["_source"]["bytes_in"] for h in hits)
            assert values == list(range(N)), name
            assert {h["_index"].split(".")[1] for h in hits} == {"east"}, name
        # preserve_order: the caller's sort across pages, ties included
        ordered = list(elasticsearch.helpers.scan(es9, index=index, preserve_order=True, size=4, query={
            "sort": [{"end_time": "desc"}]}))
        assert [h["_source"]["end_time"] for h in ordered] == sorted(
            (T0 + 300 + i // 3 for i in range(N)), reverse=True)
        assert len({h["_id"] for h in ordered}) == N
        assert all(len(h["sort"]) == 1 for h in ordered)  # the tie-breaker stays margay's
    finally:
        for c in (es9, es8, osc, es7):
            c.close()


def test_scroll_is_a_snapshot_and_stays_the_callers(env: tuple[Any, str, str]) -> None:
    app, url, admin = env
    first = httpx.post(f"{url}/es/tigera_secure_ee_flows.west.*/_search", params={"scroll": "1m"},
                       json={"size": 4, "sort": ["_doc"]}, headers=auth(admin), timeout=30).json()
    sid = first["_scroll_id"]
    assert first["hits"]["total"]["value"] == 10 and len(first["hits"]["hits"]) == 4
    ingest(url, admin, "west", range(100, 105))  # written after the scroll opened: not in it
    seen = [h["_source"]["bytes_in"] for h in first["hits"]["hits"]]
    while True:
        page = httpx.post(f"{url}/es/_search/scroll", json={"scroll": "1m", "scroll_id": sid},
                          headers=auth(admin), timeout=30)
        assert page.status_code == 200, page.text
        if not page.json()["hits"]["hits"]:
            break
        seen += [h["_source"]["bytes_in"] for h in page.json()["hits"]["hits"]]
    assert sorted(seen) == list(range(10))
    # another caller cannot use it (as if it did not exist), then it is closed
    other = httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": sid}, headers=auth(token_of("alice")),
                       timeout=30)
    assert other.status_code == 404 and other.json()["error"]["type"] == "search_context_missing_exception"
    gone = httpx.request("DELETE", f"{url}/es/_search/scroll", json={"scroll_id": [sid]}, headers=auth(admin),
                         timeout=30)
    assert gone.json() == {"succeeded": True, "num_freed": 1}
    again = httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": sid}, headers=auth(admin), timeout=30)
    assert again.status_code == 404


def test_a_scoped_readers_scroll_keeps_the_scope(env: tuple[Any, str, str]) -> None:
    _, url, _ = env
    gina = auth(token_of("gina"))  # flows of east, namespace shop only
    r = httpx.post(f"{url}/es/tigera_secure_ee_flows.*/_search", params={"scroll": "1m"},
                   json={"size": 5, "query": {"match_all": {}}}, headers=gina, timeout=30)
    assert r.status_code == 200, r.text
    seen = [h["_source"] for h in r.json()["hits"]["hits"]]
    sid = r.json()["_scroll_id"]
    while page := httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": sid, "scroll": "1m"}, headers=gina,
                             timeout=30).json()["hits"]["hits"]:
        seen += [h["_source"] for h in page]
    # what she may read, all of it, nothing more: east's flows touching shop (source or destination)
    assert len(seen) == len([i for i in range(N) if i % 3 == 0]) and seen
    assert all(s["cluster"] == "east" for s in seen)
    # searches that would read fields outside her scope are refused, in a scroll as anywhere
    for body in ({"query": {"multi_match": {"query": "other"}}}, {"query": {"query_string": {"query": "other"}}},
                 {"highlight": {"fields": {"*": {}}}}, {"docvalue_fields": ["dest_namespace"]}):
        r = httpx.post(f"{url}/es/tigera_secure_ee_flows.*/_search", params={"scroll": "1m"}, json=body,
                       headers=gina, timeout=30)
        assert r.status_code == 403, (body, r.text)
    caps = httpx.get(f"{url}/es/tigera_secure_ee_flows.*/_field_caps", params={"fields": "*_namespace"},
                     headers=gina, timeout=30)  # names and types only: no values
    assert caps.status_code == 200 and caps.json()["fields"]["dest_namespace"]["keyword"]["aggregatable"] is True
    assert all(".east." in i for i in caps.json()["indices"])


def test_contexts_are_bounded_and_expire_on_the_clock(env: tuple[Any, str, str]) -> None:
    app, url, admin = env
    clock: FakeClock = app.state.margay.clock
    app.state.es_contexts = Contexts(limit=3)
    try:
        opened = []
        for _ in range(3):
            r = httpx.post(f"{url}/es/tigera_secure_ee_flows.east.*/_search", params={"scroll": "30s"},
                           json={"size": 1}, headers=auth(admin), timeout=30)
            assert r.status_code == 200, r.text
            opened.append(r.json()["_scroll_id"])
        full = httpx.post(f"{url}/es/tigera_secure_ee_flows.east.*/_search", params={"scroll": "30s"},
                          json={"size": 1}, headers=auth(admin), timeout=30)
        assert full.status_code == 429 and "too many scroll contexts" in full.text
        clock.advance(timedelta(seconds=20))
        kept = httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": opened[0], "scroll": "30s"},
                          headers=auth(admin), timeout=30)
        assert kept.status_code == 200  # used: renewed for another 30 s
        clock.advance(timedelta(seconds=15))  # 35 s after opening: the two unused ones expired
        for sid, status in zip(opened, (200, 404, 404), strict=True):
            r = httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": sid}, headers=auth(admin), timeout=30)
            assert r.status_code == status, (sid, r.text)
        assert len(app.state.es_contexts) == 1
        too_long = httpx.post(f"{url}/es/tigera_secure_ee_flows.east.*/_search", params={"scroll": "2d"},
                              json={}, headers=auth(admin), timeout=30)
        assert too_long.status_code == 400 and "too large" in too_long.text
        big = {"query": {"terms": {"action": [f"value-{i:06d}" for i in range(30_000)]}}}  # ~420 KiB, kept
        kept_too_much = httpx.post(f"{url}/es/tigera_secure_ee_flows.east.*/_search", params={"scroll": "1m"},
                                   json=big, headers=auth(admin), timeout=30)
        assert kept_too_much.status_code == 400 and "256 KiB" in kept_too_much.text
    finally:
        app.state.es_contexts = Contexts()


def test_point_in_time_both_shapes(env: tuple[Any, str, str]) -> None:
    _, url, admin = env
    # OpenSearch's shape
    r = httpx.post(f"{url}/es/tigera_secure_ee_flows.east.*/_search/point_in_time", params={"keep_alive": "1m"},
                   headers=auth(admin), timeout=30)
    assert r.status_code == 200 and {"pit_id", "_shards", "creation_time"} <= set(r.json()), r.text
    pit = r.json()["pit_id"]
    seen: list[int] = []
    after = None
    while True:
        body: dict[str, Any] = {"size": 8, "pit": {"id": pit, "keep_alive": "1m"}, "sort": [{"bytes_in": "desc"}]}
        if after:
            body["search_after"] = after
        page = httpx.post(f"{url}/es/_search", json=body, headers=auth(admin), timeout=30)
        assert page.status_code == 200, page.text
        hits = page.json()["hits"]["hits"]
        if not hits:
            break
        assert page.json()["pit_id"] == pit
        seen += [h["_source"]["bytes_in"] for h in hits]
        after = hits[-1]["sort"]
    assert seen == sorted(range(N), reverse=True)
    indexed = httpx.post(f"{url}/es/tigera_secure_ee_flows.*/_search", json={"pit": {"id": pit}},
                         headers=auth(admin), timeout=30)
    assert indexed.status_code == 400 and "point in time" in indexed.text
    closed = httpx.request("DELETE", f"{url}/es/_search/point_in_time", json={"pit_id": [pit]}, headers=auth(admin),
                           timeout=30)
    assert closed.json() == {"pits": [{"pit_id": pit, "successful": True}]}
    # Elasticsearch's shape, through elasticsearch-py 8
    es8 = elasticsearch8.Elasticsearch(url + "/es", headers=auth(admin), request_timeout=30)
    try:
        pid = es8.open_point_in_time(index="tigera_secure_ee_flows.west.*", keep_alive="1m")["id"]
        res = es8.search(pit={"id": pid, "keep_alive": "1m"}, size=100, sort=[{"bytes_in": "asc"}])
        assert [h["_source"]["bytes_in"] for h in res["hits"]["hits"]] == list(range(10)) + list(range(100, 105))
        assert es8.close_point_in_time(id=pid)["succeeded"] is True
        with pytest.raises(elasticsearch8.NotFoundError):
            es8.search(pit={"id": pid}, size=1)
    finally:
        es8.close()


def test_a_context_ends_with_the_grant_it_was_opened_under(tmp_path: Path, engine: dict[str, Any]) -> None:
    """A scroll and a point in time hold the read plans of their opening; every use asks the grant again, so a
    reader whose binding is deleted (or narrowed to a namespace) can neither page on nor search in them, however
    often they renewed the keep-alive (they once read on for as long as they did)."""
    import time

    write_tokens(tmp_path / "tokens.yaml", TOKENS)
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(RBAC))
    app = create_app(Settings(data_dir=tmp_path / "data", tokens=tmp_path / "tokens.yaml", rbac=tmp_path / "rbac.yaml",
                              admin_token=True, **engine), clock=FakeClock(datetime(2023, 11, 15, tzinfo=UTC)))
    alice = auth(token_of("alice"))  # flows of east
    with ServerThread(app) as server:
        url = server.url
        ingest(url, app.state.margay.access.admin_token, "east", range(20))
        sid = httpx.post(f"{url}/es/tigera_secure_ee_flows.*/_search", params={"scroll": "10m"}, json={"size": 5},
                         headers=alice, timeout=30).json()["_scroll_id"]
        pit = httpx.post(f"{url}/es/tigera_secure_ee_flows.*/_pit", params={"keep_alive": "10m"}, headers=alice,
                         timeout=30).json()["id"]

        def page() -> httpx.Response:
            return httpx.post(f"{url}/es/_search/scroll", json={"scroll_id": sid, "scroll": "10m"}, headers=alice,
                              timeout=30)

        def in_pit() -> httpx.Response:
            return httpx.post(f"{url}/es/_search", json={"size": 0, "pit": {"id": pit, "keep_alive": "10m"},
                                                         "aggs": {"n": {"terms": {"field": "source_name"}}}},
                              headers=alice, timeout=30)

        assert page().status_code == 200 and in_pit().status_code == 200
        kept = [d for d in RBAC if "alice" not in yaml.safe_dump(d.get("subjects", []))]
        assert len(kept) < len(RBAC)
        (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(kept))  # alice's bindings deleted
        deadline = time.monotonic() + 15
        while httpx.post(f"{url}/api/v1/flows/logs", json={}, headers={**alice, "x-cluster-id": "east"},
                         timeout=30).status_code != 403:  # the policy reloads within a second or so
            assert time.monotonic() < deadline, "the RBAC file was not reloaded"
            time.sleep(0.3)
        for use in (page, in_pit):
            r = use()
            assert r.status_code == 403 and "access changed" in r.text and "hits" not in r.json(), r.text
            assert use().status_code == 404  # closed: gone, as an expired one
