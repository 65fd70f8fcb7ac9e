"""elasticsearch-py 8 and 9 (which refuse a server without `X-Elastic-Product: Elasticsearch`) and
elasticsearch-py 7 against /es/ on a real margay server, on both engines: product check, index existence,
bulk, search, count and msearch."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import elasticsearch
import elasticsearch.helpers
import elasticsearch7
import elasticsearch7.helpers
import elasticsearch8
import elasticsearch8.helpers
import orjson
import pytest

from margay.app import create_app
from margay.config import Settings
from margay.logtypes import SAMPLES
from margay.testing.server import ServerThread

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_engine: dict[str, Any]) -> Iterator[ServerThread]:
    data: Path = tmp_path_factory.mktemp("es-modern")
    with ServerThread(create_app(Settings(data_dir=data, **module_engine))) as s:
        yield s


def _flows(n: int, index: str) -> list[dict[str, Any]]:
    base = orjson.loads(SAMPLES["flows"][0])
    return [{"_index": index, "_id": f"f{i}",
             "_source": dict(base, start_time=T0 + i, end_time=T0 + i + 300, bytes_in=i,
                             action="deny" if i % 4 == 0 else "allow")} for i in range(n)]


CLIENTS = {"elasticsearch-py 9": elasticsearch, "elasticsearch-py 8": elasticsearch8}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_modern_clients(server: ServerThread, name: str) -> None:
    mod = CLIENTS[name]
    assert mod.__versionstr__.split(".")[0] == name[-1]
    cluster = "c" + name[-1]
    es = mod.Elasticsearch(server.url + "/es", request_timeout=30)
    try:
        info = es.info()  # the product check happens on the first answer: it would raise UnsupportedProductError
        assert info["version"]["number"] == "7.10.2"
        assert es.indices.exists(index=f"tigera_secure_ee_flows.{cluster}.20231114").body is False
        ok, errors = mod.helpers.bulk(es, _flows(60, f"tigera_secure_ee_flows.{cluster}.20231114"), stats_only=False)
        assert ok == 60 and not errors
        assert es.indices.exists(index=f"tigera_secure_ee_flows.{cluster}.20231114").body is True
        res = es.search(index=f"tigera_secure_ee_flows.{cluster}.*", query={"term": {"action": "deny"}}, size=3,
                        sort=[{"end_time": "desc"}], aggs={"s": {"sum": {"field": "bytes_in"}}})
        assert res["hits"]["total"] == {"value": 15, "relation": "eq"}
        assert [h["_source"]["bytes_in"] for h in res["hits"]["hits"]] == [56, 52, 48]
        assert res["aggregations"]["s"]["value"] == sum(range(0, 60, 4))
        assert es.count(index=f"tigera_secure_ee_flows.{cluster}.*", query={"range": {"bytes_in": {"gte": 50}}})[
            "count"] == 10
        ms = es.msearch(searches=[{"index": f"tigera_secure_ee_flows.{cluster}.*"}, {"size": 0},
                                  {"index": "tigera_secure_ee_nothing*"}, {"size": 0}])
        assert [r["hits"]["total"]["value"] for r in ms["responses"]] == [60, 0]
        with pytest.raises(mod.BadRequestError) as err:
            es.search(index="tigera_secure_ee_flows.*", query={"no_such_query": {"action": "x"}})
        assert "no_such_query" in str(err.value.body)
        with pytest.raises(mod.NotFoundError):
            es.search(index=f"tigera_secure_ee_flows.{cluster}.20231001")
    finally:
        es.close()


def test_elasticsearch_py_7_package(server: ServerThread) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = elasticsearch7.Elasticsearch([server.url + "/es"], timeout=30)
        try:
            ok, _ = elasticsearch7.helpers.bulk(es, _flows(20, "tigera_secure_ee_flows.c7.20231114"))
            assert ok == 20
            assert es.indices.exists(index="tigera_secure_ee_flows.c7.") is True
            res = es.search(index="tigera_secure_ee_flows.c7.*", body={"size": 1, "sort": [{"bytes_in": "desc"}]})
            assert res["hits"]["hits"][0]["_source"]["bytes_in"] == 19
            assert es.count(index="tigera_secure_ee_flows.c7.*")["count"] == 20
        finally:
            es.close()
