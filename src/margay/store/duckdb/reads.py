"""Reads of the embedded engine beyond a page of records, each compiled to SQL over a query's files:
aggregations (over roll-ups when they give the exact answer), aggregated L3 flows, filter hints, counts
and the event ids a dismissal names. `run_over(query, build)` hands `build(run, src, params)` the query's
FROM + WHERE; `run_rolled` the same over roll-up rows where it can (store/rollup.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from ...errors import QueryError
from ...query.es.fields import Fields
from ...query.l3 import KEY, LISTS, SUMS, item
from ...query.linseed_aggs import linseed_request
from ...query.model import Query
from ..backend import Aggregated, FieldValue
from ..rollup import agg_measures, aggs_qualify, metric_sql
from .aggs import Aggregator, Scope
from .levels import Runner

RunOver = Callable[[Query, Callable[..., Any]], Any]
RunRolled = Callable[[Query, Callable[..., Any], Collection[str]], tuple[bool, Any]]


def aggregate(run_over: RunOver, run_rolled: RunRolled, query: Query, aggs: dict[str, Any]) -> Aggregated:
    """Linseed's aggregations (checked and mapped by query/linseed_aggs.py) on the one compiler (aggs.py)."""
    request = linseed_request(query.logtype, aggs)

    def build(rolled: bool) -> Callable[..., Any]:
        return lambda run, src, params: linseed_aggregator(query, run, rolled=rolled).aggregate(request,
                                                                                               Scope(src, params))

    if aggs_qualify(query, request):  # exact over roll-ups (store/rollup.py)
        done, result = run_rolled(query, build(True), agg_measures(query.logtype, request))
        if done:
            return Aggregated(result, "rollup")
    return Aggregated(run_over(query, build(False)), "raw")


def linseed_aggregator(query: Query, run: Runner, *, rolled: bool = False) -> Aggregator:
    """The compiler set up for Linseed's requests over a query's rows, or its roll-up rows when `rolled`."""
    lt = query.logtype
    return Aggregator(Fields(lt), run, query.now or datetime.now(UTC), _no_queries,
                      rolled=(lambda kind, field: metric_sql(lt, kind, field)) if rolled else None)


def _no_queries(query: Any) -> tuple[str, list[Any]]:
    raise QueryError("Linseed's aggregations take no queries")  # its dialect has no filter/filters


def l3_sql(src: str) -> str:
    """Two phases: sum counters per group and keep the page of groups with the most bytes, then build the
    (costlier) distinct-value lists only for those groups. Each phase scans the source for just the columns
    it needs (the source's parameters come twice); no phase materializes whole rows."""
    keys = ", ".join(f'"{k}"' for k in KEY)
    sums = ", ".join(f'coalesce(sum("{c}"), 0) AS "{c}"' for c in SUMS)
    group = "hash(" + keys + ")"
    order = '"bytes_in" + "bytes_out" DESC, _g'
    return (f"WITH g AS NOT MATERIALIZED (SELECT * FROM (SELECT {group} AS _g, {keys}, {sums}, count(*) AS log_count "  # noqa: S608
            f"{src} GROUP BY ALL) ORDER BY {order} LIMIT ? OFFSET ?), "
            f"l AS (SELECT {group} AS _g, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"policies\".\"enforced_policies\", [])))) AS enforced, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"policies\".\"pending_policies\", [])))) AS pending, "
            "list_distinct(flatten(list(DISTINCT coalesce(\"dest_domains\", [])))) AS domains, "
            "(list(DISTINCT \"source_ip\") FILTER (WHERE \"source_ip\" IS NOT NULL))[1:10] AS source_ips, "
            "(list(DISTINCT \"dest_ip\") FILTER (WHERE \"dest_ip\" IS NOT NULL))[1:10] AS dest_ips "
            f"{src} AND {group} IN (SELECT _g FROM g) GROUP BY ALL) "
            f"SELECT g.* EXCLUDE (_g), l.* EXCLUDE (_g) FROM g LEFT JOIN l USING (_g) ORDER BY {order}")


def l3_flows(run_over: RunOver, query: Query, offset: int) -> list[dict[str, Any]]:
    cols = KEY + SUMS + LISTS

    def grouped(run: Any, src: str, params: list[Any]) -> list[dict[str, Any]]:
        rows = run(l3_sql(src), params + [query.size + 1, offset] + params)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    return query.restriction.withhold_l3([item(r) for r in run_over(query, grouped)])


def field_values(run_over: RunOver, query: Query, field: str, prefix: str, size: int) -> list[FieldValue]:
    qk = query.logtype.query_keys()[field]

    def hints(run: Any, src: str, params: list[Any]) -> list[FieldValue]:
        value = f"unnest(list_distinct({qk.sql}))" if qk.kind.is_list else qk.sql
        sql = (f"SELECT v, count(*) AS c FROM (SELECT CAST({value} AS VARCHAR) AS v {src}) "  # noqa: S608
               "WHERE v IS NOT NULL AND starts_with(lower(v), lower(?)) GROUP BY v ORDER BY c DESC, v LIMIT ?")
        return [FieldValue(v, c) for v, c in run(sql, params + [prefix, size])]

    return list(run_over(query, hints))


def count(run_over: RunOver, query: Query) -> int:
    rows = run_over(query, lambda run, src, params: run(f"SELECT count(*) {src}", params))  # noqa: S608
    return int(rows[0][0])


def present_ids(run_over: RunOver, query: Query) -> set[str]:
    """The distinct `id`s among a query's records."""
    rows = run_over(query, lambda run, src, ps: run(f"SELECT DISTINCT \"id\" {src}", ps))  # noqa: S608
    return {str(r[0]) for r in rows}


def distinct(run_over: RunOver, query: Query, fields: list[str]) -> list[tuple[Any, ...]]:
    from ..backend import check_distinct

    check_distinct(query, fields)
    cols = ", ".join(f'"{f}"' for f in fields)

    def grouped(run: Any, src: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in run(f"SELECT DISTINCT {cols} {src}", params)]  # noqa: S608  (declared fields)

    return sorted(run_over(query, grouped), key=lambda t: tuple("" if v is None else str(v) for v in t))
