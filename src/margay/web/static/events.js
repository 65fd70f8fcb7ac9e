// Intrusion-detection events grouped by the alert that raised them: severity, filters, detail, and dismiss one,
// a group or a selection (PUT /api/v1/events/bulk per cluster). The actions lead each row: on screen at any width.
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

  const selected = new Map();  // id -> event
  const bulkCount = h("span", { id: "e-selected", class: "muted" }, "0 selected");
  const bulkButton = h("button", { class: "btn danger", id: "e-dismiss-selected", type: "button", disabled: true, onclick: () => dismiss([...selected.values()]) }, "Dismiss selected");
  const bulk = h("div", { class: "toolbar bulkbar", id: "e-bulk" }, bulkButton, bulkCount);
  function syncBulk() {
    bulkCount.textContent = `${selected.size} selected`;
    bulkButton.disabled = !selected.size;
    box.querySelectorAll("tr.group").forEach((g) => {
      const ids = JSON.parse(g.dataset.ids);
      const box2 = g.querySelector("input.pick-group");
      box2.checked = ids.length > 0 && ids.every((id) => selected.has(id));
      box2.indeterminate = !box2.checked && ids.some((id) => selected.has(id));
    });
  }
  // Events grouped by the alert that raised them (global_alert: its name; threat-feed hits: their type).
  const groupOf = (ev) => ev.type === "global_alert" ? (ev.origin || ev.name || "global_alert") : (ev.type || "other");

  async function load() {
    try {
      const res = await api("POST", "/api/v1/events", { time_range: timeRange(), selector: selector || undefined, max_page_size: 500, sort: [{ field: "time", descending: true }] }, { clusters });
      selected.clear();
      if (!res.items.length) { box.replaceChildren(h("div", { class: "empty" }, "No events")); return; }
      const groups = new Map();
      for (const ev of res.items) { const g = groupOf(ev); if (!groups.has(g)) groups.set(g, []); groups.get(g).push(ev); }
      const ordered = [...groups.entries()].sort((a, b) => Math.max(...b[1].map((e) => e.severity || 0)) - Math.max(...a[1].map((e) => e.severity || 0)) || b[1].length - a[1].length);
      const rows = [];
      for (const [name, evs] of ordered) {
        const open = evs.filter((e) => !e.dismissed);
        const top = Math.max(...evs.map((e) => e.severity || 0));
        rows.push(h("tr", { class: "group", "data-group": name, "data-ids": JSON.stringify(open.map((e) => e.id)) },
          h("td", {}, h("input", { type: "checkbox", class: "pick-group", title: "select this group", disabled: !open.length, onclick: (e) => e.stopPropagation(), onchange: (e) => { for (const ev of open) { if (e.target.checked) selected.set(ev.id, ev); else selected.delete(ev.id); } box.querySelectorAll("input.pick").forEach((c) => { c.checked = selected.has(c.closest("tr").dataset.id); }); syncBulk(); } })),
          h("td", {}, open.length ? h("button", { class: "btn danger dismiss-group", type: "button", onclick: (e) => { e.stopPropagation(); dismiss(open); } }, `Dismiss ${open.length}`) : h("span", { class: "muted" }, "dismissed")),
          h("td", { colspan: 8 }, h("strong", {}, name), " ", h("span", { class: "muted" }, `${evs.length} event${evs.length === 1 ? "" : "s"}`), " ",
            h("span", { class: `sev ${severityBand(top)}` }, `${severityBand(top)} ${top}`))));
        for (const ev of evs) {
          rows.push(h("tr", { "data-id": ev.id, "data-group": name, onclick: () => detail(ev) },
            h("td", {}, ev.dismissed ? null : h("input", { type: "checkbox", class: "pick", onclick: (e) => e.stopPropagation(), onchange: (e) => { if (e.target.checked) selected.set(ev.id, ev); else selected.delete(ev.id); syncBulk(); } })),
            h("td", {}, ev.dismissed ? h("span", { class: "muted" }, "dismissed") : h("button", { class: "btn danger dismiss", type: "button", onclick: (e) => { e.stopPropagation(); dismiss([ev]); } }, "Dismiss")),
            h("td", {}, h("span", { class: `sev ${severityBand(ev.severity)}` }, `${severityBand(ev.severity)} ${ev.severity ?? ""}`)),
            h("td", {}, fmtTime(ev.time)), h("td", {}, ev.cluster), h("td", {}, ev.type), h("td", {}, ev.origin),
            h("td", {}, [ev.source_namespace, ev.source_name_aggr || ev.source_ip].filter((x) => x && x !== "-").join("/")),
            h("td", {}, [ev.dest_namespace, ev.dest_name_aggr, ev.dest_ip].filter((x) => x && x !== "-").join(" ")),
            h("td", { title: ev.description }, ev.description)));
        }
      }
      box.replaceChildren(bulk, h("div", { class: "muted", style: "margin-bottom:6px" }, `${res.total_hits} events in ${groups.size} groups${res.total_hits > res.items.length ? ` (newest ${res.items.length} shown)` : ""}`),
        h("div", { class: "tablewrap", style: "max-height:calc(100vh - 280px)" }, h("table", { class: "data", id: "events" },
        h("thead", {}, h("tr", {}, ["", "", "severity", "time", "cluster", "type", "origin", "source", "destination", "description"].map((c) => h("th", {}, c)))),
        h("tbody", {}, rows))));
      syncBulk();
    } catch (err) { showError(box, err); }
  }
  async function dismiss(evs) {
    const byCluster = new Map();
    for (const ev of evs) { if (!byCluster.has(ev.cluster)) byCluster.set(ev.cluster, []); byCluster.get(ev.cluster).push(ev.id); }
    try {
      for (const [cluster, ids] of byCluster) await api("PUT", "/api/v1/events/bulk", { ids }, { clusters: [cluster] });
      await load();
    } catch (err) { showError(box, err); }
  }
  function detail(ev) {
    const rows = Object.entries(ev).filter(([k]) => !["record", "geo_info"].includes(k));
    openDrawer(ev.name || ev.type,
      h("p", {}, h("span", { class: `sev ${severityBand(ev.severity)}` }, `${severityBand(ev.severity)} ${ev.severity}`), " ", ev.description),
      h("div", { class: "kv" }, rows.flatMap(([k, v]) => [h("div", {}, k), h("div", {}, Array.isArray(v) ? v.join(", ") : v == null ? "" : String(v))])),
      ev.record ? h("div", {}, h("h4", {}, "record"), h("pre", { class: "json" }, JSON.stringify(ev.record, null, 2))) : null,
      ev.geo_info ? h("div", {}, h("h4", {}, "geo"), h("pre", { class: "json" }, JSON.stringify(ev.geo_info, null, 2))) : null,
      ev.dismissed ? null : h("button", { class: "btn danger", onclick: () => dismiss([ev]).then(() => document.getElementById("drawer").hidden = true) }, "Dismiss this event"));
  }
  load().then(() => rendered("events"));
}
