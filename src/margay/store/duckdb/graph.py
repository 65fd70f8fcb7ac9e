"""The flow graph on the embedded engine: the fold of query/graph.py in one SQL statement up to the edges,
whose nodes are then ranked and capped in Python (`fold_edges`).

Flow logs are first summed per distinct combination of GRAPH_KEYS (from roll-ups when the query allows),
and the node strings are built on those groups, not per log. Parameters: the expanded namespaces, and for
a namespace-scoped read the fully readable clusters and the readable `cluster/namespace` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...query.graph import GRAPH_KEYS, MORE, WITHHELD, Edge, GraphRows, GraphSpec, in_cluster
from ...query.model import Query
from .. import rollup


def _node_sql(side: str, scoped: bool, domain: str = '"dest_domain"') -> str:
    """The node id of one side of a flow log, `kind|a|b`; parameters: expanded namespaces (+ scope lists).
    `domain`: the expression of the destination's domain."""
    t, ns, aggr = f'"{side}_type"', f'"{side}_namespace"', f'"{side}_name_aggr"'
    dom = f"WHEN {domain} IS NOT NULL THEN 'dom|' || {domain} " if side == "dest" else ""
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
_ROLLED_SUMS = ("sum(coalesce(\"num_flows\", 0)) AS nf, "
                "sum(coalesce(\"bytes_in\", 0) + coalesce(\"bytes_out\", 0)) AS b, sum(\"_count\") AS n")
_ROLLED_DOMAIN = "(CASE WHEN \"dest_type\" = 'net' THEN \"dest_domain\" END)"


# The roll-up measures the graph reads (store/rollup.py: union_source projects only these).
_MEASURES = ("num_flows", "bytes_in", "bytes_out")


def graph_sql(src: str, scoped: bool, rolled: bool = False, by_cluster: bool = False) -> str:
    """The edges' statement. Over raw rows the logs are first summed per distinct GRAPH_KEYS (`g`, a few
    thousand groups of millions of logs) and the node ids built on the groups; over roll-up rows (each already
    a sum) the ids are built on the rows and summed by id at once: grouping ~21,000 roll-up rows of a day by
    the eleven keys first cost more than the ids themselves (~15 against ~12 ms in-process, 2 M flows).
    Parameters: raw, `src`'s then the node lists (`node_params`); rolled, the node lists then `src`'s."""
    svc = ("CASE WHEN \"dest_type\" = 'wep' AND list_contains(?::VARCHAR[], \"dest_namespace\") "
           "AND coalesce(\"dest_service_name\", '-') NOT IN ('-', '') "
           "THEN 'svc|' || \"dest_service_namespace\" || '|' || \"dest_service_name\" END")
    domain = _ROLLED_DOMAIN if rolled else '"dest_domain"'
    if scoped:
        svc = f"CASE WHEN ({_node_sql('dest', True, domain)}) = '{WITHHELD}' THEN NULL ELSE {svc} END"
    # `by_cluster`: the edges carry their cluster, `cl` (first column), and the caller makes the node ids of
    # each cluster's graph (query/graph.in_cluster). Prefixing the ids in SQL cost the statement ~3 of ~11 ms.
    cl = '"cluster" AS cl, ' if by_cluster else ""
    c = "cl, " if by_cluster else ""
    nodes = f"{cl}{_node_sql('source', scoped, domain)} AS s, {_node_sql('dest', scoped, domain)} AS d, {svc} AS v"
    if rolled:
        r = f"""r AS (
  SELECT {nodes}, "reporter" = 'src' AS by_src, "action" = 'deny' AS denied, {_ROLLED_SUMS}
  {src}
  GROUP BY ALL
)"""  # noqa: S608 - built from registry names and our constants
    else:
        r = f"""g AS (
  SELECT {_GROUP_COLUMNS}, {_RAW_SUMS}
  {src}
  GROUP BY ALL
), r AS (
  SELECT {nodes}, by_src, denied, nf, b, n
  FROM g
)"""  # noqa: S608 - built from registry names and our constants
    return f"""
WITH {r}, r2 AS (
  SELECT {c}s, coalesce(v, d) AS d, by_src, denied, nf, b, n FROM r
  UNION ALL SELECT {c}v, d, by_src, denied, nf, b, n FROM r WHERE v IS NOT NULL
), e AS (
  SELECT {c}s, d, CASE WHEN bool_or(NOT by_src)
                    THEN coalesce(sum(nf) FILTER (WHERE NOT by_src), 0) + coalesce(sum(nf) FILTER (WHERE by_src AND denied), 0)
                    ELSE coalesce(sum(nf), 0) END AS f,
         coalesce(sum(nf) FILTER (WHERE denied), 0) AS df,
         greatest(coalesce(sum(b) FILTER (WHERE by_src), 0), coalesce(sum(b) FILTER (WHERE NOT by_src), 0)) AS b,
         sum(n) AS logs
  FROM r2 GROUP BY {c}s, d
)
SELECT {c}s, d, f, df, b, logs FROM e"""  # noqa: S608 - built from registry names and our constants


