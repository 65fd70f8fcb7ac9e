// Intrusion-detection events: severity, filters, detail and dismiss (PUT /api/v1/events/bulk).
import { api, fmtTime, h, notReadable, openDrawer, quote, readable, rendered, severityBand, showError, timeRange } from "./core.js";

export function events(main, r) {
  const clusters = readable("events");
  main.append(h("h2", {}, "Security events"));
  if (!clusters.length) { main.append(notReadable("events", "intrusion-detection event")); rendered("events"); return; }
  const p = r.params;
  const sev = h("select", { id: "e-severity" }, [["", "any severity"], ["80", "critical (≥ 80)"], ["60", "high and above (≥ 60)"], ["30", "medium and above (≥ 30)"]]
    .map(([v, t]) => h("option", { value: v, selected: v === (p.get("min") || "") }, t)));
  const type = h("select", { id: "e-type" }, ["", "gtf_suspicious_flow", "gtf_suspicious_dns_query", "global_alert"].map((t) => h("option", { value: t, selected: t === (p.get("type") || "") }, t || "any type")));
  const ns = h("input", { id: "e-namespace", placeholder: "namespace", value: p.get("ns") || "", size: 12 });
  const showDismissed = h("input", { type: "checkbox", id: "e-dismissed", checked: p.get("dismissed") === "1" });
  const apply = () => { location.hash = "#/events?" + new URLSearchParams({ min: sev.value, type: type.value, ns: ns.value, dismissed: showDismissed.checked ? "1" : "" }); };
  main.append(h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } }, sev, type, ns,
    h("label", {}, showDismissed, " show dismissed"), h("button", { class: "primary", type: "submit" }, "Apply")));
  const box = h("section", { class: "card" });
  main.append(box);

  const parts = [];
  if (!showDismissed.checked) parts.push("dismissed = false");
  if (p.get("severity")) parts.push(`severity = ${+p.get("severity")}`);
  if (sev.value) parts.push(`severity >= ${+sev.value}`);
  if (type.value) parts.push(`type = ${quote(type.value)}`);
  if (ns.value) parts.push(`(source_namespace = ${quote(ns.value)} OR dest_namespace = ${quote(ns.value)})`);
  const selector = parts.join(" AND ");

  async function load() {
    try {
      const res = await api("POST", "/api/v1/events", { time_range: timeRange(), selector: selector || undefined, max_page_size: 200, sort: [{ field: "time", descending: true }] }, { clusters });
      if (!res.items.length) { box.replaceChildren(h("div", { class: "empty" }, "No events")); return; }
      box.replaceChildren(h("div", { class: "muted", style: "margin-bottom:6px" }, `${res.total_hits} events${res.total_hits > res.items.length ? ` (newest ${res.items.length} shown)` : ""}`),
        h("div", { class: "tablewrap", style: "max-height:calc(100vh - 240px)" }, h("table", { class: "data", id: "events" },
        h("thead", {}, h("tr", {}, ["severity", "time", "cluster", "type", "origin", "source", "destination", "description", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, res.items.map((ev) => h("tr", { "data-id": ev.id, onclick: () => detail(ev) },
          h("td", {}, h("span", { class: `sev ${severityBand(ev.severity)}` }, `${severityBand(ev.severity)} ${ev.severity ?? ""}`)),
          h("td", {}, fmtTime(ev.time)), h("td", {}, ev.cluster), h("td", {}, ev.type), h("td", {}, ev.origin),
          h("td", {}, [ev.source_namespace, ev.source_name_aggr || ev.source_ip].filter((x) => x && x !== "-").join("/")),
          h("td", {}, [ev.dest_namespace, ev.dest_name_aggr, ev.dest_ip].filter((x) => x && x !== "-").join(" ")),
          h("td", { title: ev.description }, ev.description),
          h("td", {}, ev.dismissed ? h("span", { class: "muted" }, "dismissed") : h("button", { class: "btn danger dismiss", onclick: (e) => { e.stopPropagation(); dismiss(ev); } }, "Dismiss"))))))));
    } catch (err) { showError(box, err); }
  }
  async function dismiss(ev) {
    try { await api("PUT", "/api/v1/events/bulk", { ids: [ev.id] }, { clusters: [ev.cluster] }); await load(); }
    catch (err) { showError(box, err); }
  }
  function detail(ev) {
    const rows = Object.entries(ev).filter(([k]) => !["record", "geo_info"].includes(k));
    openDrawer(ev.name || ev.type,
      h("p", {}, h("span", { class: `sev ${severityBand(ev.severity)}` }, `${severityBand(ev.severity)} ${ev.severity}`), " ", ev.description),
      h("div", { class: "kv" }, rows.flatMap(([k, v]) => [h("div", {}, k), h("div", {}, Array.isArray(v) ? v.join(", ") : v == null ? "" : String(v))])),
      ev.record ? h("div", {}, h("h4", {}, "record"), h("pre", { class: "json" }, JSON.stringify(ev.record, null, 2))) : null,
      ev.geo_info ? h("div", {}, h("h4", {}, "geo"), h("pre", { class: "json" }, JSON.stringify(ev.geo_info, null, 2))) : null,
      ev.dismissed ? null : h("button", { class: "btn danger", onclick: () => dismiss(ev).then(() => document.getElementById("drawer").hidden = true) }, "Dismiss this event"));
  }
  load().then(() => rendered("events"));
}
