// The detector's pages: Alerts (GlobalAlerts with status, enable/disable, create from a built-in template with a
// dry-run preview) and Threat feeds (entries, last sync, errors). Clients of /apis/projectcalico.org/v3 only.
import { api, fmtTime, h, rendered, severityBand, showError } from "./core.js";

const API = "/apis/projectcalico.org/v3";
const DISABLED = "margay.io/disabled";

function explainDenied(box, err, what) {
  if (err.status === 403) box.replaceChildren(h("div", { class: "explain", "data-testid": "forbidden" }, `You may not list ${what} (RBAC: projectcalico.org, verb list). Ask an administrator.`));
  else showError(box, err);
}
const errorsText = (st) => (st && st.errorConditions || []).map((e) => `${e.type}: ${e.message}`).join("; ");
const isDisabled = (doc) => ((doc.metadata || {}).annotations || {})[DISABLED] === "true";

export async function alerts(main) {
  main.append(h("h2", {}, "Alerts"));
  const list = h("section", { class: "card" });
  const create = h("section", { class: "card", id: "a-create" });
  main.append(list, create);

  async function load() {
    try {
      const res = await api("GET", `${API}/globalalerts`);
      if (!res.items.length) { list.replaceChildren(h("div", { class: "empty" }, "No GlobalAlerts yet: create one from a template below.")); return; }
      list.replaceChildren(h("div", { class: "tablewrap", style: "max-height:calc(100vh - 420px)" }, h("table", { class: "data", id: "alerts" },
        h("thead", {}, h("tr", {}, ["", "name", "status", "severity", "data set", "period", "last run", "last event", "errors", "description"].map((c) => h("th", {}, c)))),
        h("tbody", {}, res.items.map((doc) => {
          const st = doc.status || {}, spec = doc.spec || {}, off = isDisabled(doc);
          const state = off ? "disabled" : st.healthy === false ? "failing" : st.lastExecuted ? "healthy" : "pending";
          return h("tr", { "data-name": doc.metadata.name, "data-state": state },
            h("td", {}, h("button", { class: "btn toggle", type: "button", onclick: () => toggle(doc) }, off ? "Enable" : "Disable")),
            h("td", {}, doc.metadata.name), h("td", { class: "state" }, state),
            h("td", {}, h("span", { class: `sev ${severityBand(spec.severity)}` }, `${severityBand(spec.severity)} ${spec.severity ?? ""}`)),
            h("td", {}, spec.dataSet), h("td", {}, spec.period || "5m"),
            h("td", {}, st.lastExecuted ? fmtTime(st.lastExecuted) : "—"), h("td", {}, st.lastEvent ? fmtTime(st.lastEvent) : "—"),
            h("td", { title: errorsText(st) }, errorsText(st) || "—"), h("td", { title: spec.description }, spec.description));
        })))));
    } catch (err) { explainDenied(list, err, "GlobalAlerts"); }
  }
  async function toggle(doc) {
    const body = { apiVersion: doc.apiVersion, kind: doc.kind, metadata: { ...doc.metadata }, spec: doc.spec };
    const notes = { ...(body.metadata.annotations || {}) };
    if (isDisabled(doc)) delete notes[DISABLED]; else notes[DISABLED] = "true";
    body.metadata.annotations = notes;
    try { await api("PUT", `${API}/globalalerts/${encodeURIComponent(doc.metadata.name)}`, body); await load(); }
    catch (err) { showError(list, err); }
  }

  async function form() {
    let templates;
    try { templates = (await api("GET", `${API}/globalalerttemplates`)).items; }
    catch (err) { explainDenied(create, err, "GlobalAlertTemplates"); return; }
    const pick = h("select", { id: "a-template" }, templates.map((t) => h("option", { value: t.metadata.name }, t.metadata.name)));
    const name = h("input", { id: "a-name", placeholder: "alert name", size: 24 });
    const threshold = h("input", { id: "a-threshold", type: "number", size: 8, placeholder: "threshold" });
    const about = h("div", { class: "muted", id: "a-about" });
    const preview = h("div", { id: "a-preview" });
    const chosen = () => templates.find((t) => t.metadata.name === pick.value);
    const describe = () => { const t = chosen(); about.textContent = t ? `${t.spec.dataSet}: ${t.spec.description}` : ""; threshold.value = t && t.spec.threshold != null ? t.spec.threshold : ""; threshold.disabled = !(t && t.spec.threshold != null); };
    pick.onchange = describe;
    const doc = () => {
      const t = chosen();
      const spec = { ...t.spec };
      if (!threshold.disabled && threshold.value !== "") spec.threshold = +threshold.value;
      return { apiVersion: "projectcalico.org/v3", kind: "GlobalAlert", metadata: { name: name.value.trim(), annotations: { "margay.io/template": t.metadata.name } }, spec };
    };
    async function dryRun() {
      preview.replaceChildren(h("span", { class: "muted" }, "evaluating the last 24 hours…"));
      try {
        const res = await api("POST", `${API}/globalalerts/-/dry-run`, { alert: doc(), from: "now-24h", to: "now" });
        preview.replaceChildren(h("div", { id: "a-preview-count", "data-events": res.events }, `${res.events} event${res.events === 1 ? "" : "s"} would have been raised in the last 24 hours`),
          res.sample.length ? h("ul", {}, res.sample.slice(0, 5).map((e) => h("li", {}, e.description))) : null);
      } catch (err) { showError(preview, err); }
    }
    async function save() {
      try { await api("PUT", `${API}/globalalerts/${encodeURIComponent(name.value.trim())}`, doc()); preview.replaceChildren(h("div", { class: "muted", id: "a-created" }, `Created ${name.value.trim()}`)); await load(); }
      catch (err) { showError(preview, err); }
    }
    create.replaceChildren(h("h3", {}, "New alert from a template"),
      h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); dryRun(); } }, pick, name, threshold,
        h("button", { type: "submit", id: "a-dry-run" }, "Preview (dry run)"),
        h("button", { class: "primary", type: "button", id: "a-save", onclick: save }, "Create")), about, preview);
    describe();
  }
  await Promise.all([load(), form()]);
  rendered("alerts");
}

