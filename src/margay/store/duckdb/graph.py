"""The flow graph on the embedded engine: the whole fold of query/graph.py in one SQL statement.

Flow logs are first summed per distinct combination of GRAPH_KEYS (from roll-ups when the query allows),
and the node strings are built on those groups, not per log. Parameters: the expanded namespaces, and for
a namespace-scoped read the fully readable clusters and the readable `cluster/namespace` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...query.graph import GRAPH_KEYS, MORE, WITHHELD, Edge, GraphRows, GraphSpec
from ...query.model import Query
from .. import rollup


def _node_sql(side: str, scoped: bool) -> str:
    """The node id of one side of a flow log, `kind|a|b`; parameters: expanded namespaces (+ scope lists)."""
    t, ns, aggr = f'"{side}_type"', f'"{side}_namespace"', f'"{side}_name_aggr"'
    dom = "WHEN \"dest_domain\" IS NOT NULL THEN 'dom|' || \"dest_domain\" " if side == "dest" else ""
    body = (f"CASE WHEN {t} = 'wep' AND list_contains(?::VARCHAR[], {ns}) THEN 'wl|' || {ns} || '|' || {aggr} "
            f"WHEN {t} = 'wep' THEN 'ns|' || {ns} "
            f"WHEN {t} = 'hep' THEN 'host|' || coalesce({aggr}, '-') "
            f"WHEN {t} = 'ns' THEN 'set|' || coalesce({ns}, '-') || '|' || coalesce({aggr}, '-') "
            f"{dom}ELSE 'net|' || coalesce({aggr}, 'pub') END")
    if not scoped:
        return body
    return (f"CASE WHEN list_contains(?::VARCHAR[], \"cluster\") OR list_contains(?::VARCHAR[], "
            f"\"cluster\" || '/' || coalesce({ns}, '-')) THEN {body} ELSE '{WITHHELD}' END")


_GROUP_COLUMNS = ('"cluster", "source_type", "source_namespace", "source_name_aggr", "dest_type", "dest_namespace", '
                  '"dest_name_aggr", "dest_service_namespace", "dest_service_name", "reporter" = \'src\' AS by_src, '
                  '"action" = \'deny\' AS denied')
_RAW_SUMS = ("CASE WHEN \"dest_type\" = 'net' THEN list_min(\"dest_domains\") END "
             "AS \"dest_domain\", sum(coalesce(\"num_flows\", 0)) AS nf, "
             "sum(coalesce(\"bytes_in\", 0) + coalesce(\"bytes_out\", 0)) AS b, count(*) AS n")
# Over roll-up rows: the same sums of pre-summed columns, `_count` logs per row (`dest_domain` is derived).
_ROLLED_SUMS = ("CASE WHEN \"dest_type\" = 'net' THEN \"dest_domain\" END AS \"dest_domain\", "
                "sum(coalesce(\"num_flows\", 0)) AS nf, "
                "sum(coalesce(\"bytes_in\", 0) + coalesce(\"bytes_out\", 0)) AS b, sum(\"_count\") AS n")


def _in_cluster(expr: str, by_cluster: bool) -> str:
    """A node id of its flow log's cluster (`@cluster|kind|…`, NULL stays NULL), as query/graph.in_cluster."""
    return f"'@' || \"cluster\" || '|' || ({expr})" if by_cluster else expr


def graph_sql(src: str, scoped: bool, rolled: bool = False, by_cluster: bool = False) -> str:
    svc = ("CASE WHEN \"dest_type\" = 'wep' AND list_contains(?::VARCHAR[], \"dest_namespace\") "
           "AND coalesce(\"dest_service_name\", '-') NOT IN ('-', '') "
           "THEN 'svc|' || \"dest_service_namespace\" || '|' || \"dest_service_name\" END")
    if scoped:
        svc = f"CASE WHEN ({_node_sql('dest', True)}) = '{WITHHELD}' THEN NULL ELSE {svc} END"
    return f"""
WITH g AS (
  SELECT {_GROUP_COLUMNS}, {_ROLLED_SUMS if rolled else _RAW_SUMS}
  {src}
  GROUP BY ALL
), r AS (
  SELECT {_in_cluster(_node_sql('source', scoped), by_cluster)} AS s, {_in_cluster(_node_sql('dest', scoped), by_cluster)} AS d,
         {_in_cluster(svc, by_cluster)} AS v, by_src, denied, nf, b, n
  FROM g
), r2 AS (
  SELECT s, coalesce(v, d) AS d, by_src, denied, nf, b, n FROM r
  UNION ALL SELECT v, d, by_src, denied, nf, b, n FROM r WHERE v IS NOT NULL
), e AS (
  SELECT s, d, CASE WHEN bool_or(NOT by_src)
                    THEN coalesce(sum(nf) FILTER (WHERE NOT by_src), 0) + coalesce(sum(nf) FILTER (WHERE by_src AND denied), 0)
                    ELSE coalesce(sum(nf), 0) END AS f,
         coalesce(sum(nf) FILTER (WHERE denied), 0) AS df,
         greatest(coalesce(sum(b) FILTER (WHERE by_src), 0), coalesce(sum(b) FILTER (WHERE NOT by_src), 0)) AS b,
         sum(n) AS logs
  FROM r2 GROUP BY s, d
), n AS (
  SELECT node, sum(b) AS w, sum(f) AS wf FROM (SELECT s AS node, b, f FROM e UNION ALL
                                               SELECT d, b, f FROM e WHERE d <> s) GROUP BY node
), k AS (
  SELECT node, row_number() OVER (ORDER BY w DESC, wf DESC, node) AS rk FROM n
)
SELECT CASE WHEN ks.rk < ? THEN e.s ELSE '{MORE}' END AS s2, CASE WHEN kd.rk < ? THEN e.d ELSE '{MORE}' END AS d2,
       sum(e.f), sum(least(e.df, e.f)), sum(e.b), sum(e.logs), count(*),
       (SELECT count(*) FROM k WHERE rk >= ?) AS hidden
FROM e JOIN k ks ON ks.node = e.s JOIN k kd ON kd.node = e.d
GROUP BY ALL ORDER BY 5 DESC, 1, 2"""  # noqa: S608 - built from registry names and our constants




def flow_graph(run_over: Callable[..., Any], run_rolled: Callable[..., Any], query: Query, spec: GraphSpec
               ) -> GraphRows:
    limits = dict(query.restriction.scoped)
    scoped = bool(limits)
    full = [c for c in query.clusters if c not in limits]
    allowed = [f"{c}/{ns}" for c, nss in limits.items() for ns in nss]
    expand = list(spec.expand)
    node_params: list[Any] = ([full, allowed, expand] if scoped else [expand])
    cap = spec.max_nodes

    def build(run: Any, src: str, params: list[Any], rolled: bool = False) -> list[tuple[Any, ...]]:
        svc_params = ([*node_params, expand] if scoped else [expand])
        head = node_params + node_params + svc_params
        return list(run(graph_sql(src, scoped, rolled, spec.by_cluster), params + head + [cap, cap, cap]))

    path = "raw"
    rows: list[tuple[Any, ...]] | None = None
    if rollup.usable(query, GRAPH_KEYS):
        used, got = run_rolled(query, lambda run, src, ps: build(run, src, ps, rolled=True))
        if used:
            path, rows = "rollup", got
    if rows is None:
        rows = run_over(query, build)
    edges, hidden = [], 0
    for s, d, f, df, b, logs, merged, folded in rows:
        hidden = int(folded)
        edges.append(Edge(s, d, int(f), int(df), int(b), int(logs), int(merged)))
    return GraphRows(edges, hidden, path)
