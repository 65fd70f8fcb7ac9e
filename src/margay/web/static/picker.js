// The header's cluster picker, built for fleets: a search that asks the server (GET /api/v1/clusters, a page
// at a time, so a thousand names are never drawn at once), All / None, "N of M clusters", and changes that
// apply once, when the menu closes (ticking five boxes reloads the page once, not five times).
import { api, h, selectClusters, state } from "./core.js";

const PAGE = 50;
let draft = null;      // while open: { all, names: Set } — what closing the menu will apply
let search = 0;        // the latest search; older answers are dropped
let timer = null;
let applied = null;    // called after a change was applied (navigates)

const el = (id) => document.getElementById(id);
const mine = () => (state.me && state.me.clusters) || [];
const isOpen = () => el("cluster-picker").classList.contains("open");

export function initPicker(onApply) {
  applied = onApply;
  el("cluster-button").onclick = (e) => { e.stopPropagation(); if (isOpen()) closePicker(); else openPicker(); };
  document.addEventListener("click", (e) => { if (isOpen() && !e.target.closest("#cluster-picker")) closePicker(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && isOpen()) closePicker(); });
}

// The button's text: "Cluster: x", "All 300 clusters" or "12 of 300 clusters".
export function pickerLabel() {
  const n = (state.clusters || []).length, m = mine().length;
  el("cluster-button").textContent = state.me && state.me.empty ? "No clusters yet"
    : n === 1 ? `Cluster: ${state.clusters[0]}` : state.all ? `All ${m} clusters` : `${n} of ${m} clusters`;
}

function openPicker() {
  draft = { all: !!state.all, names: new Set(state.all ? [] : state.clusters || []) };
  const input = h("input", { type: "search", id: "cluster-search", placeholder: "Search clusters…", autocomplete: "off",
    oninput: () => { clearTimeout(timer); timer = setTimeout(() => load(input.value.trim()), 150); } });
  el("cluster-menu").replaceChildren(
    input,
    h("div", { class: "picker-bar" },
      h("button", { type: "button", class: "btn", id: "cluster-all", onclick: () => { draft = { all: true, names: new Set() }; refresh(); } }, "All"),
      h("button", { type: "button", class: "btn", id: "cluster-none", onclick: () => { draft = { all: false, names: new Set() }; refresh(); } }, "None"),
      h("span", { id: "cluster-count" })),
    h("div", { class: "list", id: "cluster-list" }),
    h("div", { id: "cluster-more" }),
    mine().length ? "" : h("div", { class: "note" }, "No cluster you may read has logs yet."));
  el("cluster-picker").classList.add("open");
  refresh();
  load("");
  input.focus();
}

// Closing applies the draft when it differs from the selection (an empty draft changes nothing).
export function closePicker() {
  el("cluster-picker").classList.remove("open");
  clearTimeout(timer);
  search++;
  const d = draft;
  draft = null;
  if (!d || (!d.all && !d.names.size)) return;
  const same = d.all ? state.all : !state.all && d.names.size === state.clusters.length && state.clusters.every((c) => d.names.has(c));
  if (same) return;
  selectClusters(d.all ? null : [...d.names]);
  pickerLabel();
  if (applied) applied();
}

function chosen(c) { return draft.all || draft.names.has(c); }

function toggle(c, on) {
  if (draft.all) draft = { all: false, names: new Set(mine()) };
  if (on) draft.names.add(c); else draft.names.delete(c);
  if (draft.names.size === mine().length) draft = { all: true, names: new Set() };
  refresh();
}

// The count and every drawn box follow the draft.
function refresh() {
  const m = mine().length, n = draft.all ? m : draft.names.size;
  el("cluster-count").textContent = `${n} of ${m} clusters` + (n ? "" : " — pick at least one");
  el("cluster-list").querySelectorAll("input").forEach((i) => { i.checked = chosen(i.value); });
}

async function load(q, after) {
  const mySearch = ++search;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (q) params.set("q", q);
  if (after) params.set("after", after);
  let res;
  try { res = await api("GET", `/api/v1/clusters?${params}`); }
  catch (err) {
    if (mySearch === search && draft) el("cluster-more").replaceChildren(h("div", { class: "error" }, err.message));
    return;
  }
  if (mySearch !== search || !draft) return;  // a newer search, or the menu closed meanwhile
  const list = el("cluster-list");
  const rows = res.items.map((it) => h("label", {}, h("input", { type: "checkbox", value: it.cluster, checked: chosen(it.cluster),
    onchange: (e) => toggle(it.cluster, e.target.checked) }), " ", it.cluster));
  if (after) list.append(...rows); else list.replaceChildren(...rows);
  if (!after && !rows.length) list.replaceChildren(h("div", { class: "note" }, q ? `No cluster matches “${q}”.` : "No clusters."));
  const shown = list.querySelectorAll("input").length;
  el("cluster-more").replaceChildren(res.after
    ? h("button", { type: "button", class: "btn", id: "cluster-next", onclick: () => load(q, res.after) }, `Show more (${res.total - shown} more)`)
    : q ? h("div", { class: "note" }, `${res.total} match${res.total === 1 ? "" : "es"}`) : "");
}
