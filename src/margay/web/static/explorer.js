// The log explorer: a selector query bar with completion and inline errors, a histogram, a table, a drawer.
import { api, csvCell, fmtNum, fmtTime, h, interval, notReadable, openDrawer, pageHash, readable, rendered, showError, state, timeRange, traceList, track, verdict, verdictCell, withGlobals } from "./core.js";
import { chartTime, isoTime, timeAxis } from "./time.js";

const TYPES = ["flows", "dns", "audit", "bgp", "events", "l7", "waf", "policy_activity", "runtime"];
const PATH = { flows: "flows/logs", dns: "dns/logs", audit: "audit/logs", bgp: "bgp/logs", events: "events", l7: "l7/logs", waf: "waf/logs",
  policy_activity: "policy_activity/logs", runtime: "runtime/reports" };
const PAGE = 50;
const EXPORT_MAX = 10000;

// Columns the UI computes: `policy`, the enforced policy that decided a flow.
const VIRTUAL = { policy: (rec) => ((rec.policies || {}).enforced_policies || []) };
const LIVE_EVERY = 10000;

export function get(rec, path) {
  if (VIRTUAL[path]) return VIRTUAL[path](rec);
  if (path in rec) return rec[path];
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), rec);
}
function cell(v, key) {
  if (key === "policy") return verdictCell(v);
  if (v == null) return "";
  if (/time|Timestamp|evaluated/.test(key)) return fmtTime(v);
  if (key === "action") return h("span", { class: `pill ${v}` }, v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function explorer(main, r) {
  const type = TYPES.includes(r.arg) ? r.arg : "flows";
  const meta = state.types[type];
  const q = r.params.get("q") || "";
  const sortField = r.params.get("sort") || meta.time_field;
  const sortDesc = r.params.get("asc") !== "1";
  const auditKind = r.params.get("kind") || "any";
  const colKey = "margay.columns." + type;
  let columns = JSON.parse(localStorage.getItem(colKey) || "null") || meta.columns;
  const clusters = readable(type);

  const tabs = h("div", { class: "tabs" }, TYPES.map((t) => h("a", { href: `#/explore/${t}`, class: (t === type ? "active " : "") + (readable(t).length ? "" : "disabled"), title: readable(t).length ? "" : "not readable with your token" }, t)));
  main.append(h("h2", {}, "Log explorer"), tabs);
  if (!clusters.length) { main.append(notReadable(type)); rendered("explore"); return; }

  const input = h("input", { id: "query", type: "text", value: q, spellcheck: "false", autocomplete: "off", placeholder: 'selector, e.g. action = "deny" AND dest_namespace IN {"data", "payments"}' });
  const suggest = h("div", { class: "suggest", hidden: true });
  const qerror = h("div", { class: "qerror", id: "query-error" });
  const go = (extra = {}) => {
    const p = new URLSearchParams({ q: input.value, ...(type === "audit" ? { kind: auditKind } : {}), ...extra });
    const target = `#/explore/${type}?${p}`;
    if (pageHash(location.hash) === pageHash(target)) window.dispatchEvent(new HashChangeEvent("hashchange")); else location.hash = withGlobals(target);
  };
  const kindSel = type === "audit" ? h("select", { id: "audit-kind", onchange: (e) => { const p = new URLSearchParams({ q: input.value, kind: e.target.value }); location.hash = `#/explore/audit?${p}`; } },
    ["any", "ee", "kube"].map((k) => h("option", { value: k, selected: k === auditKind }, k === "any" ? "audit: Calico + Kubernetes" : k === "ee" ? "audit: Calico" : "audit: Kubernetes"))) : null;
  const colsBox = h("div", { class: "cols", hidden: true });
  const toolbar = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); suggest.hidden = true; go(); } },
    kindSel, h("div", { class: "querybar" }, input, suggest),
    h("button", { class: "primary", type: "submit", id: "search" }, "Search"),
    h("button", { type: "button", onclick: () => { colsBox.hidden = !colsBox.hidden; } }, "Columns"),
    h("button", { type: "button", id: "export-csv", onclick: () => exportRows("csv") }, "CSV"),
    h("button", { type: "button", id: "export-ndjson", onclick: () => exportRows("ndjson") }, "NDJSON"),
    h("label", { class: "live", title: `Re-run the query every ${LIVE_EVERY / 1000} s while the page is open` },
      h("input", { type: "checkbox", id: "live", checked: r.params.get("live") === "1", onchange: (e) => setLive(e.target.checked) }), " Live tail"));
  main.append(toolbar, qerror, colsBox);

  const choices = [...(type === "flows" ? [{ name: "policy" }] : []), ...meta.keys.filter((k) => k.kind !== "map")];
  colsBox.append(...choices.map((k) => h("label", {}, h("input", { type: "checkbox", checked: columns.includes(k.name), onchange: (e) => {
    columns = e.target.checked ? [...columns, k.name] : columns.filter((c) => c !== k.name);
    localStorage.setItem(colKey, JSON.stringify(columns)); drawTable();
  } }), " ", k.name)));

  const histo = h("div", { class: "chart", style: "height:150px", id: "histogram" });
  const count = h("span", { id: "hits" });
  const table = h("div", { class: "tablewrap" });
  const pager = h("div", { class: "pager" });
  main.append(h("section", { class: "card", style: "margin-bottom:12px" }, h("h3", {}, h("span", {}, "Matches over time · ", count)), histo),
    h("section", { class: "card" }, table, pager));

  const body = (extra) => ({ time_range: timeRange(), selector: q || undefined, ...(type === "audit" ? { type: auditKind } : {}), ...extra });
  let pages = [null], pageNo = 0, items = [];

  async function load() {
    try {
      const res = await api("POST", `/api/v1/${PATH[type]}`, body({ max_page_size: PAGE, sort: [{ field: sortField, descending: sortDesc }], after_key: pages[pageNo] || undefined }), { clusters });
      items = res.items;
      count.textContent = `${fmtNum(res.total_hits)} records`;
      count.dataset.total = res.total_hits;
      if (res.after_key) pages[pageNo + 1] = res.after_key; else pages = pages.slice(0, pageNo + 1);
      drawTable(res.total_hits);
    } catch (err) { queryError(err); table.replaceChildren(); }
  }
  function queryError(err) {
    const pos = err.details && err.details.position;
    if (pos == null) { showError(qerror, err); return; }
    input.classList.add("bad");
    const text = input.value;
    const msg = err.message.split("\n")[0];
    qerror.replaceChildren(h("div", { class: "error", "data-position": pos }, msg, "\n",
      text.slice(0, pos), h("span", { class: "caret" }, text.slice(pos, pos + 1) || " "), text.slice(pos + 1)));
  }
  function drawTable(total) {
    if (!items.length) { table.replaceChildren(h("div", { class: "empty" }, "No records match")); pager.replaceChildren(); return; }
    const head = h("tr", {}, columns.map((c) => h("th", { onclick: VIRTUAL[c] ? null : () => go({ sort: c, ...(c === sortField && sortDesc ? { asc: "1" } : {}) }) },
      c === "policy" ? "enforced policy" : c, c === sortField ? (sortDesc ? " ↓" : " ↑") : "")));
    const rows = items.map((rec) => h("tr", { onclick: () => detail(rec) }, columns.map((c) => h("td", {}, cell(get(rec, c), c)))));
    table.replaceChildren(h("table", { class: "data", id: "results" }, h("thead", {}, head), h("tbody", {}, rows)));
    pager.replaceChildren(h("span", {}, `page ${pageNo + 1}`),
      h("button", { class: "btn", disabled: pageNo === 0, onclick: () => { pageNo--; load(); } }, "‹ Prev"),
      h("button", { class: "btn", id: "next", disabled: !pages[pageNo + 1], onclick: () => { pageNo++; load(); } }, "Next ›"));
  }
  function detail(rec) {
    const parts = [];
    const pol = rec.policies;
    if (pol && typeof pol === "object") {
      for (const k of ["enforced_policies", "pending_policies", "transit_policies", "all_policies"]) {
        if (pol[k] && pol[k].length) parts.push(h("h4", {}, k.replace("_", " ")), traceList(pol[k]));
      }
    }
    const flat = [];
    if (pol && typeof pol === "object") {
      const v = verdict(pol.enforced_policies);
      if (v) parts.unshift(h("h4", {}, "verdict"), h("div", { class: "verdictline" }, verdictCell(pol.enforced_policies)));
    }
    const walk = (o, pre) => { for (const [k, v] of Object.entries(o)) { if (k === "policies") continue; if (v && typeof v === "object" && !Array.isArray(v)) walk(v, pre + k + "."); else flat.push([pre + k, v]); } };
    walk(rec, "");
    // Times read in the chosen zone (the stored value on hover).
    const show = (k, v) => v == null ? "null" : /time|Timestamp/.test(k) ? h("span", { title: String(v), class: "time" }, fmtTime(v)) : typeof v === "object" ? JSON.stringify(v) : String(v);
    parts.push(h("h4", {}, "fields"), h("div", { class: "kv" }, flat.flatMap(([k, v]) => [h("div", {}, k), h("div", {}, show(k, v))])));
    parts.push(h("h4", {}, "JSON"), h("pre", { class: "json" }, JSON.stringify(rec, null, 2)));
    openDrawer(`${type} record`, ...parts);
  }
  async function histogram() {
    const field = meta.time_field;
    try {
      const res = await api("POST", `/api/v1/${PATH[type]}/aggregation`, body({ aggregations: { t: { date_histogram: { field, fixed_interval: interval(80) + "s" } } } }), { clusters });
      const b = res.t.buckets;
      histo.dataset.total = b.reduce((s, x) => s + x.doc_count, 0);
      const c = echarts.getInstanceByDom(histo) || track(echarts.init(histo));
      c.setOption({ animation: false, ...chartTime(), grid: { left: 44, right: 10, top: 8, bottom: 22 }, tooltip: { trigger: "axis" }, xAxis: timeAxis(state.range), yAxis: { type: "value", axisLabel: { formatter: fmtNum } },
        series: [{ type: "bar", color: "#2f6fdf", data: b.map((x) => [x.key, x.doc_count]) }] });
    } catch (err) { histo.replaceChildren(); }
  }
  async function exportRows(fmt) {
    let after, all = [];
    do {
      const res = await api("POST", `/api/v1/${PATH[type]}`, body({ max_page_size: 1000, sort: [{ field: sortField, descending: sortDesc }], after_key: after }), { clusters });
      all = all.concat(res.items); after = res.after_key;
    } while (after && all.length < EXPORT_MAX);
    let text;
    if (fmt === "ndjson") text = all.map((x) => JSON.stringify(x)).join("\n") + "\n";
    else {
      // Times in the chosen zone (ISO 8601 with its offset), the policy column as its verdict.
      const val = (rec, c) => { const v = get(rec, c); return c === "policy" ? (verdict(v) || { text: "" }).text : /time|Timestamp/.test(c) && v != null ? isoTime(v) : v; };
      text = [columns.join(","), ...all.map((rec) => columns.map((c) => csvCell(val(rec, c))).join(","))].join("\n") + "\n";
    }
    const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: fmt === "csv" ? "text/csv" : "application/x-ndjson" })), download: `margay-${type}.${fmt}` });
    document.body.append(a); a.click(); a.remove();
  }
  // Live tail: the first page and the histogram re-read every LIVE_EVERY ms (newest first) while on.
  let liveTimer = null;
  function setLive(on) {
    clearInterval(liveTimer); liveTimer = null;
    const hash = new URLSearchParams(location.hash.split("?")[1] || "");
    if (on) hash.set("live", "1"); else hash.delete("live");
    history.replaceState(null, "", location.hash.split("?")[0] + "?" + hash);
    if (!on) return;
    liveTimer = setInterval(() => {
      if (!document.body.contains(table)) { clearInterval(liveTimer); return; }  // the page was left
      if (pageNo !== 0) return;
      Promise.all([load(), histogram()]).then(() => { table.dataset.refreshed = String(+(table.dataset.refreshed || 0) + 1); });
    }, LIVE_EVERY);
  }
  if (r.params.get("live") === "1") setLive(true);
  autocomplete(input, suggest, type, meta, clusters);
  Promise.all([load(), histogram()]).then(() => rendered("explore"));
}

