"""Reads on OpenSearch: the Query model as query DSL; aggregations, L3 flows, the graph's groups, hints and dismissals run in the cluster."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from ...errors import BackendError, QueryError
from ...logtypes import Kind, LogType
from ...query.graph import GRAPH_KEYS, GraphRows, GraphSpec, fold
from ...query.l3 import KEY, SUMS
from ...query.l3 import item as l3_item
from ...query.linseed_aggs import linseed_request
from ...query.model import Query, SortKey, parse_time
from ...query.restriction import agg_fields
from ..backend import Aggregated, FieldValue, GroupSpec, SearchResult
from ..mapping import DATE_FORMAT, ID_FIELD, SEQ_FIELD, exact_field, nested_path
from .client import _HIDDEN, MAX_GROUPS, MAX_RESULT_WINDOW, Client

log = logging.getLogger(__name__)


class Reads(Client):
    """The Backend's reads, compiled to query DSL."""

    def _indices(self, query: Query) -> str | None:
        names = sorted({self.index(t, c, "*") for t in query.logtypes for c in query.clusters})
        return ",".join(names) or None

    def _where(self, query: Query) -> dict[str, Any]:
        """The query's clusters, time range and selector as one bool filter."""
        lt: LogType = query.logtype
        keys = lt.query_keys()
        filters: list[dict[str, Any]] = [{"terms": {"cluster": list(query.clusters)}}]
        tkey = query.time_key
        if tkey not in keys:
            raise QueryError(f"time_range.field: {tkey!r} is not a time field of {lt.name}")
        tk = keys[tkey]
        bounds: dict[str, Any] = {}
        lower = "gt" if tkey == "generated_time" and not lt.range_from_only else "gte"
        for bound, op in ((query.start, lower), (query.end, "lte")):
            if bound is not None:
                bounds[op] = _time_value(bound, tk.kind)
        if bounds:
            bounds["format"] = "epoch_second" if tk.kind is Kind.EPOCH_S else DATE_FORMAT
            filters.append({"range": {tk.es_field: bounds}})
        if query.selector is not None:
            from ...query.sql import compile_to_es

            es = compile_to_es(query.selector, lt, text=query.selector_text)
            filters.append(_rewrite(es, lt, query.now or datetime.now(UTC)))
        restricted = query.restriction.selector(lt, query.clusters)
        if restricted is not None:
            from ...query.sql import compile_to_es

            filters.append(compile_to_es(restricted, lt))
        return {"bool": {"filter": filters}}

    def _search(self, query: Query, body: dict[str, Any], **params: Any) -> dict[str, Any] | None:
        indices = self._indices(query)
        if indices is None:
            return None
        params = {"ignore_unavailable": "true", "allow_no_indices": "true", **params}
        answer: dict[str, Any] = self.request("POST", f"/{indices}/_search", params=params, body=body)
        return answer

    # Every read narrows the reader's restriction by the fields it names (Query.naming), here in the engine.
    def search(self, query: Query) -> SearchResult:
        query = query.naming()
        lt: LogType = query.logtype
        sort = query.sort or [SortKey(lt.time_field, False)]
        keys = lt.query_keys()
        es_sort: list[dict[str, Any]] = []
        for s in sort:
            qk = keys.get(s.key)
            if qk is None:
                raise QueryError(f"sort: unknown field {s.key!r} for {lt.name}")
            if qk.kind.is_list or qk.kind in (Kind.MAP, Kind.JSON, Kind.STRUCT, Kind.STRUCT_LIST):
                raise QueryError(f"sort: cannot sort by {s.key!r}: it holds a list or an object")
            order = "desc" if s.descending else "asc"
            spec: dict[str, Any] = {"order": order, "missing": "_last"}
            path = nested_path(lt, qk.es_field)
            if path:
                spec["nested"] = {"path": path}
            es_sort.append({exact_field(lt, qk.es_field): spec})
        tie = "desc" if sort[0].descending else "asc"
        es_sort += [{SEQ_FIELD: {"order": tie}}, {ID_FIELD: {"order": tie}}]
        # One record past the page tells whether another follows, except at the result window's size itself.
        probe = min(query.size + 1, MAX_RESULT_WINDOW)
        body: dict[str, Any] = {"query": self._where(query), "sort": es_sort, "size": probe,
                                "track_total_hits": bool(query.total_hits), "_source": {"excludes": list(_HIDDEN)}}
        after = query.after_key or {}
        if "searchFrom" in after:
            values = after["searchFrom"]
            if not isinstance(values, list) or len(values) != len(es_sort):
                raise QueryError("after_key.searchFrom does not match this query's sort; start again without it")
            body["search_after"] = values
        elif "startFrom" in after:
            offset = after["startFrom"]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise QueryError("after_key.startFrom: expected a non-negative integer")
            if offset + probe > MAX_RESULT_WINDOW:
                raise QueryError(f"after_key.startFrom: offset paging stops at {MAX_RESULT_WINDOW} records; "
                                 "page on with the searchFrom after_key instead")
            body["from"] = offset
        result = self._search(query, body)
        if result is None:
            return SearchResult([], 0 if query.total_hits else None)
        hits = result["hits"]["hits"]
        total = result["hits"]["total"]["value"] if query.total_hits else None
        more = len(hits) > query.size or (probe == query.size == len(hits) and (total is None or total > len(hits)))
        hits = hits[: query.size]
        after_key = {"searchFrom": hits[-1]["sort"]} if more and hits else None
        items = query.restriction.withhold(lt, [h["_source"] for h in hits])
        return SearchResult(items, total, after_key)

    def aggregate(self, query: Query, aggs: dict[str, Any]) -> Aggregated:
        """Elasticsearch aggregations over the query's records, run in OpenSearch."""
        return Aggregated(self._aggregate(query.naming(agg_fields(aggs)), aggs), "native")

    def _aggregate(self, query: Query, aggs: dict[str, Any]) -> dict[str, Any]:
        lt: LogType = query.logtype
        wrapped = {name: _agg(lt, name, spec) for name, spec in linseed_request(lt, aggs).items()}
        if not wrapped:
            return {}
        result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                      "aggs": {n: es for n, (es, _) in wrapped.items()}})
        if result is None or "aggregations" not in result:  # no index of the type in these clusters
            result = self._search_empty(lt, {n: es for n, (es, _) in wrapped.items()})
        got = result.get("aggregations", {})
        return {n: unwrap(got[n]) for n, (_, unwrap) in wrapped.items()}

    def _search_empty(self, lt: LogType, aggs: dict[str, Any]) -> dict[str, Any]:
        """Aggregations over no records (no clusters): run on an empty match so the shapes stay OpenSearch's."""
        self.ensure_ready()
        pattern = f"{self.prefix}{lt.index_prefix}.*"
        answer: dict[str, Any] = self.request(
            "POST", f"/{pattern},{self.batches_index}/_search",
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            body={"query": {"bool": {"must_not": [{"match_all": {}}]}}, "size": 0, "aggs": aggs})
        return answer

    def _groups(self, query: Query, sources: list[dict[str, Any]], subs: dict[str, Any]) -> list[dict[str, Any]]:
        """Every bucket of a composite aggregation (paged through), bounded by MAX_GROUPS."""
        out: list[dict[str, Any]] = []
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": 1000, "sources": sources}
            if after is not None:
                comp["after"] = after
            result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                          "aggs": {"g": {"composite": comp, "aggs": subs}}})
            agg = ((result or {}).get("aggregations") or {}).get("g")
            if agg is None:  # no index matched (nothing stored yet): no aggregations in the answer
                return out
            out += agg["buckets"]
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return out
            if len(out) > MAX_GROUPS:
                raise QueryError(f"more than {MAX_GROUPS} groups; narrow the time range or the selector")

    def distinct(self, query: Query, fields: list[str]) -> list[tuple[Any, ...]]:
        from ..backend import check_distinct

        check_distinct(query, fields)
        query = query.naming(fields)
        sources = [{f: {"terms": {"field": f, "missing_bucket": True}}} for f in fields]
        rows = [tuple(b["key"][f] for f in fields) for b in self._groups(query, sources, {})]
        return sorted(rows, key=lambda t: tuple("" if v is None else str(v) for v in t))

    def l3_flows(self, query: Query, offset: int) -> list[dict[str, Any]]:
        """Flow logs grouped by endpoint pair (Linseed's /flows), largest traffic first, one page + 1."""
        query = query.naming()
        keys, sums = KEY, SUMS
        sources = [{k: {"terms": {"field": k, "missing_bucket": True}}} for k in keys]
        subs: dict[str, Any] = {c: {"sum": {"field": c}} for c in sums}
        subs |= {"enforced": {"terms": {"field": "policies.enforced_policies", "size": 1000}},
                 "pending": {"terms": {"field": "policies.pending_policies", "size": 1000}},
                 "domains": {"terms": {"field": "dest_domains", "size": 1000}},
                 "source_ips": {"terms": {"field": "source_ip", "size": 10}},
                 "dest_ips": {"terms": {"field": "dest_ip", "size": 10}}}
        rows = []
        for b in self._groups(query, sources, subs):
            row: dict[str, Any] = dict(b["key"])
            row |= {c: int(b[c]["value"] or 0) for c in sums}
            row["log_count"] = b["doc_count"]
            for name in ("enforced", "pending", "domains", "source_ips", "dest_ips"):
                row[name] = [x["key"] for x in b[name]["buckets"]]
            rows.append(row)
        rows.sort(key=lambda r: (-(r["bytes_in"] + r["bytes_out"]), *[(r[k] is None, r[k]) for k in keys]))
        return query.restriction.withhold_l3([l3_item(r) for r in rows[offset: offset + query.size + 1]])

    def flow_graph(self, query: Query, spec: GraphSpec) -> GraphRows:
        """Composite groups of GRAPH_KEYS (and the least domain of a net destination), folded in Python."""
        query = query.naming()
        sources: list[dict[str, Any]] = [{k: {"terms": {"field": k, "missing_bucket": True}}} for k in GRAPH_KEYS]
        sources.append({"dest_domain": {"terms": {"missing_bucket": True, "script": {"lang": "painless", "source": (
            "doc['dest_type'].size() > 0 && doc['dest_type'].value == 'net' && doc['dest_domains'].size() > 0 "
            "? doc['dest_domains'][0] : null")}}}})
        subs = {"nf": {"sum": {"field": "num_flows"}}, "bi": {"sum": {"field": "bytes_in"}},
                "bo": {"sum": {"field": "bytes_out"}}}
        groups = []
        for b in self._groups(query, sources, subs):
            g = dict(b["key"])
            g |= {"nf": int(b["nf"]["value"] or 0), "b": int((b["bi"]["value"] or 0) + (b["bo"]["value"] or 0)),
                  "n": b["doc_count"]}
            groups.append(g)
        edges, hidden = fold(groups, spec, query.restriction.scoped)
        return GraphRows(edges, hidden, "native")

    def count(self, query: Query) -> int:
        query = query.naming()
        indices = self._indices(query)
        if indices is None:
            return 0
        result = self.request("POST", f"/{indices}/_count", params={"ignore_unavailable": "true",
                                                                     "allow_no_indices": "true"},
                              body={"query": self._where(query)})
        return int(result["count"])

    def dismiss(self, query: Query, ids: list[str]) -> list[str]:
        """Set `dismissed: true` on the query's records with these ids (refreshed before returning)."""
        # partial updates by document id (no scripts: the reindex module is not needed)
        return self._by_ids(query, ids, ("dismiss", "dismissed"), "update", b'{"doc":{"dismissed":true}}\n')

    def delete(self, query: Query, ids: list[str]) -> list[str]:
        """Delete the query's records with these ids (refreshed before returning)."""
        return self._by_ids(query, ids, ("delete", "deleted"), "delete", b"")

    def _by_ids(self, query: Query, ids: list[str], verb: tuple[str, str], action: str, doc: bytes) -> list[str]:
        """The ids of `ids` the query finds, after one `_bulk` of `action` (+ `doc`) per record found."""
        if not query.logtype.dismissable or len(query.clusters) != 1:
            raise QueryError(f"{query.logtype.name} records cannot be {verb[1]} (one cluster of events at a time)")
        query = query.naming(["id"])  # the ids below name records as a selector on `id` would (a shared field)
        indices = self._indices(query)
        if indices is None or not ids:
            return []
        where = self._where(query)
        where["bool"]["filter"].append({"terms": {"id": list(ids)}})
        found = self.request("POST", f"/{indices}/_search", params={"ignore_unavailable": "true",
                                                                     "allow_no_indices": "true"},
                             body={"query": where, "size": MAX_RESULT_WINDOW, "_source": ["id"]})
        hits = found["hits"]["hits"]
        if hits:
            lines = b"".join(orjson.dumps({action: {"_index": h["_index"], "_id": h["_id"]}}) + b"\n" + doc
                             for h in hits)
            result = self.request("POST", "/_bulk", params={"refresh": "true"}, body=lines)
            failed = [i for i in result.get("items", []) if next(iter(i.values())).get("status", 500) >= 300]
            if failed:
                raise BackendError(f"OpenSearch did not {verb[0]} {len(failed)} events: "
                                   f"{next(iter(failed[0].values())).get('error')}; retry")
        present = {h["_source"].get("id") for h in hits}
        return [i for i in ids if i in present]

    def groups(self, query: Query, spec: GroupSpec, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        from . import groups

        query = query.naming(spec.fields)
        return groups.buckets(self._search(query, groups.body(query, spec, after, self._where(query))), spec)

    def field_values(self, query: Query, key: str, prefix: str, size: int) -> list[FieldValue]:
        """Filter hints: the commonest values of a key (starting with `prefix`, any case), count then value."""
        query = query.naming([key])
        lt: LogType = query.logtype
        qk = lt.query_keys()[key]
        stringy = qk.kind in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST, Kind.IP, Kind.IP_LIST)
        terms: dict[str, Any] = {"field": exact_field(lt, qk.es_field), "order": [{"_count": "desc"}, {"_key": "asc"}]}
        if prefix and qk.kind in (Kind.KEYWORD, Kind.TEXT, Kind.KEYWORD_LIST):
            terms["include"] = "".join(_ci(c) for c in prefix) + ".*"
            terms["size"] = size
        else:
            terms["size"] = MAX_GROUPS if prefix or not stringy else size
        es, unwrap = _agg(lt, "v", {"terms": terms})
        result = self._search(query, {"query": self._where(query), "size": 0, "track_total_hits": False,
                                      "aggs": {"v": es}})
        if result is None:
            return []
        out = []
        for b in unwrap(result["aggregations"]["v"])["buckets"]:
            value = _hint_value(b, qk.kind)
            if value.lower().startswith(prefix.lower()):
                out.append(FieldValue(value, b["doc_count"]))
        out.sort(key=lambda x: (-x.count, x.value))
        return out[:size]


