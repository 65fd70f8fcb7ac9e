// The timeline of changes: audit events that created, changed or deleted policies and resources (Calico
// and Kubernetes audit), newest first, each with its before/after diff. "Before" is the object as the
// previous change of the same object in the range left it; a change without one says so.
import { api, fmtTime, h, openDrawer, readable, timeRange } from "./core.js";

const VERBS = ["create", "update", "patch", "delete"];
export const CHANGES_SELECTOR = `verb IN {${VERBS.map((v) => `"${v}"`).join(", ")}} AND objectRef.resource NOTIN {"pods", "events", "leases"}`;

function objectName(ev) {
  const ref = ev.objectRef || {};
  const obj = ev.responseObject || ev.requestObject || {};
  const name = ref.name || (obj.metadata || {}).name || (obj.details || {}).name || "";
  return (ref.namespace ? ref.namespace + "/" : "") + name;
}
const objectKey = (ev) => `${ev.cluster}|${(ev.objectRef || {}).resource}|${objectName(ev)}`;

// The object after this change: what the server answered (a delete leaves nothing).
function after(ev) {
  if (ev.verb === "delete") return null;
  const o = ev.responseObject || ev.requestObject;
  return o && o.kind !== "Status" ? o : null;
}

// path → value of every leaf of a JSON object ("spec.order": 500).
export function flatten(o, pre = "", out = {}) {
  if (o == null) return out;
  if (typeof o !== "object") { out[pre] = o; return out; }
  const entries = Array.isArray(o) ? o.map((v, i) => [String(i), v]) : Object.entries(o);
  if (!entries.length) out[pre] = Array.isArray(o) ? "[]" : "{}";
  for (const [k, v] of entries) flatten(v, pre ? `${pre}.${k}` : k, out);
  return out;
}
// Lines of a before/after diff: [path, before, after, "added" | "removed" | "changed"].
export function diff(before, afterObj) {
  const a = flatten(before), b = flatten(afterObj);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => [k, a[k], b[k], !(k in a) ? "added" : !(k in b) ? "removed" : "changed"]);
}

const BOOKKEEPING = /^metadata\.(resourceVersion|uid|managedFields|generation|creationTimestamp)/;
function summary(r) {
  const { ev, lines, had } = r;
  if (ev.verb === "delete") return "deleted";
  if (!had) return ev.verb === "create" ? "created" : "no earlier state in this range";
  const shown = lines.filter(([k]) => !BOOKKEEPING.test(k));
  if (!shown.length) return "no change to its spec";
  const [k, x, y] = shown[0];
  return `${k}: ${x ?? "∅"} → ${y ?? "∅"}` + (shown.length > 1 ? ` (+${shown.length - 1} more)` : "");
}

export async function changesPanel(el) {
  const clusters = readable("audit");
  const res = await api("POST", "/api/v1/audit/logs", { time_range: timeRange(), type: "any", selector: CHANGES_SELECTOR,
    sort: [{ field: "requestReceivedTimestamp", descending: true }], max_page_size: 500 }, { clusters });
  const items = res.items.filter((ev) => ((ev.responseStatus || {}).code || 200) < 400);
  if (!items.length) { el.replaceChildren(h("div", { class: "empty" }, "No changes to policies or resources in this range")); return; }
  // Oldest first to know each object's state before every change.
  const last = new Map();
  const rows = items.slice().reverse().map((ev) => {
    const key = objectKey(ev);
    const had = last.has(key);
    const before = had ? last.get(key) : null;
    const now = after(ev);
    last.set(key, now);
    const lines = had || ev.verb === "create" ? diff(before, now) : null;
    return { ev, before, now, had, lines };
  }).reverse();
  const body = rows.slice(0, 40).map((r) => {
    const ev = r.ev, ref = ev.objectRef || {};
    const kind = ev.verb === "delete" ? "delete" : !r.had ? (ev.verb === "create" ? "create" : "unknown")
      : r.lines.some(([k]) => !BOOKKEEPING.test(k)) ? "diff" : "same";
    return h("tr", { onclick: () => show(r), "data-verb": ev.verb, "data-kind": kind },
      h("td", {}, fmtTime(ev.requestReceivedTimestamp)), h("td", {}, ev.cluster || ""), h("td", {}, (ev.user || {}).username || ""),
      h("td", {}, h("span", { class: `pill verb-${ev.verb}` }, ev.verb)), h("td", {}, ref.resource || ""), h("td", {}, objectName(ev)),
      h("td", { class: "muted" }, summary(r)));
  });
  el.replaceChildren(h("div", { class: "tablewrap changes" }, h("table", { class: "data", id: "changes" },
    h("thead", {}, h("tr", {}, ["time", "cluster", "user", "verb", "resource", "object", "change"].map((c) => h("th", {}, c)))),
    h("tbody", {}, body))));
  el.dataset.rows = rows.length;
}

function show(r) {
  const ev = r.ev;
  const parts = [h("div", { class: "kv" },
    h("div", {}, "time"), h("div", {}, fmtTime(ev.requestReceivedTimestamp)), h("div", {}, "user"), h("div", {}, (ev.user || {}).username || ""),
    h("div", {}, "verb"), h("div", {}, ev.verb), h("div", {}, "object"), h("div", {}, `${(ev.objectRef || {}).resource} ${objectName(ev)}`),
    h("div", {}, "cluster"), h("div", {}, ev.cluster || ""))];
  if (r.lines && r.lines.length) {
    parts.push(h("h4", {}, r.had ? "before → after" : "created with"), h("table", { class: "data diff", id: "diff" },
      h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "before"), h("th", {}, "after"))),
      h("tbody", {}, r.lines.map(([k, a, b, kind]) => h("tr", { class: kind }, h("td", {}, k), h("td", {}, a == null ? "" : String(a)), h("td", {}, b == null ? "" : String(b)))))));
  } else if (ev.verb === "delete") {
    parts.push(h("p", { class: "muted" }, "Deleted." + (r.before ? " Its last state in this range:" : "")));
    if (r.before) parts.push(h("pre", { class: "json" }, JSON.stringify(r.before, null, 2)));
  } else {
    parts.push(h("p", { class: "muted" }, r.had ? "No field changed." : "No earlier change of this object in the chosen range: widen the range to see what it was before."));
    if (r.now) parts.push(h("h4", {}, "after"), h("pre", { class: "json" }, JSON.stringify(r.now, null, 2)));
  }
  openDrawer(`${ev.verb} ${objectName(ev)}`, ...parts);
}
