// The overview dashboard: every panel's aggregation in one streamed request, each panel linking to the explorer.
import { ApiError, apiLines, clusterFields, esc, explorerLink, fmtBytes, fmtNum, globalParams, h, interval, lib, notReadable, quote, readable, rendered, showError, state, timeRange, track, withGlobals } from "./core.js";
import { chartTime, timeAxis } from "./time.js";
import { CHANGES_SELECTOR, changesPanel } from "./changes.js";

const COLORS = { flows: "#2f6fdf", dns: "#8e44ad", audit: "#16a085", bgp: "#7f8c8d", events: "#d64545", l7: "#e67e22" };
const TIME = { flows: "end_time", dns: "end_time", audit: "requestReceivedTimestamp", bgp: "logtime", events: "time", l7: "end_time" };

// Each panel's data; echarts (which every panel drawing a chart needs) is asked for before the first of them,
// so it is not queued behind the panels' requests.
function agg(type, aggregations, selector, extra = {}) {
  return Promise.all([lib("echarts"), aggData(type, aggregations, selector, extra)]).then(([, res]) => res);
}
// The aggregations the panels ask for while the page is built go out as one request,
// POST /api/v1/aggregations (each item the body of the type's own aggregation route, answered by that route's
// code): one round trip where Chromium would queue two dozen six at a time. An item the viewer may not read
// fails its panel alone.
let pending = null;
function aggData(type, aggregations, selector, extra) {
  const item = { log_type: type, time_range: timeRange(), selector: selector || undefined, aggregations, ...extra,
    ...clusterFields(readable(type)) };
  if (!pending) { pending = []; queueMicrotask(sendBatch); }
  return new Promise((resolve, reject) => pending.push({ item, resolve, reject }));
}
async function sendBatch() {
  const batch = pending;
  pending = null;
  try {
    await apiLines("/api/v1/aggregations", { requests: batch.map((b) => b.item) }, (r) => {
      const b = batch[r.index];
      if (r.status === 200) b.resolve(r.aggregations); else b.reject(new ApiError(r.status, r));
    });
    batch.forEach((b) => b.reject(new Error("the server's answer ended before this panel's data")));  // no-op once settled
  } catch (err) { batch.forEach((b) => b.reject(err)); }
}

// Every chart's box, read once for all panels when the first chart is drawn (one layout, after the page's
// requests left), so that no chart's initialisation reads the DOM after another chart's was written (a forced
// layout per chart). overview() resets it.
let boxes = null;
function measure() {
  boxes = new WeakMap();
  for (const el of document.querySelectorAll("#main section[data-panel] .chart")) boxes.set(el, { width: el.clientWidth, height: el.clientHeight });
}

function chart(el, option) {
  if (!boxes) measure();
  const box = boxes.get(el);
  const c = track(echarts.init(el, null, { renderer: "canvas", ...(box && box.width && box.height ? box : {}) }));
  const opt = { animation: false, ...chartTime(), textStyle: { fontFamily: "inherit" }, grid: { left: 50, right: 14, top: 24, bottom: 26, containLabel: false }, ...option };
  if (opt.xAxis && opt.xAxis.type === "time") opt.xAxis = timeAxis(state.range, opt.xAxis);
  c.setOption(opt);
  return c;
}

// Bar labels: "-" (no namespace or name: traffic to or from outside the cluster) says so, and long names
// keep their start and end ("system:…replicaset-controller"); names a panel would still show alike get
// longer labels until every label differs.
const EXTERNAL = "external / no namespace";
function shorten(v, max) {
  const s = v === "-" ? EXTERNAL : String(v);
  if (s.length <= max) return s;
  const head = Math.min(8, Math.floor(max / 3));
  return s.slice(0, head) + "…" + s.slice(s.length - (max - 1 - head));
}
export function barLabels(names, max = 24) {
  const lens = names.map(() => max);
  let out = names.map((v, i) => shorten(v, lens[i]));
  for (let round = 0; round < 100; round++) {
    const seen = new Map();
    out.forEach((l, i) => seen.set(l, [...(seen.get(l) || []), i]));
    const dup = [...seen.values()].filter((ix) => ix.length > 1).flat();
    if (!dup.length) break;
    for (const i of dup) lens[i] += 3;
    out = names.map((v, i) => shorten(v, lens[i]));
  }
  return out;
}
export function barLabel(v, max = 24) { return shorten(v, max); }

