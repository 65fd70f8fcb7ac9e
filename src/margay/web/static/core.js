// Shared state and helpers: the cluster and time selection, and the JSON API client.
// The token never reaches page scripts: sign-in hands it to the server, which answers with an HttpOnly
// session cookie (web/session.py); state-changing calls echo the readable CSRF cookie in a header.
import { fmtTime, isUTC, setUTC, span } from "./time.js";

export { fmtTime };

export const state = {
  me: null,          // GET /api/v1/whoami
  types: {},         // GET /api/v1/logtypes, by name
  clusters: storedClusters(),  // the selected clusters' names (every readable one when `all`)
  all: localStorage.getItem("margay.clusters") === '"*"',  // every cluster: requests say all_clusters, not names
  range: { from: "now-3h", to: "now" },
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.type = e.type; this.details = e.details || {};
  }
}

function storedClusters() {
  const v = JSON.parse(localStorage.getItem("margay.clusters") || "null");
  return Array.isArray(v) ? v : null;
}

// `clusters`: the names a read is for; a list carrying `all` (from readable() while every cluster is selected)
// goes out as `all_clusters: true` instead of a thousand names (the server narrows it to what the viewer may read).
export async function api(method, path, body, { clusters } = {}) {
  const headers = { "content-type": "application/json" };
  const csrf = csrfToken();
  if (csrf) headers["x-csrf-token"] = csrf;
  let payload = body ? { ...body } : undefined;
  if (clusters) {
    if (clusters.length === 1) headers["x-cluster-id"] = clusters[0];
    else if (clusters.all) { headers["x-cluster-id"] = "_MULTI_"; payload = { ...(payload || {}), all_clusters: true }; }
    else { headers["x-cluster-id"] = "_MULTI_"; payload = { ...(payload || {}), clusters }; }
  }
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: payload ? JSON.stringify(payload) : undefined });
  return answer(res);
}

async function answer(res) {
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

// A request answered in NDJSON lines (POST /api/v1/aggregations with Accept: application/x-ndjson): `line`
// gets each parsed line as it arrives, so a page draws what is ready while the server works on the rest.
export async function apiLines(path, body, line) {
  const headers = { "content-type": "application/json", accept: "application/x-ndjson", "x-cluster-id": "_MULTI_" };
  const csrf = csrfToken();
  if (csrf) headers["x-csrf-token"] = csrf;
  const res = await fetch(path, { method: "POST", headers, credentials: "same-origin", body: JSON.stringify(body) });
  if (!res.ok || !res.body) return answer(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (text.trim()) line(JSON.parse(text));
    }
  }
  if (buf.trim()) line(JSON.parse(buf));
}

// The clusters of a read as body fields under x-cluster-id _MULTI_ (a batch item's own selection).
export function clusterFields(clusters) {
  return clusters.all ? { all_clusters: true } : { clusters: [...clusters] };
}

function csrfToken() {
  const m = /(?:^|;\s*)margay_csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}

