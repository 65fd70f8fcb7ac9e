// Compliance reports: the GlobalReports of a cluster and their runs (GET /api/v1/reports), each run's UI summary
// drawn as its report type describes it, downloads, run now, and the difference between two runs.
import { api, esc, fmtTime, h, rendered, showError, state, track } from "./core.js";

const DIFF = [
  ["becameIngressUnprotected", "Became ingress-unprotected", "bad"], ["becameEgressUnprotected", "Became egress-unprotected", "bad"],
  ["becameIngressProtected", "Became ingress-protected", "good"], ["becameEgressProtected", "Became egress-protected", "good"],
  ["endpointsAppeared", "Endpoints that appeared", ""], ["endpointsVanished", "Endpoints that vanished", ""],
  ["policiesAppeared", "Policies that appeared", ""], ["policiesChanged", "Policies that changed", ""],
  ["policiesVanished", "Policies that vanished", ""],
];

function enc(s) { return encodeURIComponent(s); }
function runPath(cluster, name, end) { return `/api/v1/reports/${enc(name)}/runs/${enc(end)}`; }
function link(cluster, name) { return `#/reports/${enc(name)}?` + new URLSearchParams({ c: cluster }); }

export function reports(main, r) {
  const mine = (state.me && state.me.clusters) || [];
  const cluster = r.params.get("c") || (state.clusters || [])[0] || mine[0] || "cluster";
  const pick = h("select", { id: "r-cluster", title: "Cluster", onchange: () => { location.hash = `#/reports?c=${enc(pick.value)}`; } },
    [...new Set([cluster, ...mine])].map((c) => h("option", { value: c, selected: c === cluster }, c)));
  main.append(h("h2", {}, "Compliance reports"),
    h("div", { class: "toolbar" }, h("label", {}, "Cluster ", pick),
      h("span", { class: "muted" }, "GlobalReports with runs in the last 90 days; summaries, downloads and differences between runs.")));
  const list = h("section", { class: "card", id: "reports-list" }, h("div", { class: "empty" }, "Loading…"));
  const detail = h("div", { id: "report-detail" });
  main.append(list, detail);
  const get = (path, opts) => api("GET", path + (path.includes("?") ? "&" : "?") + new URLSearchParams({ cluster, ...(opts || {}) }));

  async function load() {
    let res;
    try { res = await get("/api/v1/reports"); }
    catch (err) {
      list.replaceChildren(h("div", { class: "explain", "data-testid": "forbidden" }, err.status === 403
        ? `${err.message}. Reports need get on lma.tigera.io for the cluster's compliance_reports, and list/get on ` +
          "globalreports (projectcalico.org); downloads also get on globalreporttypes." : err.message));
      return;
    }
    if (!res.reports.length) { list.replaceChildren(h("div", { class: "empty" }, `No reports you may see in cluster ${cluster}.`)); return; }
    const chosen = r.arg ? decodeURIComponent(r.arg) : res.reports[0].name;
    list.replaceChildren(h("div", { class: "tablewrap", style: "max-height:260px;min-height:0" }, h("table", { class: "data", id: "reports" },
      h("thead", {}, h("tr", {}, ["report", "type", "runs", "latest run ended", "in scope", "ingress protected", "egress protected", "policy changes"].map((c) => h("th", {}, c)))),
      h("tbody", {}, res.reports.map((rep) => {
        const last = rep.runs[0] || {}, es = last.endpointsSummary || {}, au = last.auditSummary;
        return h("tr", { "data-report": rep.name, class: rep.name === chosen ? "selected" : null, onclick: () => { location.hash = link(cluster, rep.name); } },
          h("td", {}, h("a", { href: link(cluster, rep.name) }, rep.name)), h("td", {}, rep.reportTypeName), h("td", {}, String(rep.runs.length)),
          h("td", {}, fmtTime(last.endTime)), h("td", {}, es.numTotal ?? "–"), h("td", {}, es.numIngressProtected ?? "–"),
          h("td", {}, es.numEgressProtected ?? "–"), h("td", {}, au ? String(au.numTotal) : "–"));
      })))));
    const rep = res.reports.find((x) => x.name === chosen);
    if (!rep) { detail.replaceChildren(h("div", { class: "explain" }, `No report ${chosen} you may see in cluster ${cluster}.`)); return; }
    show(rep);
  }

  function show(rep) {
    const latest = rep.runs[0];
    const summaryBox = h("section", { class: "card span12", id: "ui-summary" });
    const runsBox = h("section", { class: "card span12", id: "runs-card" });
    const diffBox = h("section", { class: "card span12", id: "diff", hidden: true });
    detail.replaceChildren(...[h("h2", { class: "report-title" }, rep.name, " ", h("span", { class: "muted" }, `(${rep.reportTypeName})`)),
      rep.canRun ? runNow(rep) : null,
      rep.canView ? null : h("div", { class: "explain", "data-testid": "summary-only" },
        `You may see this report's summaries, not its contents or downloads (needs get on globalreporttypes/${rep.reportTypeName}).`),
      h("div", { class: "grid" }, summaryBox, runsBox, diffBox)].filter(Boolean));
    if (latest) summary(summaryBox, latest);
    else summaryBox.append(h("div", { class: "empty" }, "No runs yet"));
    runsTable(runsBox, diffBox, rep);
  }

  function summary(box, run) {
    const ui = run.uiSummary || { widgets: [] };
    box.replaceChildren(h("h3", {}, `${ui.heading || "Summary"} — run ending ${fmtTime(run.endTime)}`));
    const row = h("div", { class: "widgets" });
    box.append(row);
    for (const w of ui.widgets || []) row.append(widget(w));
  }

  function widget(w) {
    const chartEl = h("div", { class: "chart radial" });
    const card = h("div", { class: "widget", "data-type": w.type, "data-heading": w.heading }, h("h4", {}, w.heading), chartEl);
    const total = Number((w.summary || {}).total) || 0;
    if (w.type === "radialbarchart") {
      const d = (w.data || [])[0] || { label: "", value: 0 };
      const v = Number(d.value) || 0;
      card.append(h("div", { class: "caption" }, `${d.label}: ${v} of ${total}`));
      setTimeout(() => {
        const c = track(echarts.init(chartEl, null, { renderer: "canvas" }));
        c.setOption({ animation: false, tooltip: { formatter: (p) => `${esc(p.name)}: ${esc(p.value)}` },
          title: { text: total ? `${Math.round((100 * v) / total)}%` : "–", left: "center", top: "center", textStyle: { fontSize: 18 } },
          series: [{ type: "pie", radius: ["62%", "82%"], label: { show: false }, silent: false,
            data: [{ name: d.label, value: v, itemStyle: { color: "#2e9d5b" } }, { name: "not " + d.label.toLowerCase(), value: Math.max(0, total - v), itemStyle: { color: "#e1e6ec" } }] }] });
      });
    } else if (w.type === "cis-benchmark-nodes") {
      const data = w.data || [];
      card.append(h("div", { class: "caption" }, `${total} nodes: ` + data.map((d) => `${d.label} ${d.value}`).join(", ")),
        h("ul", { class: "descs" }, data.map((d) => h("li", {}, `${d.label}: ${d.desc}`))));
      setTimeout(() => {
        const c = track(echarts.init(chartEl, null, { renderer: "canvas" }));
        c.setOption({ animation: false, grid: { left: 40, right: 10, top: 10, bottom: 24 }, tooltip: {},
          xAxis: { type: "category", data: data.map((d) => d.label) }, yAxis: { type: "value", minInterval: 1 },
          series: [{ type: "bar", data: data.map((d, i) => ({ value: Number(d.value) || 0, itemStyle: { color: ["#2e9d5b", "#e3a21a", "#d64545"][i] || "#2f6fdf" } })) }] });
      });
    } else if (w.type === "cis-benchmark-tests") {
      chartEl.remove();
      const tests = ((w.topFailedTests || {}).tests) || [];
      card.append(tests.length ? h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["test", "description", "failed on"].map((c) => h("th", {}, c)))),
        h("tbody", {}, tests.map((t) => h("tr", {}, h("td", {}, t.index), h("td", { title: t.description }, t.description), h("td", {}, `${t.failedCount} nodes`)))))
        : h("div", { class: "empty" }, "No failed tests"));
    } else {
      chartEl.remove();
      card.append(h("div", { class: "muted" }, `A ${w.type} widget`));
    }
    return card;
  }

  function runsTable(box, diffBox, rep) {
    const picked = [];
    const cmp = h("button", { class: "btn primary", id: "compare", disabled: true, onclick: () => diff(diffBox, rep, picked) }, "Compare the two selected runs");
    box.replaceChildren(h("h3", {}, "Runs", rep.canView ? cmp : null),
      h("div", { class: "tablewrap", style: "max-height:340px;min-height:0" }, h("table", { class: "data", id: "runs" },
        h("thead", {}, h("tr", {}, [rep.canView ? "compare" : null, "interval start", "interval end", "generated", "summary", "downloads"].filter(Boolean).map((c) => h("th", {}, c)))),
        h("tbody", {}, rep.runs.map((run) => h("tr", { "data-end": run.endTime, onclick: () => summary(document.getElementById("ui-summary"), run) },
          rep.canView ? h("td", {}, h("input", { type: "checkbox", class: "compare", value: run.endTime, onclick: (e) => e.stopPropagation(), onchange: (e) => {
            if (e.target.checked) picked.push(run.endTime); else picked.splice(picked.indexOf(run.endTime), 1);
            while (picked.length > 2) { const old = picked.shift(); const box2 = box.querySelector(`input.compare[value="${CSS.escape(old)}"]`); if (box2) box2.checked = false; }
            cmp.disabled = picked.length !== 2;
          } })) : null,
          h("td", {}, fmtTime(run.startTime)), h("td", {}, fmtTime(run.endTime)), h("td", {}, fmtTime(run.generationTime)),
          h("td", {}, figures(run)),
          h("td", { class: "downloads" }, (run.downloads || []).map((f) => h("a", { class: "download", "data-file": f, download: f,
            href: `${runPath(cluster, rep.name, run.endTime)}/download/${enc(f)}?${new URLSearchParams({ cluster })}`, onclick: (e) => e.stopPropagation() }, f)))))))));
  }

  function figures(run) {
    const parts = [];
    const es = run.endpointsSummary, au = run.auditSummary, cis = run.cisBenchmarkSummary;
    if (es) parts.push(`${es.numTotal} endpoints, ${es.numIngressProtected} ingress / ${es.numEgressProtected} egress protected`);
    if (au) parts.push(`${au.numCreate} created, ${au.numModify} modified, ${au.numDelete} deleted`);
    if (cis) parts.push(`nodes HIGH ${cis.highCount}, MED ${cis.medCount}, LOW ${cis.lowCount}`);
    return parts.join("; ");
  }

  async function diff(box, rep, picked) {
    box.hidden = false;
    box.replaceChildren(h("div", { class: "empty" }, "Comparing…"));
    try {
      const d = await get(`/api/v1/reports/${enc(rep.name)}/diff`, { from: picked[0], to: picked[1] });
      const sums = Object.entries(d.summaries || {});
      box.replaceChildren(h("h3", {}, `What changed from the run ending ${fmtTime(d.from.endTime)} to the run ending ${fmtTime(d.to.endTime)}`),
        h("div", { class: "diffgrid" }, DIFF.map(([key, title, tone]) => h("div", { class: `diffcol ${tone}`, "data-key": key },
          h("h4", {}, `${title} (${(d[key] || []).length})`),
          (d[key] || []).length ? h("ul", {}, d[key].map((x) => h("li", {}, x))) : h("div", { class: "muted" }, "none")))),
        sums.length ? h("table", { class: "data", id: "diff-summaries" }, h("thead", {}, h("tr", {}, ["figure", "before", "after"].map((c) => h("th", {}, c)))),
          h("tbody", {}, sums.flatMap(([k, v]) => Object.keys({ ...(v.from || {}), ...(v.to || {}) }).map((f) =>
            h("tr", {}, h("td", {}, `${k}.${f}`), h("td", {}, String((v.from || {})[f] ?? "–")), h("td", {}, String((v.to || {})[f] ?? "–"))))))) : "");
    } catch (err) { showError(box, err); }
  }

  function runNow(rep) {
    const local = (d) => new Date(d - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const start = h("input", { type: "datetime-local", id: "run-start", step: 60, value: local(Date.now() - 86400e3) });
    const end = h("input", { type: "datetime-local", id: "run-end", step: 60, value: local(Date.now() - 60e3) });
    const out = h("span", { id: "run-result", class: "muted" });
    return h("form", { class: "toolbar", id: "run-now", onsubmit: async (e) => {
      e.preventDefault();
      out.textContent = "Running…";
      try {
        const res = await api("POST", `/api/v1/reports/${enc(rep.name)}/run?${new URLSearchParams({ cluster })}`,
          { start: new Date(start.value).toISOString(), end: new Date(end.value).toISOString() });
        await load();
        const o = document.getElementById("run-result");
        if (o) o.textContent = `Stored run ${res.id}.`;
      } catch (err) { out.textContent = err.message; }
    } }, h("span", {}, "Run now over"), start, "–", end, h("button", { class: "primary", type: "submit" }, "Run now"), out);
  }

  load().then(() => rendered("reports"));
}
