"""Real Elasticsearch clients against /es/ on a real margay server: opensearch-py and elasticsearch-py 7.x."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers
from opensearchpy.exceptions import RequestError as OSRequestError

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data: Path = tmp_path_factory.mktemp("es-clients")
    with ServerThread(create_app(Settings(data_dir=data))) as s:
        yield s


@pytest.fixture(scope="module")
def osc(server: ServerThread) -> Iterator[OpenSearch]:
    c = OpenSearch(hosts=[server.url + "/es"], timeout=30)
    try:
        yield c
    finally:
        c.close()


def _flows(n: int, cluster_day: str) -> list[dict]:
    base = orjson.loads(SAMPLES["flows"][0])
    t0 = 1_700_000_000  # 2023-11-14T22:13:20Z
    return [{"_index": f"tigera_secure_ee_flows.{cluster_day}", "_id": f"f{i}",
             "_source": dict(base, start_time=t0 + i, end_time=t0 + i + 300, bytes_in=i,
                             action="deny" if i % 4 == 0 else "allow")} for i in range(n)]


def test_opensearch_py_bulk_search_count(osc: OpenSearch) -> None:
    ok, errors = os_helpers.bulk(osc, _flows(200, "east.20231114"), stats_only=False)
    assert ok == 200 and not errors
    info = osc.info()
    assert info["version"]["number"].startswith("7.")
    res = osc.search(index="tigera_secure_ee_flows.*", body={
        "size": 3, "sort": [{"end_time": "desc"}], "query": {"term": {"action": "deny"}},
        "aggs": {"a": {"terms": {"field": "action"}}, "s": {"sum": {"field": "bytes_in"}}}})
    assert res["hits"]["total"] == {"value": 50, "relation": "eq"}
    assert [h["_source"]["bytes_in"] for h in res["hits"]["hits"]] == [196, 192, 188]
    assert res["hits"]["hits"][0]["_index"] == "tigera_secure_ee_flows.east.20231114"
    assert res["aggregations"]["a"]["buckets"] == [{"key": "deny", "doc_count": 50}]
    assert res["aggregations"]["s"]["value"] == sum(range(0, 200, 4))
    assert osc.count(index="tigera_secure_ee_flows.east.*")["count"] == 200
    cat = osc.cat.indices(index="tigera_secure_ee_flows.*", format="json")
    assert [r["index"] for r in cat] == ["tigera_secure_ee_flows.east.20231114"]
    mapping = osc.indices.get_mapping(index="tigera_secure_ee_flows.*")
    assert mapping["tigera_secure_ee_flows.east.20231114"]["mappings"]["properties"]["action"]["type"] == "keyword"
    ms = osc.msearch(body=[{"index": "tigera_secure_ee_flows.*"}, {"size": 0, "query": {"match_all": {}}},
                           {"index": "tigera_secure_ee_nothing*"}, {"size": 0}])
    assert [r["hits"]["total"]["value"] for r in ms["responses"]] == [200, 0]


def test_opensearch_py_errors_and_scan(osc: OpenSearch) -> None:
    with pytest.raises(OSRequestError) as err:
        osc.search(index="tigera_secure_ee_flows.*", body={"query": {"fuzzy": {"action": "dny"}}})
    assert err.value.status_code == 400 and "fuzzy" in str(err.value.info)
    # helpers.scan pages with a scroll (tests/es/test_scroll.py covers scroll and point in time in depth)
    scanned = list(os_helpers.scan(osc, index="tigera_secure_ee_flows.east.*", size=33,
                                   query={"query": {"term": {"action": "deny"}}}))
    assert len(scanned) == 50 and len({h["_id"] for h in scanned}) == 50


def test_search_after_paging_with_opensearch_py(osc: OpenSearch) -> None:
    os_helpers.bulk(osc, _flows(30, "west.20231114"))
    seen: list[str] = []
    after = None
    while True:
        body = {"size": 7, "sort": [{"end_time": "asc"}, {"id": "asc"}], "query": {"match_all": {}}}
        if after:
            body["search_after"] = after
        page = osc.search(index="tigera_secure_ee_flows.west.*", body=body)["hits"]["hits"]
        if not page:
            break
        seen += [h["_id"] for h in page]
        after = page[-1]["sort"]
    assert len(seen) == 30 and len(set(seen)) == 30


def test_elasticsearch_py_7(server: ServerThread, osc: OpenSearch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from elasticsearch7 import Elasticsearch
        from elasticsearch7 import helpers as es_helpers
        from elasticsearch7.exceptions import RequestError as ESRequestError

        es = Elasticsearch([server.url + "/es"], timeout=30)
        try:
            ok, _ = es_helpers.bulk(es, _flows(40, "north.20231114"))
            assert ok == 40
            res = es.search(index="tigera_secure_ee_flows.north.*", body={
                "size": 2, "sort": [{"bytes_in": "desc"}],
                "aggs": {"h": {"date_histogram": {"field": "end_time", "fixed_interval": "10s"}}}})
            assert res["hits"]["total"]["value"] == 40
            assert [h["_source"]["bytes_in"] for h in res["hits"]["hits"]] == [39, 38]
            assert sum(b["doc_count"] for b in res["aggregations"]["h"]["buckets"]) == 40
            assert es.count(index="tigera_secure_ee_flows.north.*", body={
                "query": {"query_string": {"query": "action:deny"}}})["count"] == 10
            with pytest.raises(ESRequestError):
                es.search(index="tigera_secure_ee_flows.*", body={"aggs": {"p": {"significant_terms": {"field": "x"}}}})
        finally:
            es.close()
