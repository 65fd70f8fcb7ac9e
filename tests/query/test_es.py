"""Selectors as the Elasticsearch query DSL Calico's translation builds."""

from __future__ import annotations

from typing import Any

import pytest

from margay.errors import QueryError
from margay.logtypes import REGISTRY
from margay.query.selector import parse_selector
from margay.query.sql import compile_to_es


def es(logtype: str, text: str) -> dict[str, Any]:
    return compile_to_es(parse_selector(text), REGISTRY[logtype], text=text)


FMT = "strict_date_optional_time||epoch_second"


@pytest.mark.parametrize(("logtype", "text", "query"), [
    ("flows", "", {"match_all": {}}),
    ("flows", "action = allow", {"term": {"action": "allow"}}),
    ("flows", "action != allow", {"bool": {"must_not": [{"term": {"action": "allow"}}]}}),
    ("flows", "dest_port >= 443", {"range": {"dest_port": {"gte": 443}}}),
    ("flows", 'dest_port < "1024"', {"range": {"dest_port": {"lt": 1024}}}),
    ("flows", "NOT action = deny", {"bool": {"must_not": [{"term": {"action": "deny"}}]}}),
    ("flows", "action = allow AND dest_port = 80 OR reporter = dst", {"bool": {"should": [
        {"bool": {"filter": [{"term": {"action": "allow"}}, {"term": {"dest_port": 80}}]}},
        {"term": {"reporter": "dst"}}], "minimum_should_match": 1}}),
    ("flows", "source_namespace IN {shop, payments}", {"terms": {"source_namespace": ["shop", "payments"]}}),
    ("flows", "source_namespace NOTIN {shop}", {"bool": {"must_not": [{"terms": {"source_namespace": ["shop"]}}]}}),
    ("flows", 'dest_domains IN {"*.example.com", api.stripe.com}', {"bool": {"should": [
        {"terms": {"dest_domains": ["api.stripe.com"]}},
        {"wildcard": {"dest_domains": {"value": "*.example.com"}}}], "minimum_should_match": 1}}),
    ("flows", "source_name_aggr IN {web-*}", {"wildcard": {"source_name_aggr": {"value": "web-*"}}}),
    ("flows", 'source_labels.labels = "app=web"', {"term": {"source_labels.labels": "app=web"}}),
    ("flows", "source_ip = 10.0.0.0/8", {"term": {"source_ip": "10.0.0.0/8"}}),
    ("flows", "dest_ip IN {10.1.2.3, 2001:db8::/32}", {"terms": {"dest_ip": ["10.1.2.3", "2001:db8::/32"]}}),
    ("flows", "destination.port = 53", {"term": {"dest_port": 53}}),
    ("flows", "end_time > now-15m", {"range": {"end_time": {"gt": "now-15m", "format": FMT}}}),
    ("flows", "end_time >= 2023-11-14T22:13:20Z", {"range": {"end_time": {"gte": 1700000000, "format": FMT}}}),
    ("flows", "end_time = 1700000000", {"range": {"end_time": {"gte": 1700000000, "lte": 1700000000,
                                                               "format": FMT}}}),
    ("dns", "end_time < 1700000000", {"range": {"end_time": {"lt": "2023-11-14T22:13:20Z", "format": FMT}}}),
    ("dns", "client_labels.app = web", {"term": {"client_labels.app": "web"}}),
    ("dns", "qname = API.Example.com", {"term": {"qname": "api.example.com"}}),
    ("dns", "rrsets.rdata IN {93.184.*}", {"nested": {"path": "rrsets", "query": {
        "wildcard": {"rrsets.rdata": {"value": "93.184.*"}}}}}),
    ("dns", "servers.ip != 8.8.8.8", {"bool": {"must_not": [{"nested": {"path": "servers", "query": {
        "term": {"servers.ip": "8.8.8.8"}}}}]}}),
    ("audit_ee", "responseObject.kind = Pod AND user.groups = netsec", {"bool": {"filter": [
        {"term": {"responseObject.kind": "Pod"}}, {"term": {"user.groups": "netsec"}}]}}),
    ("events", "dismissed = false", {"term": {"dismissed": False}}),
    ("events", "time IN {}", {"terms": {"time": []}}),
    ("events", "time IN {now-1h, 1700000000}", {"bool": {"should": [
        {"range": {"time": {"gte": "now-1h", "lte": "now-1h", "format": FMT}}},
        {"range": {"time": {"gte": "2023-11-14T22:13:20Z", "lte": "2023-11-14T22:13:20Z", "format": FMT}}}],
        "minimum_should_match": 1}}),
])
def test_translation(logtype: str, text: str, query: dict[str, Any]) -> None:
    assert es(logtype, text) == query


def test_es_validates_keys_like_sql() -> None:
    with pytest.raises(QueryError) as err:
        es("flows", "action = allow OR dest_prot = 1")
    assert err.value.details["position"] == 18
    assert "did you mean dest_port" in err.value.message
