// The router and the header: sign-in, cluster selector, time range; each page lives in its own module.
import { api, closeDrawer, disposeCharts, globalsFrom, h, lib, preloadLib, state, withGlobals } from "./core.js";
import { fromInput, inputValue, isUTC, localZoneName, setUTC } from "./time.js";
import { initPicker, pickerLabel } from "./picker.js";

const main = document.getElementById("main");

function route() {
  const [path, qs] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  return { page: parts[0] || "overview", arg: parts[1], params: new URLSearchParams(qs || "") };
}

async function signin(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("controls").hidden = true;
  const input = h("input", { type: "password", id: "token", placeholder: "mgy_…", autocomplete: "off" });
  const err = h("div");
  const form = h("form", { class: "card signin", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/ui/session", { token: input.value.trim() });
      input.value = "";
      await load(); location.hash = "#/overview"; render();
    }
    catch (ex) { err.replaceChildren(h("div", { class: "error" }, ex.status === 401 ? "This token is not valid." : ex.message)); }
  } },
  h("h2", {}, "Sign in to margay"),
  h("p", { class: "muted" }, "Paste a bearer token: the admin token `margay serve` printed (also in <data>/admin-token), " +
    "a token from the tokens file, or a Kubernetes service-account token."),
  input, h("button", { class: "btn primary", type: "submit" }, "Sign in"), err,
  message ? h("p", { class: "muted" }, message) : null);
  main.replaceChildren(form);
  input.focus();
}

async function load() {
  // Both at once: the page's requests wait for the caller's clusters, not for a second round trip.
  const [me, t] = await Promise.all([api("GET", "/api/v1/whoami"), api("GET", "/api/v1/logtypes")]);
  state.me = me;
  state.types = Object.fromEntries(t.items.map((x) => [x.name, x]));
  const mine = state.me.clusters;
  state.clusters = (state.clusters || []).filter((c) => mine.includes(c));
  if (state.all || !state.clusters.length) { state.all = true; state.clusters = mine.slice(); }
  globalsFrom(route().params, mine);
  pickerLabel();
  const who = document.getElementById("who");
  who.textContent = state.me.auth === "none" ? "" : state.me.user;
  document.getElementById("signout").hidden = state.me.auth === "none";
  document.getElementById("nav").hidden = false;
  document.getElementById("controls").hidden = false;
}

function rangeControls() {
  const sel = document.getElementById("range");
  const saved = JSON.parse(localStorage.getItem("margay.range") || "null");
  if (saved) state.range = saved;
  sel.onchange = () => {
    if (sel.value === "custom") {
      document.getElementById("absolute").hidden = false;
      document.getElementById("abs-to").value = inputValue(Date.now());
      document.getElementById("abs-from").value = inputValue(Date.now() - 3 * 3600e3);
      return;
    }
    setRange({ from: sel.value, to: "now" });
  };
  // Absolute times are typed in the chosen zone (UTC unless switched to local).
  document.getElementById("abs-apply").onclick = () => {
    const f = fromInput(document.getElementById("abs-from").value), t = fromInput(document.getElementById("abs-to").value);
    if (f && t) setRange({ from: f, to: t });
  };
  const tz = document.getElementById("tz");
  tz.replaceChildren(h("option", { value: "utc" }, "UTC"), h("option", { value: "local" }, `Local (${localZoneName()})`));
  tz.onchange = () => { setUTC(tz.value === "utc"); navigate(); };
}
// The header's controls show the state (after a link or back/forward changed it).
function syncControls() {
  const sel = document.getElementById("range"), abs = document.getElementById("absolute");
  const isRel = [...sel.options].some((o) => o.value === state.range.from) && state.range.to === "now";
  sel.value = isRel ? state.range.from : "custom";
  abs.hidden = isRel;
  if (!isRel) {
    document.getElementById("abs-from").value = inputValue(Date.parse(state.range.from));
    document.getElementById("abs-to").value = inputValue(state.range.to === "now" ? Date.now() : Date.parse(state.range.to));
  }
  document.getElementById("tz").value = isUTC() ? "utc" : "local";
  if (state.me) pickerLabel();
}
function setRange(r) { state.range = r; localStorage.setItem("margay.range", JSON.stringify(r)); navigate(); }
// A change of range, clusters or zone is a new history entry with the state in its URL.
function navigate() { location.hash = withGlobals(location.hash); }

// Each page's module, loaded when the page is first shown (the shell fetches and parses only the code of the
// page on screen), its function, the library it needs before it starts (the overview and the flow
// visualizer ask for theirs beside their data themselves), and the modules it imports beyond core.js/time.js.
const PAGES = {
  overview: ["./overview.js", "overview", null, ["./changes.js"]], explore: ["./explorer.js", "explorer", "echarts"], graph: ["./graph.js", "graph"],
  events: ["./events.js", "events"], alerts: ["./detect.js", "alerts"], feeds: ["./detect.js", "feeds"],
  reports: ["./reports.js", "reports", "echarts"],
};
const pageOf = (name) => PAGES[name] || PAGES.overview;
let shown = 0;  // the latest render: an earlier one whose module arrives late draws nothing

export async function render() {
  const mine = ++shown;
  closeDrawer();
  disposeCharts();
  let r = route();
  if (state.me) globalsFrom(r.params, state.me.clusters);
  // A hash without the state (a page's own link) gets it, without a new history entry.
  const full = withGlobals(location.hash);
  if (full !== location.hash) { history.replaceState(null, "", full); r = route(); }
  syncControls();
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === r.page));
  const [file, fn, needs] = pageOf(r.page);
  main.replaceChildren();
  let page;
  try { [page] = await Promise.all([import(file).then((m) => m[fn]), needs ? lib(needs) : null]); }
  catch (err) { if (mine === shown) main.replaceChildren(h("div", { class: "error" }, err.message)); return; }
  if (mine === shown) page(main, r);
}

async function start() {
  initPicker(navigate);  // a changed cluster selection applies when the menu closes: one navigation
  document.getElementById("drawer-close").onclick = closeDrawer;
  localStorage.removeItem("margay.token");  // earlier versions kept the token where page scripts could read it
  document.getElementById("signout").onclick = async () => { try { await api("DELETE", "/ui/session"); } catch { /* signed out anyway */ } signin(); };
  window.addEventListener("margay:unauthorized", () => {
    if (document.querySelector("form.signin")) return;  // the sign-in form reports a refused token itself
    signin("Your session has ended or its token was refused; sign in again."); });
  rangeControls();
  // The page's code and library load while the session is checked (render reports a failure).
  const [first, , firstLib, imports] = pageOf(route().page);
  for (const file of [first, ...(imports || [])]) import(file).catch(() => {});  // its imports too: no second wave
  const drawsWith = firstLib || { overview: "echarts", graph: "cytoscape" }[route().page];
  if (drawsWith) preloadLib(drawsWith);
  try { await load(); } catch (err) { if (err.status === 401) return signin(); main.replaceChildren(h("div", { class: "error" }, err.message)); return; }
  window.addEventListener("hashchange", render);
  render();
}
start();