_LEAVES = ("term", "terms", "wildcard", "prefix", "range", "exists", "match", "match_phrase")


def _rewrite(node: Any, lt: LogType, now: datetime) -> Any:
    """Selector DSL for this store: whole-value text fields, relative times from the request's clock."""
    if isinstance(node, list):
        return [_rewrite(x, lt, now) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _LEAVES and isinstance(v, dict) and k != "exists":
            out[k] = {exact_field(lt, f) if f not in ("boost", "_name") else f:
                      (_absolute(body, now) if k == "range" else body) for f, body in v.items()}
        else:
            out[k] = _rewrite(v, lt, now)
    return out


def _absolute(bounds: Any, now: datetime) -> Any:
    """`now-15m` evaluated at the request's clock reading, as the embedded store does."""
    if not isinstance(bounds, dict):
        return bounds
    out = dict(bounds)
    for op in ("gt", "gte", "lt", "lte"):
        v = out.get(op)
        if isinstance(v, str) and v.startswith("now"):
            out[op] = parse_time(v, now).astimezone(UTC).isoformat().replace("+00:00", "Z")
            out["format"] = DATE_FORMAT
    return out


def _time_value(bound: datetime, kind: Kind) -> Any:
    if kind is Kind.EPOCH_S:
        return int(bound.timestamp())
    return bound.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _agg(lt: LogType, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """An aggregation (checked: query/linseed_aggs.py) for OpenSearch, and a function that turns its answer back
    into the requested shape.

    Text fields use their keyword sub-field, date histograms print keys as RFC 3339, and fields inside lists
    of objects are wrapped in nested / reverse_nested so doc counts still count records.
    """
    kind = next(k for k in spec if k not in ("aggs", "aggregations", "meta"))
    params = spec[kind]
    subs = spec.get("aggs") or spec.get("aggregations") or {}
    params = dict(params) if isinstance(params, dict) else params
    path = None
    if isinstance(params, dict) and "field" in params:
        fname = params["field"]
        qk = lt.query_keys().get(fname)
        es_field = qk.es_field if qk is not None else fname
        params["field"] = exact_field(lt, es_field)
        path = nested_path(lt, es_field)
        if qk is not None and qk.kind.is_time and kind in ("date_histogram", "min", "max") and "format" not in params:
            params["format"] = "strict_date_optional_time"
    children = {n: _agg(lt, n, s) for n, s in subs.items()} if isinstance(subs, dict) else {}
    es: dict[str, Any] = {kind: params}
    if children and path is None:
        es["aggs"] = {n: c for n, (c, _) in children.items()}
    elif children:
        es["aggs"] = {"_records": {"reverse_nested": {}, "aggs": {n: c for n, (c, _) in children.items()}}}

    def fix_buckets(answer: dict[str, Any]) -> dict[str, Any]:
        for b in answer.get("buckets", []) if isinstance(answer.get("buckets"), list) else []:
            inner = b.pop("_records", None)
            if inner is not None:
                b["doc_count"] = inner["doc_count"]
                b.update({n: inner[n] for n in children})
            for n, (_, unwrap) in children.items():
                if n in b:
                    b[n] = unwrap(b[n])
        return answer

    if path is None:
        return es, fix_buckets
    if not children and kind == "terms":  # count records, not list elements
        es["aggs"] = {"_records": {"reverse_nested": {}}}
    return {"nested": {"path": path}, "aggs": {"_in": es}}, lambda answer: fix_buckets(answer["_in"])


def _hint_value(bucket: dict[str, Any], kind: Kind) -> str:
    key = bucket["key"]
    if kind is Kind.BOOL:
        return str(bucket.get("key_as_string", str(bool(key)).lower()))
    if kind is Kind.EPOCH_S:
        return str(int(key) // 1000)
    return str(key)


def _ci(c: str) -> str:
    """One character of a case-insensitive Lucene regular expression."""
    if c.isalpha() and c.lower() != c.upper():
        return f"[{c.lower()}{c.upper()}]"
    return "\\" + c if c in '.?+*|{}[]()"\\#@&<>~' else c
