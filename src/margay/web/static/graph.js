// The flow visualizer: the server's aggregated graph (POST /api/v1/flows/graph) drawn with cytoscape.
import { api, explorerLink, fmtBytes, fmtNum, h, notReadable, quote, readable, readableHit, rendered, showError, state, timeRange } from "./core.js";

const EDGE = { allow: "#2e9d5b", deny: "#d64545", mixed: "#e69a1c" };
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
  const cyEl = h("div", { id: "cy" });
  const side = h("div", { class: "side", id: "graph-side" }, h("div", { class: "muted" }, "Click an edge to list its flows, or a node for its details."));
  main.append(h("div", { class: "graphwrap" }, cyEl, side));

  const parts = [];
  if (ns.value) parts.push(`(source_namespace = ${quote(ns.value)} OR dest_namespace = ${quote(ns.value)})`);
  if (action.value) parts.push(`action = ${quote(action.value)}`);
  if (policy.value) parts.push(`policies.enforced_policies IN {${quote("*" + policy.value + "*")}}`);
  const selector = parts.join(" AND ");

  api("POST", "/api/v1/flows/graph", { time_range: timeRange(), selector: selector || undefined, expand, max_nodes: +cap.value }, { clusters })
    .then((g) => draw(g)).catch((err) => { showError(side, err); rendered("graph"); });

  function draw(g) {
    const by = metric.value;
    const wmax = Math.max(1, ...g.edges.map((e) => e[by]));
    const nmax = Math.max(1, ...g.nodes.map((n) => n[by]));
    const ids = new Set(g.nodes.map((n) => n.id));
    const els = [
      ...g.nodes.map((n) => ({ data: { ...n, parent: n.parent && ids.has(n.parent) ? n.parent : undefined, label: n.label + (n.expandable ? " ⊕" : ""),
        size: 22 + 38 * Math.sqrt(n[by] / nmax) }, classes: n.type + (n.expanded ? " expanded" : "") })),
      ...g.edges.map((e) => ({ data: { ...e, w: 1.5 + 9 * Math.sqrt(e[by] / wmax) } })),
    ];
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
        { selector: "edge", style: { width: "data(w)", "line-color": (e) => EDGE[e.data("action")], "target-arrow-color": (e) => EDGE[e.data("action")],
          "target-arrow-shape": "triangle", "curve-style": "bezier", opacity: 0.75, "arrow-scale": 0.9 } },
        { selector: "edge[action = 'deny']", style: { "line-style": "dashed", opacity: 0.95 } },
        { selector: ":selected", style: { "overlay-color": "#f0a830", "overlay-opacity": 0.25, opacity: 1 } },
      ],
      layout: expand.length ? { name: "preset", positions: grouped(g), fit: true, padding: 24 }
        : { name: "cose", animate: false, randomize: false, nodeRepulsion: () => 12000, idealEdgeLength: () => 90,
          gravity: 2, componentSpacing: 60, nodeDimensionsIncludeLabels: true, padding: 20, numIter: 1000 },
    });
    window.__margayGraph = { cy, data: g };
    cy.on("tap", "edge", (ev) => edgeFlows(ev.target.data()));
    cy.on("tap", "node", (ev) => nodeInfo(ev.target.data()));
    cy.on("dbltap", "node", (ev) => {
      const d = ev.target.data();
      if (d.type === "namespace" && !d.expanded) { expand.push(d.namespace); apply(); }
      else if (d.type === "namespace" && d.expanded) { apply({ expand: expand.filter((x) => x !== d.namespace).join(",") }); }
    });
    cyEl.dataset.nodes = g.nodes.length; cyEl.dataset.edges = g.edges.length;
    if (g.truncated) side.prepend(h("div", { class: "explain" }, `${g.hidden_nodes} smaller nodes are folded into “${g.hidden_nodes} more”. Raise the node cap or filter by namespace to see them.`));
    rendered("graph");
  }

  // With namespaces expanded: their members in grids side by side, every other node on a ring around them.
  function grouped(g) {
    const pos = {}, groups = expand.filter((ns) => g.nodes.some((n) => n.parent === "ns|" + ns));
    let x = 0, maxH = 0;
    for (const ns of groups) {
      const kids = g.nodes.filter((n) => n.parent === "ns|" + ns).sort((a, b) => a.type.localeCompare(b.type) || a.label.localeCompare(b.label));
      const cols = Math.ceil(Math.sqrt(kids.length));
      kids.forEach((n, i) => { pos[n.id] = { x: x + (i % cols) * 120, y: Math.floor(i / cols) * 90 }; });
      x += cols * 120 + 120; maxH = Math.max(maxH, Math.ceil(kids.length / cols) * 90);
    }
    const rest = g.nodes.filter((n) => !n.parent && !n.expanded);
    const cx = (x - 240) / 2, cy = maxH / 2, rx = Math.max(x / 2 + 220, 420), ry = Math.max(maxH / 2 + 200, 300);
    rest.forEach((n, i) => { const a = (2 * Math.PI * i) / rest.length - Math.PI / 2; pos[n.id] = { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) }; });
    return (node) => pos[node.id()] || { x: cx, y: cy };
  }

  function nodeInfo(n) {
    const kids = [h("h3", {}, n.label.replace(" ⊕", "")), h("div", { class: "kv" },
      h("div", {}, "type"), h("div", {}, n.type), h("div", {}, "flows"), h("div", {}, fmtNum(n.flows)),
      h("div", {}, "denied flows"), h("div", {}, fmtNum(n.denied_flows)), h("div", {}, "bytes"), h("div", {}, fmtBytes(n.bytes)))];
    if (n.selector) kids.push(h("p", {}, h("a", { href: explorerLink("flows", [selector, n.selector].filter(Boolean).map((s) => `(${s})`).join(" AND ")) }, "open its flow logs in the explorer →")));
    if (n.type === "namespace") kids.push(h("p", {}, h("button", { class: "btn", onclick: () => { if (!n.expanded) { expand.push(n.namespace); apply(); } else apply({ expand: expand.filter((x) => x !== n.namespace).join(",") }); } }, n.expanded ? "Collapse" : "Expand to workloads and services")));
    side.replaceChildren(...kids);
  }

  async function edgeFlows(e) {
    const title = h("h3", {}, `${label(e.source)} → ${label(e.target)}`);
    const summary = h("div", { class: "muted" }, h("span", { class: `pill ${e.action}` }, e.action), ` ${fmtNum(e.flows)} flows, ${fmtNum(e.denied_flows)} denied, ${fmtBytes(e.bytes)}`);
    if (!e.selector) { side.replaceChildren(title, summary, h("p", { class: "explain" }, "This edge joins folded nodes; filter or raise the node cap to list its flows.")); return; }
    const list = h("div", { id: "edge-flows" }, h("div", { class: "muted" }, "loading…"));
    side.replaceChildren(title, summary, h("p", {}, h("a", { href: explorerLink("flows", e.selector) }, "open in the explorer →")), list);
    try {
      const res = await api("POST", "/api/v1/flows", { time_range: timeRange(), selector: e.selector, max_page_size: 50 }, { clusters });
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
  function label(id) { const n = (window.__margayGraph.data.nodes || []).find((x) => x.id === id); return n ? n.label : id; }
}
