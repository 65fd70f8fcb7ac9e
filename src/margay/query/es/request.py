"""The engine-neutral parts of the Elasticsearch-compatible API: index resolution, the plans handed to an
engine (Backend.es_search / es_count), and the parsing and shaping of search requests and answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from ...errors import Forbidden, NotFound, QueryError
from ...logtypes import REGISTRY, LogType
from ...store.backend import EsPlan, Partition
from ..restriction import agg_fields
from .dsl import named_fields
from .hitfields import check_highlight

MAX_WINDOW = 10_000
SEARCH_KEYS = {"query", "size", "from", "sort", "search_after", "_source", "track_total_hits", "aggs",
               "aggregations", "timeout", "stored_fields", "script_fields", "docvalue_fields", "version",
               "seq_no_primary_term", "track_scores", "terminate_after", "fields", "highlight"}


@dataclass
class Target:
    """What one log type contributes to a request: clusters, and per cluster the days (None = all)."""

    lt: LogType
    days: dict[str, set[str] | None] = field(default_factory=dict)

    @property
    def clusters(self) -> list[str]:
        return sorted(self.days)


def _has_wildcard(expr: str) -> bool:
    return "*" in expr or "?" in expr or expr in ("_all",)


def resolve(parts: list[Partition], allowed: set[tuple[str, str]], pattern: str) -> list[Target]:
    """The partitions an index pattern names among the readable (type, cluster) pairs `allowed`."""
    exprs = [e.strip() for e in (pattern or "_all").split(",") if e.strip()] or ["_all"]
    chosen: dict[tuple[str, str], set[str] | None] = {}
    for i, expr in enumerate(exprs):
        exclude = expr.startswith("-") and i > 0
        if exclude:
            expr = expr[1:]
        for p in parts:
            if (p.log_type, p.cluster) not in allowed:
                continue
            lt = REGISTRY[p.log_type]
            key = (p.log_type, p.cluster)
            whole = expr in ("_all", "*") or fnmatchcase(f"{lt.index_prefix}.{p.cluster}", expr)
            daily = fnmatchcase(p.index, expr)
            if exclude:
                if whole:
                    chosen.pop(key, None)
                elif daily and key in chosen:
                    days = chosen[key]
                    days = {q.day for q in parts if (q.log_type, q.cluster) == key} if days is None else days
                    days.discard(p.day)
                    chosen[key] = days
            elif whole:
                chosen[key] = None
            elif daily and chosen.get(key, set()) is not None:
                chosen.setdefault(key, set()).add(p.day)  # type: ignore[union-attr]
    if not chosen:
        concrete = [e for e in exprs if not _has_wildcard(e) and not e.startswith("-")]
        if concrete:
            raise NotFound(f"no such index [{concrete[0]}]")
    targets: dict[str, Target] = {}
    for (t, c), days in sorted(chosen.items()):
        if days is not None and not days:
            continue
        targets.setdefault(t, Target(REGISTRY[t])).days[c] = days
    return list(targets.values())


def check_search(body: dict[str, Any]) -> tuple[int, int]:
    """(from, size) of a search body, refusing what margay's ES API does not do."""
    unknown = set(body) - SEARCH_KEYS
    if unknown:
        raise QueryError(f"search feature [{sorted(unknown)[0]}] is not supported by margay's ES API")
    if body.get("script_fields"):  # Grafana and Kibana send an empty one
        raise QueryError("[script_fields] is not supported by margay's ES API (scripts are not)")
    if body.get("highlight") is not None:
        check_highlight(body["highlight"])
    size = body.get("size", 10)
    start = body.get("from", 0)
    if not isinstance(size, int) or not isinstance(start, int) or isinstance(size, bool) or size < 0 or start < 0:
        raise QueryError("[size] and [from] must be non-negative integers")
    if start + size > MAX_WINDOW:
        raise QueryError(f"Result window is too large, from + size must be less than or equal to: [{MAX_WINDOW}] "
                         f"but was [{start + size}]. Page with search_after instead.")
    if body.get("search_after") is not None and start:
        raise QueryError("[from] parameter must be set to 0 when [search_after] is used")
    return start, size


def named(body: dict[str, Any]) -> set[str]:
    """Every field a search body names: in its query, its sort and its aggregations (the queries of `filter`
    and `filters` aggregations and the sorts of `top_hits` included: each would be an oracle otherwise)."""
    out = named_fields(body.get("query")) | {s.name for s in sort_specs(body.get("sort"))}
    aggs = body.get("aggs") or body.get("aggregations") or {}
    return out | agg_fields(aggs) | _agg_queries(aggs)


# What shows a document's values past its `_source` (which the engines withhold): refused to scoped readers.
RAW_VALUES = frozenset({"script", "scripts", "script_fields", "docvalue_fields", "fields", "highlight",
                        "stored_fields", "runtime_mappings", "suggest", "collapse", "rescore", "inner_hits"})


