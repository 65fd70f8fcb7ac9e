"""The flow visualizer's graph (POST /api/v1/flows/graph): flow logs grouped into nodes and edges in the engine.

Nodes are namespaces (or, for the namespaces the caller expands, their workloads and services), hosts,
network sets, external domains and the `pub`/`pvt` nets. One SQL statement maps every flow log to its
two nodes, sums each edge per reporter, ranks the nodes by traffic and folds all but the first
`max_nodes - 1` into one "N more" node, so the answer stays small whatever the size of the estate.

Counting: a flow is either denied at its source (only the source logs it) or reaches its destination,
which logs it when it reports (workloads and hosts do, nets do not). So an edge's flow count is the
destination's total plus the flows denied at the source (the source's total when no destination reports),
its denied count the sum of both reporters' denied flows, and its bytes the larger of the two reporters'
byte totals. Counting from the destination keeps a flow allowed out of its source but denied at its
destination a denied flow, even when a time window cuts the two reporters' logs at different flows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import QueryError
from ..logtypes import REGISTRY
from ..store import rollup
from .common import JSONResponse, json_body
from .logs import _timed, build_query

DEFAULT_NODES = 60
MAX_NODES = 1000
MORE = "more|"
WITHHELD = "withheld|"


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


# The columns a graph node is made of: flow logs are first summed per distinct combination of these (a
# few thousand groups over millions of logs), and the node strings are built on the groups, not per log.
# They are all dimensions of the flows roll-up, so the sums can come from roll-ups (store/rollup.py).
GRAPH_KEYS = ["cluster", "source_type", "source_namespace", "source_name_aggr", "dest_type", "dest_namespace",
              "dest_name_aggr", "dest_service_namespace", "dest_service_name", "reporter", "action"]
_GROUP_COLUMNS = ('"cluster", "source_type", "source_namespace", "source_name_aggr", "dest_type", "dest_namespace", '
                  '"dest_name_aggr", "dest_service_namespace", "dest_service_name", "reporter" = \'src\' AS by_src, '
                  '"action" = \'deny\' AS denied')
_RAW_SUMS = ("CASE WHEN \"dest_type\" = 'net' AND len(coalesce(\"dest_domains\", [])) > 0 THEN \"dest_domains\"[1] END "
             "AS \"dest_domain\", sum(coalesce(\"num_flows\", 0)) AS nf, "
             "sum(coalesce(\"bytes_in\", 0) + coalesce(\"bytes_out\", 0)) AS b, count(*) AS n")
# Over roll-up rows: the same sums of pre-summed columns, `_count` logs per row (`dest_domain` is derived).
_ROLLED_SUMS = ("CASE WHEN \"dest_type\" = 'net' THEN \"dest_domain\" END AS \"dest_domain\", "
                "sum(coalesce(\"num_flows\", 0)) AS nf, "
                "sum(coalesce(\"bytes_in\", 0) + coalesce(\"bytes_out\", 0)) AS b, sum(\"_count\") AS n")


def graph_sql(src: str, scoped: bool, rolled: bool = False) -> str:
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
  SELECT {_node_sql('source', scoped)} AS s, {_node_sql('dest', scoped)} AS d, {svc} AS v, by_src, denied, nf, b, n
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


_TYPES = {"ns": "namespace", "wl": "workload", "svc": "service", "host": "host", "set": "networkset",
          "dom": "domain", "net": "net", "more": "more", "withheld": "withheld"}


def describe(node: str) -> dict[str, Any]:
    kind, *rest = node.split("|")
    out: dict[str, Any] = {"id": node, "type": _TYPES.get(kind, kind)}
    if kind in ("wl", "svc"):
        out.update(namespace=rest[0], label=rest[1], parent="ns|" + rest[0])
    elif kind == "ns":
        out.update(namespace=rest[0], label=rest[0])
    elif kind == "set":
        out.update(namespace=rest[0], label=rest[1] if rest[0] == "-" else f"{rest[0]}/{rest[1]}")
    elif kind == "net":
        out["label"] = {"pub": "public internet", "pvt": "private network"}.get(rest[0], rest[0])
    elif kind == "withheld":
        out["label"] = "outside your namespaces"
    elif kind != "more":
        out["label"] = rest[0]
    return out


def _q(v: str) -> str:
    """A double-quoted selector string."""
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def side_selector(node: str, side: str) -> str | None:
    """A selector matching the flow logs whose `side` endpoint is this node (None when it cannot be said)."""
    kind, *rest = node.split("|")
    if kind == "ns":
        return f"{side}_type = \"wep\" AND {side}_namespace = {_q(rest[0])}"
    if kind == "wl":
        return f"{side}_namespace = {_q(rest[0])} AND {side}_name_aggr = {_q(rest[1])}"
    if kind == "svc":
        return f"dest_service_namespace = {_q(rest[0])} AND dest_service_name = {_q(rest[1])}" if side == "dest" else None
    if kind == "host":
        return f"{side}_type = \"hep\" AND {side}_name_aggr = {_q(rest[0])}"
    if kind == "set":
        return f"{side}_type = \"ns\" AND {side}_name_aggr = {_q(rest[1])}"
    if kind == "dom":
        return f"dest_domains = {_q(rest[0])}"
    if kind == "net":
        return f"{side}_type = \"net\" AND {side}_name_aggr = {_q(rest[0])}"
    return None


def edge_selector(s: str, d: str, base: str | None) -> str | None:
    if s.startswith("svc|"):  # service -> backing workload: the flows to that service that reached it
        a, b = side_selector(s, "dest"), side_selector(d, "dest")
    else:
        a, b = side_selector(s, "source"), side_selector(d, "dest")
    if a is None or b is None:
        return None
    parts = ([f"({base})"] if base else []) + [a, b]
    return " AND ".join(parts)


def _strings(body: dict[str, Any], key: str) -> list[str]:
    v = body.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise QueryError(f"{key}: expected a list of strings")
    return v


async def flow_graph(request: Request) -> JSONResponse:
    m = request.app.state.margay
    body = await json_body(request)
    expand = _strings(body, "expand")
    cap = body.get("max_nodes", DEFAULT_NODES)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 2 <= cap <= MAX_NODES:
        raise QueryError(f"max_nodes: expected an integer from 2 to {MAX_NODES}")
    query = build_query(request, body, REGISTRY["flows"], default_last=timedelta(hours=1))
    plan = getattr(request.state, "read_plan", None)
    limits: dict[str, frozenset[str]] = dict(plan.scoped) if plan is not None else {}
    scoped = bool(limits)
    full = [c for c in query.clusters if c not in limits]
    allowed = [f"{c}/{ns}" for c, nss in limits.items() for ns in nss]
    node_params: list[Any] = ([full, allowed, expand] if scoped else [expand])

    def build(run: Any, src: str, params: list[Any], rolled: bool = False) -> list[tuple[Any, ...]]:
        svc_params = ([*node_params, expand] if scoped else [expand])
        head = node_params + node_params + svc_params
        return run(graph_sql(src, scoped, rolled), params + head + [cap, cap, cap])

    def graph() -> list[tuple[Any, ...]]:
        if hasattr(m.backend, "run_rolled") and rollup.usable(query, GRAPH_KEYS):
            used, rows = m.backend.run_rolled(query, lambda run, src, ps: build(run, src, ps, rolled=True))
            if used:
                paths.append("rollup")
                return list(rows)
        paths.append("raw")
        return list(m.backend.run_over(query, build))

    paths: list[str] = []
    rows = await _timed(request, "graph", graph)
    m.metrics.inc("margay_aggregations_total", path=paths[-1])
    m.access_log(request, query.logtype, query, len(rows))
    base = body.get("selector") or None
    nodes: dict[str, dict[str, Any]] = {}
    edges = []
    hidden = 0
    for s, d, f, df, b, logs, merged, folded in rows:
        hidden = folded
        if s == MORE and d == MORE:
            continue
        for node in (s, d):
            n = nodes.setdefault(node, {**describe(node), "bytes": 0, "flows": 0, "denied_flows": 0})
            n["bytes"] += int(b)
            n["flows"] += int(f)
            n["denied_flows"] += int(df)
        action = "deny" if df >= f and f > 0 else "mixed" if df > 0 else "allow"
        edges.append({"id": f"{s}>{d}", "source": s, "target": d, "flows": int(f), "denied_flows": int(df),
                      "allowed_flows": int(f - df), "bytes": int(b), "flow_logs": int(logs), "action": action,
                      "merged_edges": int(merged),
                      "selector": None if MORE in (s, d) or WITHHELD in (s, d) else edge_selector(s, d, base)})
    if MORE in nodes:
        nodes[MORE]["label"] = f"{hidden} more"
        nodes[MORE]["hidden_nodes"] = int(hidden)
    for ns in expand:  # compound parents of expanded namespaces
        if any(n.get("parent") == "ns|" + ns for n in nodes.values()):
            parent = nodes.setdefault("ns|" + ns, {**describe("ns|" + ns), "bytes": 0, "flows": 0, "denied_flows": 0})
            parent["expanded"] = True
    for n in nodes.values():
        n["expandable"] = n["type"] == "namespace" and not n.get("expanded")
        sel = side_selector(n["id"], "source") if n["type"] not in ("domain", "service") else None
        dsel = side_selector(n["id"], "dest")
        n["selector"] = " OR ".join(f"({x})" for x in (sel, dsel) if x) or None
    return JSONResponse({"nodes": list(nodes.values()), "edges": edges, "truncated": hidden > 0,
                         "hidden_nodes": int(hidden), "clusters": query.clusters,
                         "time_range": {"from": query.start.isoformat() if query.start else None,
                                        "to": query.end.isoformat() if query.end else None}},
                        headers={"x-margay-aggregation-path": paths[-1]})


def routes() -> list[Route]:
    return [Route("/api/v1/flows/graph", flow_graph, methods=["POST"])]