// Text for places that take markup (echarts' HTML tooltips): data is never markup.
export function esc(v) {
  return String(v).replace(/[&<>"'`=]/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

// The clusters of the selection the viewer may read for a UI log type (flows, dns, audit, bgp, events, l7, waf, policy_activity, runtime);
// marked `all` while every cluster is selected (api() then asks for all_clusters).
export function readable(type) {
  const per = (state.me && state.me.readable[type]) || {};
  const out = (state.clusters || []).filter((c) => per[c]);
  if (state.all) out.all = true;
  return out;
}

// Select clusters (`null`: all of them); kept for the next visit. The caller navigates.
export function selectClusters(names) {
  const mine = (state.me && state.me.clusters) || [];
  state.all = names == null;
  state.clusters = state.all ? mine.slice() : mine.filter((c) => names.includes(c));
  localStorage.setItem("margay.clusters", JSON.stringify(state.all ? "*" : state.clusters));
}

export function timeRange() { return { from: state.range.from, to: state.range.to }; }

export function rangeSeconds() {
  const [a, b] = span(state.range);
  return Math.max(60, (b - a) / 1000);
}

// The view's global state lives in the URL's hash too (`from`, `to`, `clusters`, `tz` beside a page's own
// parameters), so a link reproduces a view and back/forward step through changes of range or clusters.
const GLOBAL = ["from", "to", "clusters", "tz"];
export function globalParams() {
  return { from: state.range.from, to: state.range.to, clusters: state.all ? "*" : (state.clusters || []).join(","), tz: isUTC() ? "utc" : "local" };
}
// `hash` with the current global state (page parameters kept, global ones replaced).
export function withGlobals(hash, globals = globalParams()) {
  const [path, qs] = String(hash || "#/overview").replace(/^#?/, "#").split("?");
  const p = new URLSearchParams(qs || "");
  for (const k of GLOBAL) p.delete(k);
  for (const k of GLOBAL) if (globals[k]) p.set(k, globals[k]);
  return `${path}?${p}`;
}
// A hash without the global parameters (what a page compares its own links with).
export function pageHash(hash) { return withGlobals(hash, {}).replace(/\?$/, ""); }
// Apply the global parameters of a hash to the state; true when the hash carried any.
export function globalsFrom(params, readableClusters) {
  let any = false;
  const from = params.get("from"), to = params.get("to");
  if (from && to && validRange(from) && validRange(to)) { state.range = { from, to }; any = true; }
  const cl = params.get("clusters");
  if (cl === "*") {  // every cluster (`*` is no cluster name)
    state.all = true; state.clusters = readableClusters.slice(); any = true;
  } else if (cl != null) {
    const want = cl.split(",").filter((c) => readableClusters.includes(c));
    if (want.length) { state.clusters = want; state.all = false; }
    any = true;
  }
  const tz = params.get("tz");
  if (tz === "utc" || tz === "local") { setUTC(tz === "utc"); any = true; }
  return any;
}
function validRange(v) { return v === "now" || /^now-\d+[smhdw]$/.test(v) || !isNaN(Date.parse(v)); }

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
// The same for a policy already parsed by the server (L3 flows' {tier, namespace, name, action, rule_id,
// is_staged, is_kubernetes, is_profile}). A Kubernetes NetworkPolicy reads `k8s › ns/name`, a profile
// `profile › name`: neither is a Calico policy of the tier it is filed under.
export function readableHit(p) {
  const where = p.namespace ? p.namespace + "/" : "";
  const r = p.rule ?? p.rule_id;
  const rule = r === -1 ? "no rule matched (tier default)" : r === -2 ? "unknown rule" : `rule ${r}`;
  const kind = p.k8s || p.is_kubernetes ? "k8s" : p.profile || p.is_profile ? "profile" : p.tier;
  return `${kind} › ${where}${p.name}${p.staged || p.is_staged ? " (staged)" : ""} › ${p.action} › ${rule}`;
}

// A CSV cell as the server's report files write it (reports/csvout.py): text a spreadsheet would run as a
// formula (= + - @ tab or CR first) gets a leading ' unless it is a plain number or the "-" placeholder;
// numbers stay numbers; quoted (quotes doubled) when it holds a comma, quote, CR or newline.
const FORMULA_START = /^[=+\-@\t\r]/, PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
export function csvCell(v) {
  let s = v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  if (typeof v !== "number" && FORMULA_START.test(s) && s !== "-" && !PLAIN_NUMBER.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

// The enforced policy that decided a flow: the last allow/deny in evaluation order (pass hands on to the
// next tier), with what kind of policy it is. `text` is the rule of margay.logtypes.policy.verdict.
export function verdict(enforced) {
  const hits = (enforced || []).map(parsePolicy).filter(Boolean).sort((a, b) => a.order - b.order);
  const final = hits.filter((p) => p.action === "allow" || p.action === "deny");
  if (!final.length) return null;
  const p = final[final.length - 1];
  const where = p.namespace ? p.namespace + "/" : "";
  const what = p.profile ? `profile ${p.name}` : p.k8s ? `k8s ${where}${p.name}` : `${where}${p.tier}.${p.name}`;
  const staged = p.staged ? " (staged)" : "";
  const rule = p.rule === -1 ? " (end of tier)" : p.rule >= 0 && !p.profile ? ` rule ${p.rule}` : "";
  const kind = p.profile ? "profile" : p.k8s ? "k8s" : "calico";
  return { ...p, kind, endOfTier: p.rule === -1, policy: `${where}${p.profile || p.k8s ? "" : p.tier + "."}${p.name}`,
    text: `${p.action} ${what}${staged}${rule}` };
}

// One table cell for a flow's enforced policies: the action, a marker of the policy's kind (Calico,
// K8s, profile), staged and end-of-tier markers, and the policy's name; the full trace on hover.
export function verdictCell(enforced) {
  const v = verdict(enforced);
  if (!v) return h("span", { class: "muted" }, "no policy");
  const label = { calico: "Calico", k8s: "K8s", profile: "profile" }[v.kind];
  return h("span", { class: "verdict", "data-kind": v.kind, title: traceText(enforced) },
    h("span", { class: `pill ${v.action}` }, v.action), " ",
    h("span", { class: `mark ${v.kind}` }, label), " ",
    v.staged ? h("span", { class: "mark staged" }, "staged") : null, v.staged ? " " : null,
    v.endOfTier ? h("span", { class: "mark eot", title: "no rule matched: the tier's default action" }, "end of tier") : null,
    v.endOfTier ? " " : null,
    v.kind === "profile" ? v.name : v.policy, v.rule >= 0 && v.kind !== "profile" ? h("small", { class: "muted" }, ` rule ${v.rule}`) : null);
}
function traceText(raws) {
  return (raws || []).map(parsePolicy).filter(Boolean).sort((a, b) => a.order - b.order).map((p) => readableHit(p)).join("\n");
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

// Why a page or panel has nothing to draw: an empty server, a log type that has not arrived yet, or RBAC.
export function notReadable(type, what) {
  const all = state.clusters || [];
  const me = state.me || {};
  if (me.empty) {
    return h("div", { class: "explain", "data-testid": "empty-server" }, "No logs yet — point an agent at this server: ",
      h("code", {}, `margay agent --server ${location.origin} --token-file <token file> …`),
      " (docs/agent.md), or run ", h("code", {}, "make demo"), " for simulated traffic.");
  }
  const logs = (me.logs || {})[type];
  if (logs === "none_yet") {
    return h("div", { class: "explain", "data-testid": "none-yet" },
      `No ${what || type} logs have arrived yet from any cluster.` + (type === "l7" ? " L7 logs are off by default in Calico (enable them per workload)." : ""));
  }
  return h("div", { class: "explain", "data-testid": "forbidden" },
    `${state.me ? state.me.user : "You"} may not read ${what || type} logs of ${all.length === 1 ? "cluster " + all[0] : "the selected clusters"}` +
    " (RBAC: lma.tigera.io, verb get). Ask an administrator, or pick another cluster.");
}

export function showError(el, err) {
  el.replaceChildren(h("div", { class: "error" }, err.message || String(err)));
}

// The charts of the page on screen: resized with the window, disposed when the page changes.
let charts = [];
export function track(chart) { charts.push(chart); return chart; }
export function disposeCharts() { charts.forEach((c) => c.dispose()); charts = []; }
// "auto": the element's size now (a chart made with a measured width and height would otherwise keep it).
window.addEventListener("resize", () => charts.forEach((c) => c.resize({ width: "auto", height: "auto" })));

// The vendored libraries (`echarts`, `cytoscape`: globals, web/pages.py serves them) load when a page first
// needs one, not in the shell's head: no page waits for a library it does not draw with, and a page that does
// asks for it before its data (the browser parses it while the server answers). Each loads once.
const libs = {};
// Fetch a library without running it yet (the shell's first page: it downloads while the session is checked,
// before the page's requests keep the server busy; lib() then runs it from the cache).
export function preloadLib(name) {
  if (libs[name] || document.querySelector(`link[data-lib="${name}"]`)) return;
  document.head.append(h("link", { rel: "preload", as: "script", href: `/ui/vendor/${name}.js`, fetchpriority: "high", "data-lib": name }));
}
export function lib(name) {
  if (!libs[name]) {
    libs[name] = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = `/ui/vendor/${name}.js`;
      s.fetchPriority = "high";  // a script added by code is low priority: it would wait behind the page's API calls
      s.onload = () => (window[name] ? resolve(window[name]) : reject(new Error(`${name} is not defined`)));
      s.onerror = () => { delete libs[name]; reject(new Error(`${name} could not be loaded from /ui/vendor/${name}.js (not installed? \`make venv\` installs the UI's libraries)`)); };
      document.head.append(s);
    });
  }
  return libs[name];
}

// Pages report when their first data has been drawn (the benchmark and the tests wait for it).
export function rendered(page) {
  window.__margayRendered = window.__margayRendered || {};
  window.__margayRendered[page] = performance.now();
  document.body.dataset.rendered = page;
}
