"""Composite groupings on OpenSearch (Backend.groups): a composite aggregation with metric sub-aggregations."""

from __future__ import annotations

from typing import Any

from ...errors import QueryError
from ...logtypes import LogType
from ...query.model import Query
from ..backend import GroupSpec, group_field
from ..mapping import exact_field


def _field(lt: LogType, field: str, *, numeric: bool = False) -> str:
    qk = group_field(lt, field, numeric=numeric)
    return exact_field(lt, qk.es_field)


def body(query: Query, spec: GroupSpec, after: dict[str, Any] | None, where: dict[str, Any]) -> dict[str, Any]:
    lt: LogType = query.logtype
    if not spec.keys:
        raise QueryError("a grouping needs at least one key")
    sources = []
    for k in spec.keys:
        terms: dict[str, Any] = {"field": _field(lt, k.field), "order": "desc" if k.descending else "asc"}
        if k.missing:
            terms["missing_bucket"] = True
        sources.append({k.name: {"terms": terms}})
    subs: dict[str, Any] = {}
    for name, field in spec.sums:
        subs[name] = {"sum": {"field": _field(lt, field, numeric=True)}}
    for name, field in spec.mins:
        subs[name] = {"min": {"field": _field(lt, field, numeric=True)}}
    for name, field in spec.maxs:
        subs[name] = {"max": {"field": _field(lt, field, numeric=True)}}
    for name, field, weight in spec.means:
        v = _field(lt, field, numeric=True)
        subs[name] = {"avg": {"field": v}} if weight is None else {"weighted_avg": {
            "value": {"field": v}, "weight": {"field": _field(lt, weight, numeric=True), "missing": 0}}}
    for name, field in spec.distincts:
        # Exact below the precision threshold (40 000, OpenSearch's most): far above Linseed's 1,000 ids a name.
        subs[name] = {"cardinality": {"field": _field(lt, field), "precision_threshold": 40000}}
    comp: dict[str, Any] = {"size": query.size + 1, "sources": sources}
    if after is not None:
        if not isinstance(after, dict) or set(after) != {k.name for k in spec.keys}:
            raise QueryError("after_key: expected the keys of a previous answer's after_key")
        comp["after"] = after
    return {"query": where, "size": 0, "track_total_hits": False, "aggs": {"g": {"composite": comp, "aggs": subs}}}


def buckets(answer: dict[str, Any] | None, spec: GroupSpec) -> list[dict[str, Any]]:
    if answer is None:
        return []
    names = spec.metric_names
    out = []
    for b in answer["aggregations"]["g"]["buckets"]:
        metrics = {n: (float(b[n]["value"]) if b[n].get("value") is not None else None) for n in names}
        out.append({"key": {k.name: b["key"].get(k.name) for k in spec.keys}, "doc_count": int(b["doc_count"]),
                    "metrics": metrics})
    return out