def fold_edges(rows: list[tuple[Any, ...]], cap: int) -> list[tuple[Any, ...]]:
    """The statement's edges (s, d, flows, denied flows, bytes, logs), their nodes ranked by bytes, then flows,
    then id, and every node ranked `cap` or lower folded into MORE: (s, d, f, df, b, logs, edges merged, nodes
    hidden) rows, by bytes (descending), then s, then d. A few hundred edges: in SQL, this tail (a union, a
    window, two joins and a GROUP BY) cost more than the edges themselves (~4 of ~18 CPU-ms a 24 h graph).
    SQL's NULLs kept: a NULL node is ranked (after its equals) but draws no edge."""
    weight: dict[str | None, list[int]] = {}
    for s, d, f, _, b, _ in rows:
        for node in (s, d) if s is not None and d is not None and d != s else (s,):
            w = weight.setdefault(node, [0, 0])
            w[0] += int(b)
            w[1] += int(f)
    ranked = sorted(weight, key=lambda n: (-weight[n][0], -weight[n][1], n is None, n or ""))
    rank = {n: i + 1 for i, n in enumerate(ranked)}
    hidden = sum(1 for r in rank.values() if r >= cap)
    out: dict[tuple[str, str], list[int]] = {}
    for s, d, f, df, b, logs in rows:
        if s is None or d is None:
            continue
        acc = out.setdefault((s if rank[s] < cap else MORE, d if rank[d] < cap else MORE), [0, 0, 0, 0, 0])
        acc[0] += int(f)
        acc[1] += min(int(df), int(f))
        acc[2] += int(b)
        acc[3] += int(logs)
        acc[4] += 1
    folded = sorted(out.items(), key=lambda e: (-e[1][2], e[0][0], e[0][1]))
    return [(s, d, *v, hidden) for (s, d), v in folded]




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
        rows = run(graph_sql(src, scoped, rolled, spec.by_cluster), head + params if rolled else params + head)
        if spec.by_cluster:
            rows = [(in_cluster(s, cl), in_cluster(d, cl), *rest) for cl, s, d, *rest in rows]
        return fold_edges(list(rows), cap)

    path = "raw"
    rows: list[tuple[Any, ...]] | None = None
    if rollup.usable(query, GRAPH_KEYS):
        used, got = run_rolled(query, lambda run, src, ps: build(run, src, ps, rolled=True), _MEASURES)
        if used:
            path, rows = "rollup", got
    if rows is None:
        rows = run_over(query, build)
    edges, hidden = [], 0
    for s, d, f, df, b, logs, merged, folded in rows:
        hidden = int(folded)
        edges.append(Edge(s, d, int(f), int(df), int(b), int(logs), int(merged)))
    return GraphRows(edges, hidden, path)