def uses_raw_values(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k in RAW_VALUES or uses_raw_values(v) for k, v in node.items())
    if isinstance(node, list):
        return any(uses_raw_values(v) for v in node)
    return False


def scope_plans(plans: list[EsPlan], body: dict[str, Any]) -> list[EsPlan]:
    """The plans as an engine runs `body` on them: each namespace-scoped restriction narrowed to the records
    where every endpoint the body names is in scope (`named`), and what would show withheld values refused.
    Both engines call it on every `/es/` search and count, so a body run later in a point in time or a scroll
    opened without it is narrowed by what it names too."""
    if not any(p.restriction.scoped for p in plans):
        return plans
    names = named(body)
    if "*" in names:
        raise Forbidden("query_string searches over every field are not available to namespace-scoped "
                        "readers; name the fields, or use term queries")
    if uses_raw_values(body):
        raise Forbidden("scripts, fields, docvalue_fields and highlights are not available to "
                        "namespace-scoped readers (they would show withheld values)")
    return [replace(p, restriction=p.restriction.naming(p.lt, names)) if p.restriction.scoped else p for p in plans]


def _agg_queries(aggs: Any) -> set[str]:
    out: set[str] = set()
    if not isinstance(aggs, dict):
        return out
    for spec in aggs.values():
        if not isinstance(spec, dict):
            continue
        if isinstance(spec.get("filter"), dict):
            out |= named_fields(spec["filter"])
        filters = spec.get("filters", {}).get("filters") if isinstance(spec.get("filters"), dict) else None
        for q in (filters.values() if isinstance(filters, dict) else filters if isinstance(filters, list) else []):
            out |= named_fields(q)
        if isinstance(spec.get("top_hits"), dict):
            out |= {s.name for s in sort_specs(spec["top_hits"].get("sort"))}
        out |= _agg_queries(spec.get("aggs") or spec.get("aggregations") or {})
    return out


def query_params_into(body: dict[str, Any], qp: Mapping[str, str]) -> dict[str, Any]:
    """URL parameters of a search (size, from, q, sort, track_total_hits) folded into its body."""
    for k in ("size", "from"):
        if k in qp:
            try:
                body[k] = int(qp[k])
            except ValueError:
                raise QueryError(f"URL parameter [{k}]: expected an integer, got {qp[k]!r}") from None
    if "q" in qp:
        body["query"] = {"query_string": {"query": qp["q"]}}
    if "track_total_hits" in qp:
        v = qp["track_total_hits"]
        body["track_total_hits"] = v == "true" if v in ("true", "false") else int(v)
    if "sort" in qp:
        body["sort"] = [{s.split(":")[0]: s.split(":")[1] if ":" in s else "asc"} for s in qp["sort"].split(",")]
    unsupported = {"scroll", "search_type", "preference", "routing", "request_cache", "allow_partial_search_results"}
    for k in qp:  # `scroll` opens a scroll context (api/es_scroll.py)
        if k in unsupported - {"scroll", "preference", "routing", "request_cache", "allow_partial_search_results"}:
            raise QueryError(f"URL parameter [{k}] is not supported")
    return body


@dataclass
class SortSpec:
    name: str
    desc: bool
    mode: str | None
    unmapped: str | None
    special: str | None = None  # _score, _doc


def sort_specs(raw: Any) -> list[SortSpec]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, dict) and len(raw) > 1:  # {"a": {...}, "_doc": {...}}: one sort per key, in order
        items = [{k: v} for k, v in raw.items()]
    out = []
    for item in items:
        spec: Any
        if isinstance(item, str):
            name, spec = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            (name, spec), = item.items()
            spec = {"order": spec} if isinstance(spec, str) else spec
        else:
            raise QueryError(f"sort: cannot read {item!r}")
        if not isinstance(spec, dict) or set(spec) - {"order", "missing", "unmapped_type", "mode", "format",
                                                       "numeric_type"}:
            raise QueryError(f"sort on [{name}]: unsupported options {sorted(set(spec) - {'order'})}")
        if spec.get("missing") not in (None, "_last"):
            raise QueryError(f"sort on [{name}]: only missing=_last is supported")
        order = str(spec.get("order", "desc" if name == "_score" else "asc")).lower()
        if order not in ("asc", "desc"):
            raise QueryError(f"sort on [{name}]: order must be asc or desc")
        special = name if name in ("_score", "_doc") else None
        out.append(SortSpec(name, order == "desc", spec.get("mode"), spec.get("unmapped_type"), special))
    return out


def total_hits(n: int, track: Any, as_int: bool) -> Any:
    """`hits.total` as Elasticsearch gives it for a track_total_hits setting."""
    if as_int:
        return n
    if track is False:
        return None
    cap = MAX_WINDOW if track is None else (None if track is True else int(track))
    if cap is not None and n > cap:
        return {"value": cap, "relation": "gte"}
    return {"value": n, "relation": "eq"}


