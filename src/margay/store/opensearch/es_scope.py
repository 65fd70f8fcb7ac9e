"""What the `/es/` pass-through must not carry to OpenSearch as it came: the parts of a search that look past its
query, and so past the narrowing to the caller's clusters, days and namespaces (es.py).

- A `global` aggregation counts every document of the indices searched, whatever the query: its
  sub-aggregations run under a `filter` on the narrowing, answered in global's own shape ("every document"
  is every readable one).
- `terms` with `min_doc_count: 0` lists every value of the indices' term dictionaries, withheld ones and those
  of documents no reader may see included: its empty buckets are kept only for values some readable document
  holds (one more search, on the narrowing alone), as the embedded engine computes them.
- A reader limited to some namespaces (or some compliance reports) gets only what the embedded engine answers
  (query types, aggregation types, search features): regexp, fuzzy, simple_query_string, post_filter,
  significant_terms or scripted_metric would each be an oracle on the values withheld from them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...errors import QueryError
from ...query.aggs import ES, split
from ...query.es.dsl import QueryCompiler
from ...query.es.fields import Fields
from ...query.es.request import check_search
from ..backend import EsPlan


def limited(plan: EsPlan) -> bool:
    """The plan reads only part of its clusters' records (namespaces, or some compliance reports)."""
    return bool(plan.restriction) or plan.restriction.rows is not None


# Term-level queries whose object names a field's value, never a document to look up (`{"term": {"index": ..}}`
# is a query on a field called `index`).
_FIELD_VALUE = frozenset({"term", "terms", "match", "match_phrase", "match_phrase_prefix", "prefix", "wildcard",
                          "regexp", "fuzzy", "range", "exists"})


def check_lookups(node: Any, parent: str = "") -> None:
    """A QueryError for a query part that reads another document by index and id (a `terms` lookup, a
    `more_like_this` like/unlike document, an indexed shape, a percolated document): the pass-through sends
    the body as it came, and OpenSearch would read any index of the node for it, other clusters' included."""
    if isinstance(node, list):
        for x in node:
            check_lookups(x, parent)
        return
    if not isinstance(node, dict):
        return
    if parent in ("aggs", "aggregations"):  # keyed by the caller's own aggregation names
        for v in node.values():
            check_lookups(v)
        return
    if ("index" in node and parent not in _FIELD_VALUE) or ("_index" in node and parent in ("like", "unlike")) \
            or "indexed_shape" in node:
        raise QueryError(f"[{parent or 'query'}]: looking up a document of an index (index, _index, "
                         "indexed_shape) is not supported: give the values themselves")
    for k, v in node.items():
        check_lookups(v, k)


def check_limited(plans: list[EsPlan], body: dict[str, Any], now: datetime, *, count: bool = False) -> None:
    """A QueryError (400, the embedded engine's own words) for what a limited reader may not send, and for what
    no reader may (a lookup of another index's document, check_lookups)."""
    for part in ("query", "post_filter", "aggs", "aggregations", "rescore"):
        check_lookups(body.get(part), part)
    if not count:
        check_search(body)
    for pl in plans:
        if limited(pl):
            compiler = QueryCompiler(Fields(pl.lt), now)
            compiler.compile(body.get("query"))
            _check_aggs(body.get("aggs", body.get("aggregations")) or {}, compiler)


def _check_aggs(aggs: Any, compiler: QueryCompiler) -> None:
    if not isinstance(aggs, dict):
        return
    for name, spec in aggs.items():
        kind, params, subs = split(spec, name, ES)
        if kind == "filter":
            compiler.compile(params)
        elif kind == "filters" and isinstance(params, dict):
            named = params.get("filters")
            for q in named.values() if isinstance(named, dict) else named if isinstance(named, list) else []:
                compiler.compile(q)
        _check_aggs(subs, compiler)


_SCOPE = "margay_scope"


def scope_globals(body: dict[str, Any], narrowing: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body with each top-level `global` aggregation's sub-aggregations under a `filter` on the narrowing
    (a `filter` in its place would see only the query's documents), and the names of those aggregations."""
    key = "aggs" if "aggs" in body else "aggregations"
    aggs = body.get(key)
    names = [n for n, s in aggs.items() if isinstance(s, dict) and "global" in s] if isinstance(aggs, dict) else []
    if not names:
        return body, []
    assert isinstance(aggs, dict)
    scoped = dict(aggs)
    for n in names:
        spec = aggs[n]
        subs = spec.get("aggs") or spec.get("aggregations") or {}
        scoped[n] = {**{k: v for k, v in spec.items() if k not in ("aggs", "aggregations")},
                     "aggs": {_SCOPE: {"filter": narrowing, "aggs": subs}}}
    return {**body, key: scoped}, names


def unscope_globals(answer: Any, names: list[str]) -> None:
    """Each scoped `global` answered as OpenSearch would have over the readable documents alone."""
    aggs = answer.get("aggregations") if isinstance(answer, dict) else None
    for n in names:
        got = aggs.get(n) if isinstance(aggs, dict) else None
        if isinstance(got, dict) and isinstance(got.get(_SCOPE), dict):
            inner = got.pop(_SCOPE)
            got.update(inner)


def zero_buckets(aggs: Any, answer: Any, out: list[tuple[str, list[Any]]]) -> None:
    """(field, bucket list) of every `terms` aggregation with min_doc_count 0 that answered an empty bucket."""
    if not isinstance(aggs, dict) or not isinstance(answer, dict):
        return
    for name, spec in aggs.items():
        got = answer.get(name)
        if not isinstance(spec, dict) or not isinstance(got, dict):
            continue
        subs = spec.get("aggs") or spec.get("aggregations") or {}
        terms = spec.get("terms")
        buckets = got.get("buckets")
        if (isinstance(terms, dict) and terms.get("min_doc_count") == 0 and isinstance(terms.get("field"), str)
                and isinstance(buckets, list) and any(b.get("doc_count") == 0 for b in buckets)):
            out.append((terms["field"], buckets))
        for b in buckets if isinstance(buckets, list) else (buckets or {}).values() if isinstance(buckets, dict) else []:
            zero_buckets(subs, b, out)
        if "buckets" not in got:  # a single-bucket aggregation (filter, global made filter): its subs are here
            zero_buckets(subs, got, out)


def drop_unreadable_zeros(found: list[tuple[str, list[Any]]], search: Callable[[dict[str, Any]], Any]) -> None:
    """Remove the empty buckets whose value no readable document holds; `search(aggs)` runs aggregations on
    the narrowing alone. Should that search fail, every empty bucket goes (nothing withheld may show)."""
    aggs = {}
    for i, (fld, buckets) in enumerate(found):
        keys = [str(b["key"]) for b in buckets if b.get("doc_count") == 0]
        aggs[f"z{i}"] = {"terms": {"field": fld, "include": keys, "size": len(keys)}}
    try:
        answer = search(aggs) or {}
    except Exception:  # noqa: BLE001 - a refusal of the check must not let the values through
        answer = {}
    for i, (_, buckets) in enumerate(found):
        seen = {str(b["key"]) for b in answer.get(f"z{i}", {}).get("buckets", [])}
        buckets[:] = [b for b in buckets if b.get("doc_count") != 0 or str(b["key"]) in seen]
