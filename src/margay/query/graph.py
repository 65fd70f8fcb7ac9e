"""The flow visualizer's graph: flow logs folded into nodes and edges (engine-neutral parts).

Nodes are namespaces (or, for the namespaces the caller expands, their workloads and services), hosts,
network sets, external domains and the `pub`/`pvt` nets. An engine sums flow logs per distinct combination
of `GRAPH_KEYS` (a few thousand groups over millions of logs) and folds the groups into edges: each log maps
to its two nodes, each edge is summed per reporter, nodes are ranked by traffic and all but the first
`max_nodes - 1` fold into one "N more" node, so the answer stays small whatever the size of the estate.
The embedded engine does all of it in one SQL statement (store/duckdb/graph.py); `fold` is the same
computation over group rows, for engines that can only group (OpenSearch's composite aggregation).

Counting: a flow is either denied at its source (only the source logs it) or reaches its destination,
which logs it when it reports (workloads and hosts do, nets do not). So an edge's flow count is the
destination's total plus the flows denied at the source (the source's total when no destination reports),
its denied count the sum of both reporters' denied flows, and its bytes the larger of the two reporters'
byte totals. Counting from the destination keeps a flow allowed out of its source but denied at its
destination a denied flow, even when a time window cuts the two reporters' logs at different flows.

The domain node of a `net` destination is the least of its `dest_domains` (the same on every engine).

With `by_cluster`, every node belongs to the cluster of its flow logs: its id starts with `@<cluster>|`
(`@app-cluster-1|ns|shop`), so two clusters' `shop` namespaces stay two nodes; the "N more" node stays one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_NODES = 60
MAX_NODES = 1000
MORE = "more|"
WITHHELD = "withheld|"

# The columns a graph node is made of; all are dimensions of the flows roll-up.
GRAPH_KEYS = ["cluster", "source_type", "source_namespace", "source_name_aggr", "dest_type", "dest_namespace",
              "dest_name_aggr", "dest_service_namespace", "dest_service_name", "reporter", "action"]


@dataclass(frozen=True)
class GraphSpec:
    """What the caller asks: namespaces shown as their workloads, and the node cap."""

    expand: tuple[str, ...] = ()
    max_nodes: int = DEFAULT_NODES
    by_cluster: bool = False


def in_cluster(node: str | None, cluster: str) -> str | None:
    """A node id of one cluster's graph (`@cluster|kind|…`)."""
    return None if node is None else f"@{cluster}|{node}"


def split_cluster(node: str) -> tuple[str | None, str]:
    """(cluster, the node id without it)."""
    if node.startswith("@") and "|" in node:
        cluster, rest = node[1:].split("|", 1)
        return cluster, rest
    return None, node


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    flows: int
    denied_flows: int
    bytes: int
    flow_logs: int
    merged_edges: int


@dataclass(frozen=True)
class GraphRows:
    """An engine's answer: the folded edges (largest bytes first), the nodes folded into "more", and
    which rows were read ("rollup" or "raw" on the embedded engine, "native" on OpenSearch)."""

    edges: list[Edge]
    hidden: int
    path: str


def visible(scoped: Mapping[str, frozenset[str]], cluster: str, namespace: str | None) -> bool:
    ns = scoped.get(cluster)
    return ns is None or (namespace or "-") in ns


def node_of(g: Mapping[str, Any], side: str, expand: frozenset[str], scoped: Mapping[str, frozenset[str]]
            ) -> str | None:
    """A group's node on one side (None where SQL's string concatenation would give NULL)."""
    t, ns, aggr = g[f"{side}_type"], g[f"{side}_namespace"], g[f"{side}_name_aggr"]
    if scoped and not visible(scoped, g["cluster"], ns):
        return WITHHELD
    if t == "wep":
        if ns is None or (ns in expand and aggr is None):
            return None
        return f"wl|{ns}|{aggr}" if ns in expand else f"ns|{ns}"
    if t == "hep":
        return f"host|{aggr or '-'}"
    if t == "ns":
        return f"set|{ns or '-'}|{aggr or '-'}"
    if side == "dest" and g.get("dest_domain") is not None:
        return f"dom|{g['dest_domain']}"
    return f"net|{aggr or 'pub'}"


