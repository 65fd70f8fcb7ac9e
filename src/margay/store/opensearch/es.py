"""The Elasticsearch-compatible API on OpenSearch: a pass-through narrowed to each plan's indices, clusters and restriction."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson

from ...errors import BackendError
from ...query.es.request import scope_plans
from ..backend import EsAnswer, EsPlan
from .client import Client
from .es_scope import check_limited, drop_unreadable_zeros, scope_globals, unscope_globals, zero_buckets

log = logging.getLogger(__name__)


class EsPassthrough(Client):
    """Backend.es_search / es_count by pass-through."""

    def _es_narrowed(self, plans: list[EsPlan], body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The indices a request may touch, and its body with the query limited to each plan's clusters,
        days and restriction (a plan's part of the indices is told by `_index`)."""
        names: list[str] = []
        scopes: list[dict[str, Any]] = []
        for pl in plans:
            mine = [self.index(pl.lt, c, d) for c, days in sorted(pl.days.items())
                    for d in (sorted(days) if days else ["*"])]
            names += mine
            part: list[dict[str, Any]] = [
                {"bool": {"should": [{"wildcard": {"_index": {"value": n}}} for n in mine], "minimum_should_match": 1}},
                {"terms": {"cluster": pl.clusters}}]
            restricted = pl.restriction.selector(pl.lt, pl.clusters)
            if restricted is not None:
                from ...query.sql import compile_to_es

                part.append(compile_to_es(restricted, pl.lt))
            scopes.append({"bool": {"filter": part}})
        if not names:  # nothing readable and nothing named: an empty answer in OpenSearch's own shape
            names = [f"{self.prefix}margay-none-*"]
        narrowed = dict(body)
        query = body.get("query")
        narrowed["query"] = {"bool": {"must": [query] if query else [],
                                      "filter": [{"bool": {"should": scopes, "minimum_should_match": 1}}]
                                      if scopes else []}}
        hl = body.get("highlight")
        if isinstance(hl, dict) and "highlight_query" not in hl:
            # highlight what the caller asked for, not the narrowing (it would mark `cluster` in every hit)
            narrowed["highlight"] = {**hl, "highlight_query": query or {"match_all": {}}}
        return ",".join(names), narrowed

    def _es_call(self, plans: list[EsPlan], body: dict[str, Any], api: str, params: dict[str, Any],
                 now: datetime) -> EsAnswer:
        plans = scope_plans(plans, body)  # the restriction narrowed by what this body names
        check_limited(plans, body, now, count=api == "_count")  # es_scope.py: what would look past the narrowing
        indices, narrowed = self._es_narrowed(plans, body)
        scopes = narrowed["query"]["bool"]["filter"]
        narrowing = scopes[0] if scopes else {"match_none": {}}
        narrowed, globals_ = scope_globals(narrowed, narrowing)
        params = {"ignore_unavailable": "true", "allow_no_indices": "true", **params}
        status, _, content = self.es_request("POST", f"/{indices}/{api}", params, orjson.dumps(narrowed))
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise BackendError(f"OpenSearch answered {status} with a body that is not JSON") from None
        if status < 300:
            unscope_globals(answer, globals_)
            zeros: list[tuple[str, list[Any]]] = []
            zero_buckets(body.get("aggs", body.get("aggregations")), answer.get("aggregations"), zeros)
            if zeros:
                drop_unreadable_zeros(zeros, lambda aggs: self._es_universe(indices, narrowing, aggs))
            self._es_withhold(plans, answer)
        return EsAnswer(status, answer)

    def _es_universe(self, indices: str, narrowing: dict[str, Any], aggs: dict[str, Any]) -> Any:
        """Aggregations over every readable document of the indices (the narrowing without the request's query)."""
        status, _, content = self.es_request("POST", f"/{indices}/_search", {
            "ignore_unavailable": "true", "allow_no_indices": "true"}, orjson.dumps(
                {"size": 0, "track_total_hits": False, "query": narrowing, "aggs": aggs}))
        if status >= 300:
            raise BackendError(f"OpenSearch answered {status} to the readable values' search")
        return orjson.loads(content).get("aggregations")

    def _es_withhold(self, plans: list[EsPlan], node: Any) -> None:
        """Unprefix `_index` and withhold out-of-scope fields in every hit, top_hits included."""
        if isinstance(node, list):
            for x in node:
                self._es_withhold(plans, x)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("_index"), str) and ("_source" in node or "_id" in node):
            parsed = self._parse_index(node["_index"])
            node["_index"] = node["_index"].removeprefix(self.prefix)
            src = node.get("_source")
            if parsed is not None and isinstance(src, dict):
                for pl in plans:
                    if pl.lt.name == parsed[0].name and pl.restriction:
                        named = "cluster" in src
                        src.setdefault("cluster", parsed[1])  # a _source filter may have left it out
                        pl.restriction.withhold(pl.lt, [src])
                        if not named:
                            src.pop("cluster", None)
            return
        for v in node.values():
            self._es_withhold(plans, v)

    def es_search(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime,
                  total_as_int: bool = False) -> EsAnswer:
        return self._es_call(plans, body, "_search", {"rest_total_hits_as_int": "true"} if total_as_int else {}, now)

    def es_count(self, plans: list[EsPlan], body: dict[str, Any], *, now: datetime) -> EsAnswer:
        return self._es_call(plans, body, "_count", {}, now)