function bars(el, rows, { type, key, fmt = fmtNum, color = "#2f6fdf", extra = "" }) {
  if (!rows.length) { el.replaceChildren(h("div", { class: "empty" }, "No data in this range")); return; }
  const labels = new Map(barLabels(rows.map((r) => r[0])).map((l, i) => [rows[i][0], l]));
  const longest = Math.max(...[...labels.values()].map((l) => l.length));
  const c = chart(el, {
    grid: { left: Math.min(230, 16 + 6.2 * longest), right: 50, top: 6, bottom: 6 },
    xAxis: { type: "value", show: false },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => r[0]), axisLabel: { formatter: (v) => labels.get(v) ?? v }, axisTick: { show: false } },
    tooltip: { trigger: "item", formatter: (p) => `${esc(p.name === "-" ? "- (external / no namespace)" : p.name)}: ${esc(fmt(p.value))}` },
    series: [{ type: "bar", data: rows.map((r) => r[1]), itemStyle: { color, borderRadius: [0, 3, 3, 0] }, barMaxWidth: 16,
      label: { show: true, position: "right", formatter: (p) => fmt(p.value), fontSize: 11 } }],
  });
  c.on("click", (p) => { location.hash = explorerLink(type, [extra, `${key} = ${quote(p.name)}`].filter(Boolean).join(" AND ")); });
  el.dataset.rows = JSON.stringify(rows);
  el.dataset.labels = JSON.stringify([...labels.values()]);
}

// A panel: its card now, its data and drawing when `fill` runs (once every card is on the page).
function card(grid, span, title, type, link, fill, what) {
  const body = h("div", { class: "chart" });
  const el = h("section", { class: `card ${span}`, "data-panel": title }, h("h3", {}, title, link ? h("a", { href: link }, "explore →") : null), body);
  grid.append(el);
  if (!readable(type).length) { body.replaceWith(notReadable(type, what)); return null; }
  return () => fill(body).catch((err) => showError(body, err));
}

const buckets = (res, name) => ((res || {})[name] || {}).buckets || [];

