// Shared state and helpers: the cluster and time selection, and the JSON API client.
// The token never reaches page scripts: sign-in hands it to the server, which answers with an HttpOnly
// session cookie (web/session.py); state-changing calls echo the readable CSRF cookie in a header.
export const state = {
  me: null,          // GET /api/v1/whoami
  types: {},         // GET /api/v1/logtypes, by name
  clusters: JSON.parse(localStorage.getItem("margay.clusters") || "null"),
  range: { from: "now-3h", to: "now" },
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.type = e.type; this.details = e.details || {};
  }
}

export async function api(method, path, body, { clusters } = {}) {
  const headers = { "content-type": "application/json" };
  const csrf = csrfToken();
  if (csrf) headers["x-csrf-token"] = csrf;
  let payload = body ? { ...body } : undefined;
  if (clusters) {
    if (clusters.length === 1) headers["x-cluster-id"] = clusters[0];
    else { headers["x-cluster-id"] = "_MULTI_"; payload = { ...(payload || {}), clusters }; }
  }
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: payload ? JSON.stringify(payload) : undefined });
  const text = await res.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, doc);
    if (res.status === 401) window.dispatchEvent(new CustomEvent("margay:unauthorized"));
    throw err;
  }
  return doc;
}

function csrfToken() {
  const m = /(?:^|;\s*)margay_csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}

// Text for places that take markup (echarts' HTML tooltips): data is never markup.
export function esc(v) {
  return String(v).replace(/[&<>"'`=]/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

// The clusters of the selection the viewer may read for a UI log type (flows, dns, audit, bgp, events, l7).
export function readable(type) {
  const per = (state.me && state.me.readable[type]) || {};
  return (state.clusters || []).filter((c) => per[c]);
}

export function timeRange() { return { from: state.range.from, to: state.range.to }; }

export function rangeSeconds() {
  const rel = /^now-(\d+)([smhdw])$/.exec(state.range.from);
  if (rel && state.range.to === "now") return +rel[1] * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2]];
  const a = Date.parse(state.range.from), b = state.range.to === "now" ? Date.now() : Date.parse(state.range.to);
  return Math.max(60, (b - a) / 1000);
}

// A date_histogram interval giving about `buckets` bars over the range.
export function interval(buckets = 60) {
  const span = rangeSeconds();
  for (const s of [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]) if (span / s <= buckets) return s;
  return 86400;
}

export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid.nodeType ? kid : String(kid));
  return el;
}

export function fmtNum(n) {
  if (n == null) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
export function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0; let v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}
export function fmtTime(v) {
  if (v == null || v === "") return "";
  const d = typeof v === "number" ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  if (isNaN(d)) return String(v);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:00Z$/, "Z");
}

// `tier › ns/policy (staged) › action › rule N`: the rule of margay.logtypes.policy.readable.
export function parsePolicy(raw) {
  const parts = String(raw).split("|");
  if (parts.length !== 5) return null;
  let [order, tier, policy, action, rule] = parts;
  order = /^-?\d+$/.test(order) ? +order : -1;
  rule = /^-?\d+$/.test(rule) ? +rule : -2;
  let ns = "", name = policy;
  const slash = policy.indexOf("/");
  if (slash >= 0) { ns = policy.slice(0, slash); name = policy.slice(slash + 1); }
  let staged = false;
  if (name.startsWith("staged:")) { staged = true; name = name.slice(7); }
  else if (name.includes(".staged:")) { staged = true; name = name.replace(".staged:", "."); }
  const profile = tier === "__PROFILE__" || name.startsWith("__PROFILE__");
  const k8s = name.startsWith("knp.default.");
  if (k8s) name = name.slice("knp.default.".length);
  else if (!profile && name.startsWith(tier + ".")) name = name.slice(tier.length + 1);
  else if (profile && name.startsWith("__PROFILE__.")) name = name.slice("__PROFILE__.".length);
  return { order, tier, namespace: ns, name, action, rule, staged, k8s, profile, raw };
}
export function readablePolicy(raw) {
  const p = parsePolicy(raw);
  return p ? readableHit(p) : String(raw);
}
// The same for a policy already parsed by the server (L3 flows' {tier, namespace, name, action, rule_id, is_staged}).
export function readableHit(p) {
  const where = p.namespace ? p.namespace + "/" : "";
  const r = p.rule ?? p.rule_id;
  const rule = r === -1 ? "no rule matched (tier default)" : r === -2 ? "unknown rule" : `rule ${r}`;
  return `${p.tier} › ${where}${p.name}${p.staged || p.is_staged ? " (staged)" : ""} › ${p.action} › ${rule}`;
}

export function traceList(raws) {
  const items = (raws || []).map(parsePolicy).filter(Boolean).sort((a, b) => a.order - b.order);
  if (!items.length) return h("div", { class: "muted" }, "none");
  return h("ol", { class: "trace" }, items.map((p) => h("li", { class: p.action, title: p.raw }, readablePolicy(p.raw))));
}

export function quote(v) { return '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"'; }

export function explorerLink(type, selector) {
  const q = new URLSearchParams({ q: selector || "" });
  return `#/explore/${type}?${q}`;
}

export function severityBand(s) {
  return s >= 80 ? "critical" : s >= 60 ? "high" : s >= 30 ? "medium" : "low";
}

export function openDrawer(title, ...content) {
  document.getElementById("drawer-title").textContent = title;
  const body = document.getElementById("drawer-body");
  body.replaceChildren(...content);
  document.getElementById("drawer").hidden = false;
}
export function closeDrawer() { document.getElementById("drawer").hidden = true; }

export function notReadable(type, what) {
  const all = state.clusters || [];
  return h("div", { class: "explain", "data-testid": "forbidden" },
    `${state.me ? state.me.user : "You"} may not read ${what || type} logs of ${all.length === 1 ? "cluster " + all[0] : "the selected clusters"}` +
    " (RBAC: lma.tigera.io, verb get). Ask an administrator, or pick another cluster.");
}

export function showError(el, err) {
  el.replaceChildren(h("div", { class: "error" }, err.message || String(err)));
}

// Pages report when their first data has been drawn (the benchmark and the tests wait for it).
export function rendered(page) {
  window.__margayRendered = window.__margayRendered || {};
  window.__margayRendered[page] = performance.now();
  document.body.dataset.rendered = page;
}