export async function feeds(main) {
  main.append(h("h2", {}, "Threat feeds"));
  const box = h("section", { class: "card" });
  main.append(box);
  try {
    const res = await api("GET", `${API}/globalthreatfeeds`);
    if (!res.items.length) box.replaceChildren(h("div", { class: "empty" }, "No GlobalThreatFeeds: add them with --detect-resources or the API (docs/detect.md)."));
    else box.replaceChildren(h("div", { class: "tablewrap", style: "max-height:calc(100vh - 200px)" }, h("table", { class: "data", id: "feeds" },
      h("thead", {}, h("tr", {}, ["name", "content", "mode", "source", "entries", "last sync", "last search", "errors"].map((c) => h("th", {}, c)))),
      h("tbody", {}, res.items.map((doc) => {
        const st = doc.status || {}, spec = doc.spec || {};
        const url = spec.pull && spec.pull.http ? spec.pull.http.url : null;
        return h("tr", { "data-name": doc.metadata.name, "data-errors": (st.errorConditions || []).length },
          h("td", {}, doc.metadata.name), h("td", {}, spec.content || "IPSet"), h("td", {}, spec.mode || "Enabled"),
          h("td", { title: url || "pushed to /api/v1/threatfeeds" }, url || "push"),
          h("td", { class: "entries" }, st.entries != null ? String(st.entries) : "—"),
          h("td", {}, st.lastSuccessfulSync ? fmtTime(st.lastSuccessfulSync) : "never"),
          h("td", {}, st.lastSuccessfulSearch ? fmtTime(st.lastSuccessfulSearch) : "never"),
          h("td", { class: "errors", title: errorsText(st) }, errorsText(st) || "—"));
      })))));
  } catch (err) { explainDenied(box, err, "GlobalThreatFeeds"); }
  rendered("feeds");
}
