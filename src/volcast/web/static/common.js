// What the dashboard's two scripts share: the API call with its token, the chosen time zone
// and the small formatters. app.js draws the stored series, live.js the watched ones.

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#000000"];
const TOKEN_KEY = "volcast-token";  // sessionStorage: this tab only, gone when it closes
export const zone = { tz: "UTC" };  // the time zone every time on the page is shown in

export const token = () => sessionStorage.getItem(TOKEN_KEY);

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function api(path, options = {}) {
  const headers = { ...options.headers, ...(token() ? { Authorization: `Bearer ${token()}` } : {}) };
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) showTokenBox();
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

export const send = (path, method, body) => api(path, {  // a write: JSON in, JSON out
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

// -- API token: asked for only when the server says it needs one (GET /api/auth) ----------

export function showTokenBox() {
  $("token-box").hidden = false;
  $("token").value = token() || "";
}

// -- formatting ---------------------------------------------------------------------------

export const query = (values) => new URLSearchParams(values).toString();
export const number = (v) => (v === null || v === undefined ? "-" : v.toLocaleString("en-US", { maximumFractionDigits: 1 }));

export function age(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

export function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

export function fillSelect(select, values, chosen, label = (v) => v) {
  select.replaceChildren(...values.map((v) => new Option(label(v), v, false, v === chosen)));
}

const timeFormats = new Map();
function parts(ms, seconds) {  // the fields of ms in the chosen zone
  const key = `${zone.tz} ${seconds}`;
  if (!timeFormats.has(key)) {
    timeFormats.set(key, new Intl.DateTimeFormat("en-CA", {
      timeZone: zone.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", ...(seconds ? { second: "2-digit" } : {}),
    }));
  }
  return Object.fromEntries(timeFormats.get(key).formatToParts(ms).map((p) => [p.type, p.value]));
}

export function localTime(ms) {  // "YYYY-MM-DD HH:MM" in the chosen zone
  const part = parts(ms, false);
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}`;
}

export function clockTime(ms) {  // "HH:MM:SS" in the chosen zone
  const part = parts(ms, true);
  return `${part.hour}:${part.minute}:${part.second}`;
}