def fold(groups: Iterable[Mapping[str, Any]], spec: GraphSpec, scoped: Mapping[str, frozenset[str]]
         ) -> tuple[list[Edge], int]:
    """Group rows (GRAPH_KEYS, dest_domain, nf, b, n) -> the capped edges and the hidden node count."""
    expand = frozenset(spec.expand)
    # (s, d) -> per reporter (by_src): [nf, denied nf, b, n]
    sums: dict[tuple[str, str], dict[bool, list[int]]] = defaultdict(lambda: {True: [0, 0, 0, 0],
                                                                              False: [0, 0, 0, 0]})
    for g in groups:
        s, d = node_of(g, "source", expand, scoped), node_of(g, "dest", expand, scoped)
        svc = None
        if (g["dest_type"] == "wep" and g["dest_namespace"] in expand
                and (g["dest_service_name"] or "-") not in ("-", "") and d != WITHHELD
                and g["dest_service_namespace"] is not None):
            svc = f"svc|{g['dest_service_namespace']}|{g['dest_service_name']}"
        if spec.by_cluster:
            s, d, svc = (in_cluster(x, g["cluster"]) for x in (s, d, svc))
        by_src, denied = g["reporter"] == "src", g["action"] == "deny"
        pairs = [(s, svc if svc is not None else d)] + ([(svc, d)] if svc is not None else [])
        for one, other in pairs:
            if one is None or other is None:
                continue
            acc = sums[(one, other)][by_src]
            acc[0] += int(g["nf"] or 0)
            acc[1] += int(g["nf"] or 0) if denied else 0
            acc[2] += int(g["b"] or 0)
            acc[3] += int(g["n"] or 0)
    edges: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    weight: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (s, d), by in sums.items():
        src, dst = by[True], by[False]
        has_dst = dst[3] > 0
        f = dst[0] + src[1] if has_dst else src[0] + dst[0]
        df = src[1] + dst[1]
        b = max(src[2], dst[2])
        edges[(s, d)] = (f, df, b, src[3] + dst[3])
        for node in (s, d) if d != s else (s,):
            weight[node][0] += b
            weight[node][1] += f
    ranked = sorted(weight, key=lambda n: (-weight[n][0], -weight[n][1], n))
    rank = {n: i + 1 for i, n in enumerate(ranked)}
    cap = spec.max_nodes
    out: dict[tuple[str, str], list[int]] = {}
    for (s, d), (f, df, b, logs) in edges.items():
        key = (s if rank[s] < cap else MORE, d if rank[d] < cap else MORE)
        acc = out.setdefault(key, [0, 0, 0, 0, 0])
        acc[0] += f
        acc[1] += min(df, f)
        acc[2] += b
        acc[3] += logs
        acc[4] += 1
    hidden = sum(1 for r in rank.values() if r >= cap)
    folded = [Edge(s, d, *v) for (s, d), v in out.items()]
    folded.sort(key=lambda e: (-e.bytes, e.source, e.target))
    return folded, hidden


_TYPES = {"ns": "namespace", "wl": "workload", "svc": "service", "host": "host", "set": "networkset",
          "dom": "domain", "net": "net", "more": "more", "withheld": "withheld"}


def describe(node: str) -> dict[str, Any]:
    cluster, bare = split_cluster(node)
    kind, *rest = bare.split("|")
    out: dict[str, Any] = {"id": node, "type": _TYPES.get(kind, kind)}
    if cluster is not None:
        out["cluster"] = cluster
    if kind in ("wl", "svc"):
        parent = "ns|" + rest[0]
        out.update(namespace=rest[0], label=rest[1], parent=parent if cluster is None else f"@{cluster}|{parent}")
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
    cluster, bare = split_cluster(node)
    sel = _side_selector(bare, side)
    return f"cluster = {_q(cluster)} AND {sel}" if cluster is not None and sel is not None else sel


def _side_selector(node: str, side: str) -> str | None:
    kind, *rest = node.split("|")
    if kind == "withheld":
        return None
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


def assemble(rows: GraphRows, spec: GraphSpec, base: str | None) -> dict[str, Any]:
    """The response's nodes and edges from an engine's folded edges."""
    nodes: dict[str, dict[str, Any]] = {}
    edges = []
    for e in rows.edges:
        s, d = e.source, e.target
        if s == MORE and d == MORE:
            continue
        for node in (s, d):
            n = nodes.setdefault(node, {**describe(node), "bytes": 0, "flows": 0, "denied_flows": 0})
            n["bytes"] += e.bytes
            n["flows"] += e.flows
            n["denied_flows"] += e.denied_flows
        f, df = e.flows, e.denied_flows
        action = "deny" if df >= f and f > 0 else "mixed" if df > 0 else "allow"
        edges.append({"id": f"{s}>{d}", "source": s, "target": d, "flows": f, "denied_flows": df,
                      "allowed_flows": f - df, "bytes": e.bytes, "flow_logs": e.flow_logs, "action": action,
                      "merged_edges": e.merged_edges,
                      "selector": None if MORE in (s, d) or WITHHELD in (s, d) else edge_selector(s, d, base)})
    if MORE in nodes:
        nodes[MORE]["label"] = f"{rows.hidden} more"
        nodes[MORE]["hidden_nodes"] = rows.hidden
    # Compound parents of expanded namespaces (one per cluster with `by_cluster`).
    for pid in sorted({n["parent"] for n in nodes.values() if n.get("parent")}):
        parent = nodes.setdefault(pid, {**describe(pid), "bytes": 0, "flows": 0, "denied_flows": 0})
        parent["expanded"] = True
    for n in nodes.values():
        n["expandable"] = n["type"] == "namespace" and not n.get("expanded")
        sel = side_selector(n["id"], "source") if n["type"] not in ("domain", "service") else None
        dsel = side_selector(n["id"], "dest")
        n["selector"] = " OR ".join(f"({x})" for x in (sel, dsel) if x) or None
    return {"nodes": list(nodes.values()), "edges": edges, "truncated": rows.hidden > 0,
            "hidden_nodes": rows.hidden}