export function overview(main) {
  clusterFlows = null;
  boxes = null;
  main.append(h("h2", {}, "Overview"));
  const grid = h("div", { class: "grid" });
  main.append(grid);
  const step = interval(60), fi = step + "s";
  const jobs = [];

  // DNS latency and L7 duration over time: their histograms' buckets carry each bucket's record count too, so
  // the volume chart draws DNS and L7 from them (one histogram per type, asked for once).
  const STATS = { dns: { m: { avg: { field: "latency_mean" } }, x: { max: { field: "latency_max" } } },
    l7: { m: { avg: { field: "duration_mean" } }, x: { max: { field: "duration_max" } } } };
  const stats = {};
  const overTime = (t) => stats[t] || (stats[t] = agg(t, { t: { date_histogram: { field: TIME[t], fixed_interval: fi }, aggs: STATS[t] } }));

  jobs.push(card(grid, "span8", "Log volume over time", "flows", null, async (el) => {
    const types = ["flows", "dns", "l7", "audit", "bgp", "events"].filter((t) => readable(t).length);
    const res = await Promise.all(types.map((t) => (STATS[t] ? overTime(t) : agg(t, { t: { date_histogram: { field: TIME[t], fixed_interval: fi } } }))));
    chart(el, {
      legend: { top: 0, right: 0 }, tooltip: { trigger: "axis" },
      xAxis: { type: "time" }, yAxis: { type: "log", min: 1, axisLabel: { formatter: fmtNum } },
      series: types.map((t, i) => ({ name: t, type: "line", showSymbol: false, step: "middle", color: COLORS[t], lineStyle: { width: 1.6 },
        data: buckets(res[i], "t").map((b) => [b.key, Math.max(b.doc_count, 0.9)]) })),
    });
  }));

  jobs.push(card(grid, "span4", "Flows: allowed vs denied", "flows", explorerLink("flows", 'action = "deny"'), async (el) => {
    const v = await actionTotals();
    const c = chart(el, { tooltip: { trigger: "item", formatter: (p) => `${esc(p.name)}: ${esc(fmtNum(p.value))} flows (${esc(p.percent)}%)` },
      legend: { bottom: 0 },
      title: { text: fmtNum((v.deny || 0)) + " denied", subtext: `${(100 * (v.deny || 0) / Math.max(1, (v.allow || 0) + (v.deny || 0))).toFixed(2)}% of ${fmtNum((v.allow || 0) + (v.deny || 0))} flows`,
        left: "center", top: "36%", textStyle: { fontSize: 16, color: "#d64545" }, subtextStyle: { fontSize: 11 } },
      series: [{ type: "pie", radius: ["55%", "78%"], center: ["50%", "45%"], minAngle: 6, label: { show: false },
        data: [{ name: "allow", value: v.allow || 0, itemStyle: { color: "#2e9d5b" } }, { name: "deny", value: v.deny || 0, itemStyle: { color: "#d64545" } }] }] });
    c.on("click", (p) => { location.hash = explorerLink("flows", `action = ${quote(p.name)}`); });
  }));

  // A fleet: which clusters carry the traffic, the denials and the events (one terms-on-cluster request per type).
  if (readable("flows").length > 1) jobs.push(card(grid, "span12", "Clusters: top by flows, denied flows and events", "flows", null, clustersPanel));

  jobs.push(card(grid, "span4", "Denied flows over time", "flows", explorerLink("flows", 'action = "deny"'), async (el) => {
    const res = await agg("flows", { t: { date_histogram: { field: "end_time", fixed_interval: fi }, aggs: { f: { sum: { field: "num_flows" } } } } }, 'action = "deny"');
    chart(el, { tooltip: { trigger: "axis" }, xAxis: { type: "time" }, yAxis: { type: "value", axisLabel: { formatter: fmtNum } },
      series: [{ type: "bar", color: "#d64545", data: buckets(res, "t").map((b) => [b.key, b.f.value]) }] });
  }));

  // Top by bytes: terms ordered by count with a bytes sum each, re-ranked by bytes here (terms order by
  // a sub-aggregation is not part of the API), over a wide enough bucket list.
  const topBytes = (key) => async (el) => {
    const res = await agg("flows", { k: { terms: { field: key, size: 200 }, aggs: { i: { sum: { field: "bytes_in" } }, o: { sum: { field: "bytes_out" } } } } }, 'reporter = "src"');
    const rows = buckets(res, "k").map((b) => [b.key, b.i.value + b.o.value]).sort((a, b) => b[1] - a[1]).slice(0, 8);
    bars(el, rows, { type: "flows", key, fmt: fmtBytes, extra: 'reporter = "src"' });
  };
  jobs.push(card(grid, "span4", "Top source namespaces by bytes", "flows", explorerLink("flows", ""), topBytes("source_namespace")));
  jobs.push(card(grid, "span4", "Top destination workloads by bytes", "flows", explorerLink("flows", ""), topBytes("dest_name_aggr")));

  const topDenied = (key) => async (el) => {
    const res = await agg("flows", { k: { terms: { field: key, size: 8 } } }, 'action = "deny"');
    bars(el, buckets(res, "k").map((b) => [b.key, b.doc_count]), { type: "flows", key, color: "#d64545", extra: 'action = "deny"' });
  };
  jobs.push(card(grid, "span4", "Denied flows by source workload", "flows", explorerLink("flows", 'action = "deny"'), topDenied("source_name_aggr")));
  jobs.push(card(grid, "span4", "Denied flows by destination namespace", "flows", explorerLink("flows", 'action = "deny"'), topDenied("dest_namespace")));

  const external = 'qname NOTIN {"*.cluster.local", "*.svc", "*.local"}';
  jobs.push(card(grid, "span4", "Top external domains (DNS)", "dns", explorerLink("dns", external), async (el) => {
    // Ranked by lookups, what the bars draw (terms order by record count; re-ranked over 200 of them).
    const res = await agg("dns", { k: { terms: { field: "qname", size: 200 }, aggs: { c: { sum: { field: "count" } } } } }, external);
    bars(el, buckets(res, "k").map((b) => [b.key, b.c.value]).sort((a, b) => b[1] - a[1]).slice(0, 8), { type: "dns", key: "qname", color: "#8e44ad" });
  }, "DNS"));

  jobs.push(card(grid, "span4", "DNS response codes", "dns", explorerLink("dns", ""), async (el) => {
    const res = await agg("dns", { k: { terms: { field: "rcode", size: 10 }, aggs: { c: { sum: { field: "count" } } } } });
    const c = chart(el, { tooltip: { trigger: "item" }, legend: { bottom: 0, type: "scroll" },
      series: [{ type: "pie", radius: ["40%", "70%"], center: ["50%", "44%"], data: buckets(res, "k").map((b) => ({ name: b.key, value: b.c.value })) }] });
    c.on("click", (p) => { location.hash = explorerLink("dns", `rcode = ${quote(p.name)}`); });
  }, "DNS"));

  jobs.push(card(grid, "span4", "DNS latency (mean / max, ms)", "dns", explorerLink("dns", ""), async (el) => {
    const res = await overTime("dns");
    const b = buckets(res, "t");
    chart(el, { tooltip: { trigger: "axis" }, legend: { top: 0, right: 0 }, xAxis: { type: "time" }, yAxis: { type: "value" },
      series: [{ name: "mean", type: "line", showSymbol: false, color: "#8e44ad", data: b.map((x) => [x.key, x.m.value == null ? null : x.m.value / 1e6]) },
        { name: "max", type: "line", showSymbol: false, color: "#c39bd3", data: b.map((x) => [x.key, x.x.value == null ? null : x.x.value / 1e6]) }] });
  }, "DNS"));

  // L7 (HTTP): ranked by requests (the `count` of each record), what the bars draw.
  jobs.push(card(grid, "span4", "Top HTTP services by requests (L7)", "l7", explorerLink("l7", ""), async (el) => {
    const res = await agg("l7", { k: { terms: { field: "dest_service_name", size: 200 }, aggs: { c: { sum: { field: "count" } } } } });
    bars(el, buckets(res, "k").map((b) => [b.key, b.c.value]).sort((a, b) => b[1] - a[1]).slice(0, 8), { type: "l7", key: "dest_service_name", color: "#e67e22" });
  }, "L7"));
  jobs.push(card(grid, "span4", "HTTP response codes (L7)", "l7", explorerLink("l7", ""), async (el) => {
    const res = await agg("l7", { k: { terms: { field: "response_code", size: 20 }, aggs: { c: { sum: { field: "count" } } } } });
    const c = chart(el, { tooltip: { trigger: "item" }, legend: { bottom: 0, type: "scroll" },
      series: [{ type: "pie", radius: ["40%", "70%"], center: ["50%", "44%"], data: buckets(res, "k").map((b) => ({ name: b.key, value: b.c.value })) }] });
    c.on("click", (p) => { location.hash = explorerLink("l7", `response_code = ${quote(p.name)}`); });
  }, "L7"));
  jobs.push(card(grid, "span4", "HTTP duration (L7, mean / max, ms)", "l7", explorerLink("l7", ""), async (el) => {
    const res = await overTime("l7");
    const b = buckets(res, "t");
    chart(el, { tooltip: { trigger: "axis" }, legend: { top: 0, right: 0 }, xAxis: { type: "time" }, yAxis: { type: "value" },
      // duration_mean / duration_max are nanoseconds (spec §L7), drawn in ms like DNS latency.
      series: [{ name: "mean", type: "line", showSymbol: false, color: "#e67e22", data: b.map((x) => [x.key, x.m.value == null ? null : x.m.value / 1e6]) },
        { name: "max", type: "line", showSymbol: false, color: "#f5c08a", data: b.map((x) => [x.key, x.x.value == null ? null : x.x.value / 1e6]) }] });
  }, "L7"));

  for (const [title, key] of [["Audit by verb", "verb"], ["Audit by user", "user.username"], ["Audit by resource", "objectRef.resource"]]) {
    jobs.push(card(grid, "span4", title, "audit", explorerLink("audit", ""), async (el) => {
      const res = await agg("audit", { k: { terms: { field: key, size: 8 } } }, "", { type: "any" });
      bars(el, buckets(res, "k").map((b) => [b.key, b.doc_count]), { type: "audit", key, color: "#16a085" });
    }, "audit"));
  }

  jobs.push(card(grid, "span12", "Timeline of changes (policies and resources, from audit logs)", "audit",
    explorerLink("audit", CHANGES_SELECTOR), changesPanel, "audit"));

  const bgpSel = 'message IN {"*State changed*", "*state changed*"}';
  jobs.push(card(grid, "span6", "BGP peer state changes", "bgp", explorerLink("bgp", bgpSel), async (el) => {
    const res = await agg("bgp", { k: { terms: { field: "host", size: 10 }, aggs: { t: { date_histogram: { field: "logtime", fixed_interval: fi } } } } }, bgpSel);
    const hosts = buckets(res, "k");
    if (!hosts.length) { el.replaceChildren(h("div", { class: "empty" }, "No BGP state changes in this range")); return; }
    const c = chart(el, { tooltip: { trigger: "axis" }, legend: { top: 0, right: 0, type: "scroll" }, xAxis: { type: "time" }, yAxis: { type: "value", minInterval: 1 },
      series: hosts.map((hb) => ({ name: hb.key, type: "bar", stack: "s", data: hb.t.buckets.filter((b) => b.doc_count).map((b) => [b.key, b.doc_count]) })) });
    c.on("click", (p) => { location.hash = explorerLink("bgp", `${bgpSel} AND host = ${quote(p.seriesName)}`); });
  }, "BGP"));

  jobs.push(card(grid, "span6", "Intrusion-detection events by severity", "events", "#/events", async (el) => {
    const res = await agg("events", { s: { terms: { field: "severity", size: 20, order: { _key: "desc" } }, aggs: { t: { terms: { field: "type", size: 5 } } } } }, "dismissed = false");
    const rows = buckets(res, "s");
    if (!rows.length) { el.replaceChildren(h("div", { class: "empty" }, "No active events in this range")); return; }
    const types = [...new Set(rows.flatMap((b) => b.t.buckets.map((x) => x.key)))];
    const c = chart(el, { tooltip: { trigger: "axis" }, legend: { top: 0, right: 0 }, grid: { left: 40, right: 14, top: 30, bottom: 26 },
      xAxis: { type: "category", data: rows.map((b) => "severity " + b.key) }, yAxis: { type: "value", minInterval: 1 },
      series: types.map((t, i) => ({ name: t, type: "bar", stack: "s", barMaxWidth: 70, color: ["#b3261e", "#e0642b", "#e3a21a", "#4f8fd6"][i % 4],
        data: rows.map((b) => (b.t.buckets.find((x) => x.key === t) || { doc_count: 0 }).doc_count) })) });
    c.on("click", (p) => { location.hash = `#/events?severity=${p.name.replace("severity ", "")}`; });
  }, "events"));

  Promise.all(jobs.filter(Boolean).map((fill) => fill())).then(() => rendered("overview"));
}

