// One time zone for every chart, table, drawer and export: UTC unless the viewer switches to local time.
// Pages import the formatters from here (core.js re-exports fmtTime); charts take `chartTime()` and
// `timeAxis(range)` so their axes are in the same zone and span the chosen range, not just the data.
const KEY = "margay.tz";

export const zone = { utc: localStorage.getItem(KEY) !== "local" };

export function isUTC() { return zone.utc; }
export function setUTC(utc) { zone.utc = !!utc; localStorage.setItem(KEY, zone.utc ? "utc" : "local"); }

// The browser's own zone, for the switch's label ("Local (America/New_York)").
export function localZoneName() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local"; } catch { return "local"; }
}

// "UTC" or the local offset of `d` as "−05:00" style text (ISO 8601 uses an ASCII minus).
function offset(d) {
  if (zone.utc) return "Z";
  const m = -d.getTimezoneOffset();
  const a = Math.abs(m);
  return (m < 0 ? "-" : "+") + String(Math.floor(a / 60)).padStart(2, "0") + ":" + String(a % 60).padStart(2, "0");
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

function parts(d) {
  return zone.utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

// Epoch seconds, epoch milliseconds or an ISO string to a Date (null when it is none of these).
export function toDate(v) {
  if (v == null || v === "") return null;
  const d = typeof v === "number" ? new Date(v < 1e12 ? v * 1000 : v) : /^\d+(\.\d+)?$/.test(String(v)) ? toDate(+v) : new Date(v);
  return isNaN(d) ? null : d;
}

// Tables and the drawer: "2026-12-06 00:10:05Z" in UTC, "2026-12-05 19:10:05-05:00" in local time.
export function fmtTime(v) {
  const d = toDate(v);
  if (!d) return v == null ? "" : String(v);
  const [y, mo, da, hh, mi, ss] = parts(d);
  return `${y}-${pad(mo)}-${pad(da)} ${pad(hh)}:${pad(mi)}:${pad(ss)}${offset(d)}`;
}

// Exports: ISO 8601 in the chosen zone ("2026-12-06T00:10:05Z" / "2026-12-05T19:10:05-05:00").
export function isoTime(v) {
  const d = toDate(v);
  if (!d) return v == null ? "" : String(v);
  return fmtTime(d).replace(" ", "T");
}

// The value of an <input type="datetime-local"> for a Date, in the chosen zone, and back.
export function inputValue(ms) { return fmtTime(new Date(ms)).slice(0, 16).replace(" ", "T"); }
export function fromInput(text) {
  if (!text) return null;
  const d = new Date(zone.utc ? text + ":00Z" : text);
  return isNaN(d) ? null : d.toISOString();
}

// A time range ({from, to}: "now-7d", "now" or ISO strings) as epoch milliseconds.
const UNIT = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 };
export function resolve(expr, now = Date.now()) {
  if (expr === "now" || expr == null) return now;
  const rel = /^now-(\d+)([smhdw])$/.exec(expr);
  if (rel) return now - +rel[1] * UNIT[rel[2]];
  const d = toDate(expr);
  return d ? d.getTime() : now;
}
export function span(range, now = Date.now()) { return [resolve(range.from, now), resolve(range.to, now)]; }

// Options every echarts chart takes: the zone of its axis labels and tooltips.
export function chartTime() { return { useUTC: zone.utc }; }

// A time axis spanning the whole chosen range (an empty hour at the start of "last 7 days" stays visible).
export function timeAxis(range, extra = {}) {
  const [min, max] = span(range);
  return { type: "time", min, max, ...extra };
}

// The zone as the header and legends name it.
export function zoneLabel() { return zone.utc ? "UTC" : localZoneName(); }
