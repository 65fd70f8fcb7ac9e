// The flow visualizer: the server's aggregated graph (POST /api/v1/flows/graph) drawn with cytoscape.
import { api, explorerLink, fmtBytes, fmtNum, h, lib, notReadable, quote, readable, readableHit, rendered, showError, state, timeRange } from "./core.js";

const EDGE = { allow: "#2e9d5b", deny: "#d64545", mixed: "#e69a1c" };
const NAMES = { namespace: "namespace", workload: "workload", service: "service", host: "host", networkset: "network set",
  domain: "external domain", net: "external network", more: "folded nodes", withheld: "withheld" };
const SHAPE = { namespace: "round-rectangle", workload: "ellipse", service: "diamond", host: "rectangle", networkset: "hexagon",
  domain: "tag", net: "octagon", more: "ellipse", withheld: "ellipse" };
const FILL = { namespace: "#dbe7fb", workload: "#2f6fdf", service: "#7b5ea7", host: "#5d6d7e", networkset: "#16a085",
  domain: "#e67e22", net: "#c0392b", more: "#aab4bf", withheld: "#cfd6dd" };

export function graph(main, r) {
  const clusters = readable("flows");
  main.append(h("h2", {}, "Flow visualizer"));
  if (!clusters.length) { main.append(notReadable("flows")); rendered("graph"); return; }
  const p = r.params;
  const expand = (p.get("expand") || "").split(",").filter(Boolean);
  const ns = h("input", { id: "g-namespace", placeholder: "namespace", value: p.get("ns") || "", size: 12 });
  const action = h("select", { id: "g-action" }, ["", "allow", "deny"].map((a) => h("option", { value: a, selected: a === (p.get("action") || "") }, a ? `${a} only` : "allowed + denied")));
  const policy = h("input", { id: "g-policy", placeholder: "policy name", value: p.get("policy") || "", size: 14 });
  const metric = h("select", { id: "g-metric" }, [["bytes", "size by bytes"], ["flows", "size by flows"]].map(([v, t]) => h("option", { value: v, selected: v === (p.get("metric") || "bytes") }, t)));
  const cap = h("select", { id: "g-cap" }, [20, 40, 60, 100, 200].map((n) => h("option", { value: n, selected: String(n) === (p.get("cap") || "60") }, `${n} nodes max`)));
  const apply = (extra = {}) => {
    const q = new URLSearchParams({ ns: ns.value, action: action.value, policy: policy.value, metric: metric.value, cap: cap.value, expand: expand.join(","), ...extra });
    location.hash = "#/graph?" + q;
  };
  main.append(h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } }, ns, action, policy, metric, cap,
    h("button", { class: "primary", type: "submit" }, "Apply"),
    expand.length ? h("button", { type: "button", onclick: () => { expand.length = 0; apply({ expand: "" }); } }, "Collapse all") : null,
    h("span", { class: "legend" }, h("span", {}, h("i", { style: "background:#2e9d5b" }), "allowed"), h("span", {}, h("i", { style: "background:#d64545" }), "denied"),
      h("span", {}, h("i", { style: "background:#e69a1c" }), "mixed"), h("span", { class: "muted" }, "double-click a namespace to expand it"))));
  const byCluster = clusters.length > 1;
  const legend = h("div", { class: "graph-legend", id: "graph-legend" });
  main.append(legend);
  const cyEl = h("div", { id: "cy" });
  const side = h("div", { class: "side", id: "graph-side" }, h("div", { class: "muted" }, "Click an edge to list its flows, or a node for its details."));
  main.append(h("div", { class: "graphwrap" }, cyEl, side));

  // Clicks answer in order: a slow answer for an earlier click never replaces a later click's panel.
  let clickSeq = 0;
  const parts = [];
  if (ns.value) parts.push(`(source_namespace = ${quote(ns.value)} OR dest_namespace = ${quote(ns.value)})`);
  if (action.value) parts.push(`action = ${quote(action.value)}`);
  if (policy.value) parts.push(`policies.enforced_policies IN {${quote("*" + policy.value + "*")}}`);
  const selector = parts.join(" AND ");

  // cytoscape loads beside the graph's data (asked for first, so it is parsed while the server answers).
  Promise.all([lib("cytoscape"),
    api("POST", "/api/v1/flows/graph", { time_range: timeRange(), selector: selector || undefined, expand, max_nodes: +cap.value, by_cluster: byCluster }, { clusters })])
    .then(([, g]) => draw(g)).catch((err) => { showError(side, err); rendered("graph"); });

  function draw(g) {
    const by = metric.value;
    const wmax = Math.max(1, ...g.edges.map((e) => e[by]));
    const nmax = Math.max(1, ...g.nodes.map((n) => n[by]));
    const ids = new Set(g.nodes.map((n) => n.id));
    // With several clusters every node sits in its cluster's box (the two clusters' `shop` are two nodes).
    const boxes = byCluster ? [...new Set(g.nodes.map((n) => n.cluster).filter(Boolean))].sort() : [];
    const parentOf = (n) => (n.parent && ids.has(n.parent) ? n.parent : n.cluster && boxes.length ? "cl|" + n.cluster : undefined);
    const els = [
      ...boxes.map((c) => ({ data: { id: "cl|" + c, label: `cluster ${c}`, type: "cluster", cluster: c }, classes: "cluster" })),
      ...g.nodes.map((n) => ({ data: { ...n, parent: parentOf(n), label: n.label + (n.expandable ? " ⊕" : ""),
        size: 22 + 38 * Math.sqrt(n[by] / nmax) }, classes: n.type + (n.expanded ? " expanded" : "") })),
      ...g.edges.map((e) => ({ data: { ...e, w: 1.2 + 5 * Math.sqrt(e[by] / wmax) } })),
    ];
    drawLegend(g, boxes);
    if (!g.nodes.length) side.replaceChildren(h("div", { class: "empty" }, "No flows in this range"));
    const cy = cytoscape({
      container: cyEl, elements: els, wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 3,
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 11, color: "#1d2733", "text-valign": "bottom", "text-margin-y": 4,
          width: "data(size)", height: "data(size)", "background-color": (n) => FILL[n.data("type")] || "#888", shape: (n) => SHAPE[n.data("type")] || "ellipse",
          "border-width": 1, "border-color": "#fff", "text-wrap": "ellipsis", "text-max-width": 140 } },
        { selector: "node.namespace", style: { "background-color": "#dbe7fb", "border-color": "#2f6fdf", "border-width": 2, color: "#1d3f80", "font-weight": 600 } },
        { selector: "node.more", style: { "border-style": "dashed", "border-color": "#7f8c8d", "border-width": 2 } },
        { selector: ":parent", style: { "text-valign": "top", "text-halign": "center", "background-opacity": 0.35, "padding": 14, shape: "round-rectangle" } },
        { selector: "node[denied_flows > 0]", style: { "border-color": "#d64545", "border-width": 2 } },
        { selector: "node.cluster", style: { "background-color": "#f4f6f9", "background-opacity": 1, "border-color": "#7f8c8d", "border-width": 1,
          "border-style": "dashed", color: "#3a4756", "font-weight": 700, "font-size": 12, padding: 18, "text-max-width": 600 } },
        { selector: "edge", style: { width: "data(w)", "line-color": (e) => EDGE[e.data("action")], "target-arrow-color": (e) => EDGE[e.data("action")],
          "target-arrow-shape": "triangle", "curve-style": "bezier", "control-point-step-size": 28, opacity: 0.75, "arrow-scale": 0.9,
          "overlay-padding": 2 } },
        { selector: "edge:selected", style: { opacity: 1, "z-index": 99, "underlay-color": "#f0a830", "underlay-opacity": 0.5, "underlay-padding": 3 } },
        { selector: "edge[action = 'deny']", style: { "line-style": "dashed", opacity: 0.95 } },
        { selector: ":selected", style: { "overlay-color": "#f0a830", "overlay-opacity": 0.25, opacity: 1 } },
      ],
      layout: expand.length ? { name: "preset", positions: layered(g), fit: true, padding: 24 }
        : boxes.length ? { name: "preset", fit: false }  // sideBySide lays the boxes out and fits once
        : { name: "cose", animate: false, randomize: false, nodeRepulsion: () => 12000, idealEdgeLength: () => 90,
          gravity: 2, componentSpacing: 60, nodeDimensionsIncludeLabels: true, padding: 20, numIter: 1000 },
    });
    if (boxes.length && !expand.length) sideBySide(cy, boxes);
    window.__margayGraph = { cy, data: g };
    cy.on("tap", "edge", (ev) => { cy.elements().unselect(); ev.target.select(); edgeFlows(ev.target.data()); });
    cy.on("tap", "node", (ev) => { if (ev.target.data("type") !== "cluster") nodeInfo(ev.target.data()); });
    cy.on("dbltap", "node", (ev) => {
      const d = ev.target.data();
      if (d.type === "namespace" && !d.expanded) { expand.push(d.namespace); apply(); }
      else if (d.type === "namespace" && d.expanded) { apply({ expand: expand.filter((x) => x !== d.namespace).join(",") }); }
    });
    cyEl.dataset.nodes = g.nodes.length; cyEl.dataset.edges = g.edges.length;
    if (g.truncated) side.prepend(h("div", { class: "explain" }, `${g.hidden_nodes} smaller nodes are folded into “${g.hidden_nodes} more”. Raise the node cap or filter by namespace to see them.`));
    rendered("graph");
  }

  // With namespaces expanded: a layered (hierarchical) layout like Calico's Service Graph. Each node's
  // column is its depth along the traffic (clients left, services, then the workloads behind them and
  // what they call); each expanded namespace, and the loose nodes of each cluster, get their own band of
  // rows, so the namespaces' boxes never overlap and edges run left to right.
  function layered(g) {
    const leaves = g.nodes.filter((n) => !n.expanded);
    const idx = new Map(leaves.map((n) => [n.id, n]));
    const out = new Map(leaves.map((n) => [n.id, []]));
    for (const e of g.edges) if (e.source !== e.target && idx.has(e.source) && idx.has(e.target)) out.get(e.source).push(e.target);
    // Longest path from the sources over the edges, cycles broken at the edges that close them.
    const rank = new Map(), state = new Map(), order = [];
    const visit = (id) => {
      state.set(id, 1);
      for (const t of out.get(id)) if (!state.has(t)) visit(t);
      state.set(id, 2); order.push(id);
    };
    for (const n of leaves) if (!state.has(n.id)) visit(n.id);
    order.reverse();
    const pos = new Map(order.map((id, i) => [id, i]));
    for (const id of order) rank.set(id, rank.get(id) || 0);
    for (const id of order) for (const t of out.get(id)) if (pos.get(t) > pos.get(id)) rank.set(t, Math.max(rank.get(t), rank.get(id) + 1));
    const band = (n) => `${n.cluster || ""}\u0000${n.parent ? "1" + n.parent : "0"}`;
    const bands = [...new Set(leaves.map(band))].sort();
    const at = {};
    let y = 0, lastCluster = null;
    for (const b of bands) {
      const cluster = b.split("\u0000")[0];
      if (lastCluster !== null && cluster !== lastCluster) y += 80;
      lastCluster = cluster;
      const cols = new Map();
      for (const n of leaves.filter((x) => band(x) === b).sort((p, q) => p.type.localeCompare(q.type) || p.label.localeCompare(q.label))) {
        const r = rank.get(n.id);
        if (!cols.has(r)) cols.set(r, []);
        cols.get(r).push(n);
      }
      // Columns left to right; in each, nodes ordered by the mean row of what sends to them (fewer
      // crossings), and every other column half a row down so no two edges run along one line.
      const ins = new Map();
      for (const e of g.edges) if (e.source !== e.target) { if (!ins.has(e.target)) ins.set(e.target, []); ins.get(e.target).push(e.source); }
      let rows = 0;
      for (const r of [...cols.keys()].sort((p, q) => p - q)) {
        const list = cols.get(r);
        const bary = (n) => { const ys = (ins.get(n.id) || []).filter((id) => at[id]).map((id) => at[id].y); return ys.length ? ys.reduce((p, q) => p + q, 0) / ys.length : Infinity; };
        const keyed = list.map((n, i) => [bary(n), i, n]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
        keyed.forEach(([, , n], i) => { at[n.id] = { x: r * 230, y: y + i * 74 + (r % 2) * 37 + (r % 3 === 2 ? 18 : 0) }; });
        rows = Math.max(rows, list.length + 1);
      }
      y += rows * 74 + 70;
    }
    return (node) => at[node.id()] || { x: 0, y: 0 };
  }

  // Several clusters, collapsed: each cluster's graph laid out on its own (one force layout over all of them
  // drifts the boxes apart and leaves them tiny): up to three side by side, more in a grid of boxes sized by
  // their nodes, so a fleet's many small clusters stay readable when fitted.
  function sideBySide(cy, boxes) {
    const GAP = 160, few = boxes.length <= 3;
    const cols = few ? boxes.length : Math.ceil(Math.sqrt(boxes.length));
    let x = 0, y = 0, rowH = 0, right = 0;
    boxes.forEach((c, i) => {
      const box = cy.$id("cl|" + c), kids = box.descendants();
      const W = few ? 900 : Math.min(900, 160 + 140 * Math.sqrt(kids.length)), H = few ? 1000 : W;
      if (i && i % cols === 0) { x = 0; y += rowH + GAP / 3; rowH = 0; }
      const inside = new Set(kids.map((n) => n.id()));
      const edges = kids.connectedEdges().filter((e) => inside.has(e.source().id()) && inside.has(e.target().id()));
      box.union(kids).union(edges).layout({ name: "cose", animate: false, randomize: false, fit: false, boundingBox: { x1: x, y1: y, w: W, h: H },
        nodeRepulsion: () => 12000, idealEdgeLength: () => 90, gravity: 2, componentSpacing: 60, nodeDimensionsIncludeLabels: true, numIter: 1000 }).run();
      if (few) { x += W + GAP; rowH = H; right = x; return; }
      // In the grid each box takes the room its layout used (a one-namespace cluster is small).
      const bb = box.boundingBox(), dx = x - bb.x1, dy = y - bb.y1;
      kids.filter((n) => !n.isParent()).positions((n) => ({ x: n.position("x") + dx, y: n.position("y") + dy }));
      x += bb.w + GAP / 3; rowH = Math.max(rowH, bb.h); right = Math.max(right, x);
    });
    const loose = cy.nodes().filter((n) => !n.isParent() && !n.data("cluster"));
    loose.forEach((n, j) => n.position({ x: right, y: (few ? 500 : rowH / 2) + j * 80 }));
    cy.fit(undefined, 20);
  }

  // What the shapes and colours mean, for the node types on screen.
  function drawLegend(g, boxes) {
    const types = [...new Set(g.nodes.filter((n) => !n.expanded || n.type !== "namespace").map((n) => n.type))];
    const items = types.map((t) => h("span", { class: "lg", "data-type": t }, h("i", { class: `shape ${SHAPE[t] || "ellipse"}`, style: `background:${FILL[t] || "#888"}` }), NAMES[t] || t));
    if (g.nodes.some((n) => n.expanded)) items.push(h("span", { class: "lg" }, h("i", { class: "shape box ns" }), "expanded namespace"));
    if (boxes.length) items.push(h("span", { class: "lg", "data-type": "cluster" }, h("i", { class: "shape box cl" }), `cluster (${boxes.length} selected)`));
    items.push(h("span", { class: "lg" }, h("i", { class: "shape ring" }), "has denied flows"));
    legend.replaceChildren(h("b", {}, "Nodes: "), ...items);
  }

  function nodeInfo(n) {
    const kids = [h("h3", {}, n.label.replace(" ⊕", "")), h("div", { class: "kv" },
      h("div", {}, "type"), h("div", {}, NAMES[n.type] || n.type), n.cluster ? h("div", {}, "cluster") : null, n.cluster ? h("div", {}, n.cluster) : null,
      h("div", {}, "flows"), h("div", {}, fmtNum(n.flows)),
      h("div", {}, "denied flows"), h("div", {}, fmtNum(n.denied_flows)), h("div", {}, "bytes"), h("div", {}, fmtBytes(n.bytes)))];
    if (n.selector) kids.push(h("p", {}, h("a", { href: explorerLink("flows", [selector, n.selector].filter(Boolean).map((s) => `(${s})`).join(" AND ")) }, "open its flow logs in the explorer →")));
    if (n.type === "namespace") kids.push(h("p", {}, h("button", { class: "btn", onclick: () => { if (!n.expanded) { expand.push(n.namespace); apply(); } else apply({ expand: expand.filter((x) => x !== n.namespace).join(",") }); } }, n.expanded ? "Collapse" : "Expand to workloads and services")));
    const dns = h("div", { id: "node-dns" }), http = h("div", { id: "node-http" });
    kids.push(dns, http);
    side.replaceChildren(...kids);
    delete side.dataset.edge;
    appDetails(n, dns, http, ++clickSeq);
  }

  // DNS lookups a node made and HTTP requests it sent or served (from the DNS and L7 logs).
  async function appDetails(n, dnsEl, httpEl, mine) {
    const c = n.cluster ? `cluster = ${quote(n.cluster)} AND ` : "";
    const ns = quote(n.namespace || "");
    let dnsSel = null, httpSel = null;
    if (n.type === "namespace") { dnsSel = `client_namespace = ${ns}`; httpSel = `(src_namespace = ${ns} OR dest_namespace = ${ns})`; }
    else if (n.type === "workload") {
      const w = quote(n.label);
      dnsSel = `client_namespace = ${ns} AND client_name_aggr = ${w}`;
      httpSel = `((src_namespace = ${ns} AND src_name_aggr = ${w}) OR (dest_namespace = ${ns} AND dest_name_aggr = ${w}))`;
    } else if (n.type === "service") httpSel = `dest_service_namespace = ${ns} AND dest_service_name = ${quote(n.label)}`;
    const part = async (el, type, sel, title, key, fmt) => {
      if (!sel) return;
      const cl = n.cluster ? readable(type).filter((x) => x === n.cluster) : readable(type);  // keeps `all`
      if (!cl.length) { el.replaceChildren(h("h4", {}, title), h("div", { class: "muted" }, `no ${type} logs readable here`)); return; }
      try {
        const res = await api("POST", `/api/v1/${type}/logs/aggregation`, { time_range: timeRange(), selector: c + sel,
          aggregations: { k: { terms: { field: key, size: 200 }, aggs: { c: { sum: { field: "count" } }, ...(type === "l7" ? { r: { terms: { field: "response_code", size: 5 } } } : {}) } } } }, { clusters: cl });
        if (mine !== clickSeq) return;
        const rows = res.k.buckets.map((b) => [b.key, b.c.value, b]).sort((a, b) => b[1] - a[1]).slice(0, 8);
        el.replaceChildren(h("h4", {}, title), rows.length ? h("table", { class: "data mini" }, h("tbody", {}, rows.map(([k, v, b]) => h("tr", {}, h("td", { title: k }, k), h("td", {}, fmt(v, b))))))
          : h("div", { class: "muted" }, "none in this range"),
        h("a", { href: explorerLink(type, c + sel) }, `${type === "dns" ? "DNS" : "L7"} logs in the explorer →`));
      } catch (err) { showError(el, err); }
    };
    await Promise.all([part(dnsEl, "dns", dnsSel, "DNS lookups", "qname", (v) => `${fmtNum(v)} lookups`),
      part(httpEl, "l7", httpSel, "HTTP requests", "url", (v, b) => `${fmtNum(v)} · ${b.r.buckets.map((x) => x.key).join(" ")}`)]);
    if (mine === clickSeq) side.dataset.details = n.id;
  }

  async function edgeFlows(e) {
    side.dataset.edge = e.id;
    const mine = ++clickSeq;
    const title = h("h3", {}, `${label(e.source)} → ${label(e.target)}`);
    const summary = h("div", { class: "muted" }, h("span", { class: `pill ${e.action}` }, e.action), ` ${fmtNum(e.flows)} flows, ${fmtNum(e.denied_flows)} denied, ${fmtBytes(e.bytes)}`);
    if (!e.selector) { side.replaceChildren(title, summary, h("p", { class: "explain" }, "This edge joins folded nodes; filter or raise the node cap to list its flows.")); return; }
    const list = h("div", { id: "edge-flows" }, h("div", { class: "muted" }, "loading…"));
    side.replaceChildren(title, summary, h("p", {}, h("a", { href: explorerLink("flows", e.selector) }, "open in the explorer →")), list);
    try {
      const res = await api("POST", "/api/v1/flows", { time_range: timeRange(), selector: e.selector, max_page_size: 50 }, { clusters });
      if (mine !== clickSeq) return;
      list.replaceChildren(...res.items.map((f) => {
        const k = f.key;
        const pols = (f.enforced_policies || []).slice().sort((a, b) => a.order - b.order);
        return h("div", { class: "flowitem", "data-action": k.action },
          h("div", {}, h("span", { class: `pill ${k.action}` }, k.action), " ", h("b", {}, `${k.source.namespace}/${k.source.aggregated_name}`), " → ",
            h("b", {}, `${k.destination.namespace}/${k.destination.aggregated_name}`), `:${k.destination.port ?? ""}/${k.protocol}`),
          h("div", { class: "muted" }, `reporter ${k.reporter} · ${k.cluster} · ${fmtNum(f.log_stats.count)} flows · ${fmtBytes(f.connection_stats.bytes_in + f.connection_stats.bytes_out)}`),
          h("ol", { class: "trace" }, pols.map((pp) => h("li", { class: pp.action }, readableHit(pp)))));
      }));
      if (!res.items.length) list.replaceChildren(h("div", { class: "empty" }, "No flows"));
    } catch (err) { showError(list, err); }
  }
  function label(id) {
    const n = (window.__margayGraph.data.nodes || []).find((x) => x.id === id);
    return n ? (byCluster && n.cluster ? `${n.cluster}: ` : "") + n.label : id;
  }
}