// The busiest clusters of the selection: flows and denied flows (one aggregation over the flow logs, terms on
// `cluster` with the flow sums per action) and active events (one over the events). Terms order by record
// count only, so each asks for a bucket per selected cluster (all of them: one bucket each, even at 1,000) and
// the columns rank them here. Each name narrows the selection to that cluster.
const CLUSTER_COLS = [["flows", "flows"], ["denied", "denied flows"], ["events", "active events"]];
const MAX_CLUSTER_BUCKETS = 10000;
// The flow sums per cluster and action, asked for once per page (the per-cluster panel and the allowed vs
// denied totals both draw from it).
let clusterFlows = null;
const clusterFlowsAgg = () => clusterFlows || (clusterFlows = agg("flows", { c: { terms: { field: "cluster", size: Math.min(MAX_CLUSTER_BUCKETS, readable("flows").length) },
  aggs: { f: { sum: { field: "num_flows" } }, a: { terms: { field: "action", size: 5 }, aggs: { f: { sum: { field: "num_flows" } } } } } } }));

// Flows per action ({allow, deny}). With several clusters the per-cluster panel's answer holds them (a bucket
// for every cluster, nothing left over): its sums added up, with no request of their own; else asked for.
async function actionTotals() {
  const flows = readable("flows");
  if (flows.length > 1 && flows.length <= MAX_CLUSTER_BUCKETS) {
    const c = ((await clusterFlowsAgg()) || {}).c || {};
    if (!c.sum_other_doc_count) {
      const v = {};
      for (const b of c.buckets || []) for (const a of b.a.buckets) v[a.key] = (v[a.key] || 0) + a.f.value;
      return v;
    }
  }
  const res = await agg("flows", { a: { terms: { field: "action" }, aggs: { f: { sum: { field: "num_flows" } } } } });
  return Object.fromEntries(buckets(res, "a").map((b) => [b.key, b.f.value]));
}