// Completion: key names from /logtypes; values from the filter hints API after `key =` or inside `key IN {`.
function autocomplete(input, box, type, meta, clusters) {
  let items = [], on = -1, timer = null, seq = 0;
  const keys = meta.keys.map((k) => k.name);
  const close = () => { box.hidden = true; on = -1; };
  function context() {
    const before = input.value.slice(0, input.selectionStart);
    let m = /([A-Za-z_@][\w@./-]*)\s*(?:=|!=|<=|>=|<|>)\s*"?([^"\s()]*)$/.exec(before);
    if (m) return { mode: "value", key: m[1], prefix: m[2], start: before.length - m[2].length - (before.endsWith('"' + m[2]) ? 1 : 0) };
    m = /([A-Za-z_@][\w@./-]*)\s+(?:in|notin)\s*\{[^}]*?"?([^",{}\s]*)$/i.exec(before);
    if (m) return { mode: "value", key: m[1], prefix: m[2], start: before.length - m[2].length - (before.endsWith('"' + m[2]) ? 1 : 0) };
    m = /(^|[\s(!])([A-Za-z_@][\w@./-]*)?$/.exec(before);
    if (m) { const p = m[2] || ""; if (/^(and|or|not|in|notin)$/i.test(p)) return null; return { mode: "key", prefix: p, start: before.length - p.length }; }
    return null;
  }
  function show(list, ctx) {
    items = list.slice(0, 12).map((x) => ({ ...x, ctx }));
    on = items.length ? 0 : -1;
    box.replaceChildren(...items.map((it, i) => h("div", { class: i === on ? "on" : "", onmousedown: (e) => { e.preventDefault(); pick(i); } }, it.label, h("small", {}, it.note || ""))));
    box.hidden = !items.length;
  }
  function pick(i) {
    const it = items[i]; if (!it) return;
    const v = input.value, end = input.selectionStart;
    const insert = it.ctx.mode === "key" ? it.label + " " : JSON.stringify(it.label) + " ";
    input.value = v.slice(0, it.ctx.start) + insert + v.slice(end);
    const at = it.ctx.start + insert.length; input.setSelectionRange(at, at); input.focus(); close();
    input.dispatchEvent(new Event("input"));
  }
  input.addEventListener("input", () => {
    input.classList.remove("bad");
    clearTimeout(timer);
    const ctx = context();
    if (!ctx) return close();
    if (ctx.mode === "key") {
      show(keys.filter((k) => k.toLowerCase().startsWith(ctx.prefix.toLowerCase()) && k !== ctx.prefix).map((k) => ({ label: k, note: (meta.keys.find((x) => x.name === k) || {}).kind })), ctx);
      return;
    }
    if (!keys.includes(ctx.key)) return close();
    const mine = ++seq;
    timer = setTimeout(async () => {
      try {
        const res = await api("POST", `/api/v1/${type}/fields/${encodeURIComponent(ctx.key)}/values`, { prefix: ctx.prefix, size: 12, time_range: timeRange() }, { clusters });
        if (mine === seq) show(res.values.map((v) => ({ label: v.value, note: fmtNum(v.count) })), ctx);
      } catch { close(); }
    }, 150);
  });
  input.addEventListener("keydown", (e) => {
    if (box.hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault(); on = (on + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      [...box.children].forEach((c, i) => c.classList.toggle("on", i === on));
    } else if (e.key === "Tab" || (e.key === "Enter" && on >= 0 && !e.ctrlKey)) { e.preventDefault(); pick(on); }
    else if (e.key === "Escape") close();
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}