async function clustersPanel(el) {
  const [flows, events] = await Promise.all([
    clusterFlowsAgg(),
    readable("events").length ? agg("events", { c: { terms: { field: "cluster", size: Math.min(10000, readable("events").length) } } }, "dismissed = false") : null]);
  const rows = new Map();
  const row = (c) => rows.get(c) || rows.set(c, { cluster: c, flows: 0, denied: 0, events: 0 }).get(c);
  for (const b of buckets(flows, "c")) {
    const r = row(b.key);
    r.flows = b.f.value || 0;
    r.denied = ((b.a.buckets || []).find((x) => x.key === "deny") || { f: { value: 0 } }).f.value || 0;
  }
  for (const b of buckets(events, "c")) row(b.key).events = b.doc_count;
  let by = "flows";
  const draw = () => {
    const top = [...rows.values()].sort((a, b) => b[by] - a[by] || b.flows - a.flows || (a.cluster < b.cluster ? -1 : 1)).slice(0, 10);
    if (!top.length) { el.replaceChildren(h("div", { class: "empty" }, "No data in this range")); return; }
    const link = (c) => withGlobals(location.hash, { ...globalParams(), clusters: c });
    el.replaceChildren(h("table", { class: "data clusters" },
      h("thead", {}, h("tr", {}, h("th", {}, "cluster"), CLUSTER_COLS.map(([k, t]) => h("th", { class: "num" + (k === by ? " on" : ""), "data-sort": k,
        title: `rank by ${t}`, onclick: () => { by = k; draw(); } }, t + (k === by ? " ▾" : ""))))),
      h("tbody", {}, top.map((r) => h("tr", { "data-cluster": r.cluster },
        h("td", {}, h("a", { href: link(r.cluster), title: `show only ${r.cluster}` }, r.cluster)),
        h("td", { class: "num" }, fmtNum(r.flows)), h("td", { class: "num" }, fmtNum(r.denied)), h("td", { class: "num" }, fmtNum(r.events)))))));
  };
  el.className = "clusters-panel";
  draw();
}
