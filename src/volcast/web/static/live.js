// The live section: every series `volcast serve` watches, at once, with its forecast, the
// thresholds of its alert rules and the nowcast of its open candle; the alerts and the rules.
// It polls /api/live and /api/alerts every LIVE_S seconds and redraws in place (Plotly.react,
// rows kept by key), so an operator's view, zoom or click survives each update.

import {
  $, PALETTE, age, api, clockTime, localTime, number, params, query, send, zone,
} from "./common.js";

const LIVE_S = Number(params.get("refresh")) || 5;  // ?refresh=N, shared with the rest
const RECENT = 50;  // alert events listed besides the open ones
const BAND = "rgba(0,114,178,0.25)";
const KIND_HINT = {
  q90_above: "threshold: volume per candle (or the horizon's sum), in the rule's unit",
  exceed_probability: "threshold: a probability (0-1) that volume exceeds level (in the rule's unit)",
  above_forecast: "threshold: a factor k; fires when a closed candle is above k x its forecast q90",
  stale: "threshold: candle lengths without a new candle",
};
const live = {
  started: false, inFlight: false, again: false,
  answer: null,  // the last /api/live answer, redrawn when the time zone changes
  rules: [],
};

export function startLive(health) {  // once; later calls (a token entered) just poll now
  if (!("watching" in health)) {  // an app without the live service: nothing to poll
    showWatching(false);
    return;
  }
  if (!live.started) {
    live.started = true;
    bindLive();
    setInterval(poll, LIVE_S * 1000);
  }
  poll();
}

export function redrawLive() {
  if (live.answer) drawGrid(live.answer);
}

// -- polling: one request set at a time; a change asked for meanwhile runs right after -----

async function poll() {
  if (live.inFlight) {
    live.again = true;
    return;
  }
  live.inFlight = true;
  try {
    do {
      live.again = false;
      await pollOnce();
    } while (live.again);
  } finally {
    live.inFlight = false;
  }
}

async function pollOnce() {
  try {
    const wanted = { unit: $("live-unit").value, hours: $("live-hours").value };
    const answer = await api(`/api/live?${query(wanted)}`);
    showWatching(answer.watching);
    if (answer.watching) {
      const [open, recent, rules] = await Promise.all([
        api("/api/alerts?open=true"), api(`/api/alerts?open=false&limit=${RECENT}`),
        api("/api/alert-rules")]);
      live.rules = rules;
      drawRules(rules);
      drawAlerts(open, recent);
    }
    live.answer = answer;
    drawGrid(answer);
    $("live-status").textContent = "";
    $("live-updated").textContent = `updated ${clockTime(Date.now())} (${zone.tz})`;
  } catch (error) {
    $("live-status").textContent = `live: ${error.message} (trying again every ${LIVE_S} s)`;
  }
}

function showWatching(watching) {
  $("live-none").hidden = watching;
  $("live-alerts").hidden = !watching;
  $("live-controls").hidden = !watching;
}

// -- the grid: one card per watched series -------------------------------------------------

function drawGrid(answer) {
  const grid = $("live-grid");
  const cards = new Map([...grid.children].map((card) => [card.dataset.id, card]));
  answer.series.forEach((s, i) => {
    const card = cards.get(s.id) || newCard(s.id);
    cards.delete(s.id);
    if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null);
    fillCard(card, s);
  });
  for (const gone of cards.values()) {
    Plotly.purge(gone.querySelector(".live-chart"));
    gone.remove();
  }
  fillTargets(answer.series);
}

function element(tag, className, text = "") {
  const made = document.createElement(tag);
  made.className = className;
  made.textContent = text;
  return made;
}

function newCard(id) {
  const card = element("article", "live-card");
  card.dataset.id = id;
  const head = element("header", "");
  head.append(element("strong", "live-id", id), element("span", "badge live-stale", "stale"),
    element("span", "badge live-error"));
  card.append(head, element("p", "note live-meta"), element("p", "live-firing"),
    element("p", "note live-nowcast"), element("div", "live-chart"));
  return card;
}

function fillCard(card, s) {
  const text = (cls, value) => { card.querySelector(cls).textContent = value; };
  const last = s.last_candle === null ? "no candle yet"
    : `last candle ${localTime(s.last_candle)} (${zone.tz}), ${age(s.age_s)} old`;
  text(".live-meta", `volume in ${s.unit ?? "-"}; ${last}; `
    + (s.model ? `forecast by ${s.model}` : s.note || "no forecast yet"));
  card.dataset.lastCandle = s.last_candle ?? "";
  card.dataset.stale = s.stale;
  card.querySelector(".live-stale").hidden = !s.stale;
  const error = card.querySelector(".live-error");
  error.hidden = !s.error;
  error.textContent = s.error ? `fetch error: ${s.error}` : "";
  card.querySelector(".live-firing").hidden = !s.firing.length;
  text(".live-firing", s.firing.length ? `firing: ${s.firing.join(", ")}` : "");
  const n = s.nowcast;
  text(".live-nowcast", n ? `open candle, ${Math.round(100 * n.elapsed)}% through: `
    + `${number(n.so_far)} ${s.unit} so far, expected ${number(n.q50)} ${s.unit} `
    + `(q10 ${number(n.q10)} - q90 ${number(n.q90)})` : "");
  Plotly.react(card.querySelector(".live-chart"), liveTraces(s), liveLayout(s),
    { responsive: true, displayModeBar: false });
}

function liveTraces(s) {
  const traces = [{
    x: s.history.ds.map(localTime), y: s.history.y, name: `volume (${s.unit})`, mode: "lines",
    line: { color: PALETTE[5], width: 1.2 },
  }];
  const f = s.forecast;
  if (f) {
    const x = f.ds.map(localTime);
    if (f.q10.every((v) => v !== null)) {
      traces.push({ x, y: f.q10, mode: "lines", line: { width: 0 }, hoverinfo: "skip", name: "q10" });
      traces.push({ x, y: f.q90, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: BAND, name: "q10-q90 (80%)" });
    }
    traces.push({ x, y: f.q50, mode: "lines", name: `${s.model} q50`, line: { color: PALETTE[0], dash: "dash" } });
  }
  const n = s.nowcast;
  if (n) {
    traces.push({
      x: [localTime(n.open)], y: [n.q50], mode: "markers", name: "open candle (nowcast q50)",
      marker: { color: PALETTE[3], size: 8 },
      error_y: { type: "data", symmetric: false, array: [n.q90 - n.q50], arrayminus: [n.q50 - n.q10], color: PALETTE[3] },
    });
  }
  return traces;
}

function liveLayout(s) {
  const firing = new Set(s.firing);
  const color = (t) => (firing.has(t.rule) ? PALETTE[3] : PALETTE[1]);
  return {
    height: 240, margin: { t: 10, r: 10, b: 40, l: 60 }, showlegend: false, uirevision: s.id,
    yaxis: { title: { text: `volume (${s.unit} per candle)` }, rangemode: "tozero" },
    shapes: s.thresholds.map((t) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, y0: t.value, y1: t.value,
      line: { dash: "dash", width: 1, color: color(t) },
    })),
    annotations: s.thresholds.map((t) => ({
      xref: "paper", x: 0, y: t.value, xanchor: "left", yanchor: "bottom", showarrow: false,
      text: `${t.rule}: ${number(t.value)} ${s.unit}`, font: { size: 10, color: color(t) },
    })),
  };
}

function fillTargets(series) {  // the rule form's choices: each watched series, each exchange
  const exchanges = [...new Set(series.map((s) => s.exchange))];
  $("live-targets").replaceChildren(
    ...[...series.map((s) => s.id), ...exchanges].map((v) => new Option(v, v)));
}

// -- tables kept row by row, so that a click on a row's button is never lost to a redraw -----

function syncRows(table, items, keyOf, make, fill) {
  const body = table.tBodies[0];
  const rows = new Map([...body.rows].map((row) => [row.dataset.key, row]));
  items.forEach((item, i) => {
    const key = String(keyOf(item));
    const row = rows.get(key) || make(key);
    rows.delete(key);
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
    fill(row, item);
  });
  for (const gone of rows.values()) gone.remove();
}

function rowWithButton(key, cells, label, onClick) {
  const row = document.createElement("tr");
  row.dataset.key = key;
  for (let i = 0; i < cells; i++) row.insertCell();
  const button = element("button", "", label);
  button.type = "button";
  button.addEventListener("click", () => onClick(key));
  row.insertCell().append(button, element("span", "note"));
  return row;
}

function fillCells(row, texts) {
  texts.forEach((text, i) => { row.cells[i].textContent = text; });
}

function unitName(target, unit) {  // "binance:BTC/USDT:1h" and "quote" -> "USDT"
  const parts = target.split(":");
  if (parts.length < 3) return `${unit} currency`;  // an exchange's total
  const [base, quote] = parts[1].split("/");
  return unit === "quote" ? quote : base;
}

function measure(kind, value, unit) {  // a rule's number, in the words of its kind
  if (value === null || value === undefined) return "-";
  if (kind === "exceed_probability") return `${(100 * value).toFixed(0)}%`;
  if (kind === "above_forecast") return `${number(value)} x q90`;
  if (kind === "stale") return `${number(value)} candles`;
  return `${number(value)} ${unit}`;
}

// -- alerts: the open ones first, then the recent ones; each unacknowledged one can be acked --

function drawAlerts(open, recent) {
  const openIds = new Set(open.map((e) => e.id));
  const events = [...open, ...recent.filter((e) => !openIds.has(e.id))];
  syncRows($("alerts"), events, (e) => e.id, (key) => rowWithButton(key, 7, "acknowledge", ack),
    (row, e) => fillAlert(row, e, openIds.has(e.id)));
  $("alerts-empty").hidden = events.length > 0;
}

function fillAlert(row, e, open) {
  const rule = live.rules.find((r) => r.name === e.rule);
  const unit = unitName(e.target, rule ? rule.unit : "base");
  fillCells(row, [localTime(e.at_ms), e.rule, e.target, e.state + (open ? " (open)" : ""),
    measure(e.kind, e.value, unit), measure(e.kind, e.threshold, unit), e.message]);
  row.dataset.state = e.state;
  row.className = e.state === "firing" && open ? "firing" : "";
  const [button, acked] = row.cells[7].children;
  button.hidden = e.acked_at_ms !== null;
  acked.textContent = e.acked_at_ms === null ? "" : `acknowledged ${localTime(e.acked_at_ms)}`;
}

async function ack(id) {
  try {
    await api(`/api/alerts/${id}/ack`, { method: "POST" });
    $("alerts-status").textContent = "";
  } catch (error) {
    $("alerts-status").textContent = `acknowledge: ${error.message}`;
  }
  poll();
}

// -- alert rules: listed, added through the form, deleted ------------------------------------

function drawRules(rules) {
  syncRows($("rules"), rules, (r) => r.name, (key) => rowWithButton(key, 7, "delete", removeRule),
    fillRule);
}

function fillRule(row, r) {
  const unit = unitName(r.series, r.unit);
  const level = r.kind === "exceed_probability" ? `, level ${number(r.level)} ${unit}` : "";
  const sum = r.kind === "q90_above" && r.aggregate === "sum" ? " (sum)" : "";
  fillCells(row, [r.name, r.series, r.kind, measure(r.kind, r.threshold, unit) + sum + level,
    String(r.horizon), `${r.debounce} / ${r.resolve_after}`, webhookHost(r.webhook)]);
  const [button, note] = row.cells[7].children;
  button.hidden = r.source !== "api";
  note.textContent = r.source === "api" ? "" : "in the config file";
}

function webhookHost(url) {  // a webhook's URL can hold a token: only its host is shown
  if (!url) return "-";
  try {
    return new URL(url).host;
  } catch {
    return "yes";
  }
}

function ruleFromForm() {
  const rule = {};
  for (const field of $("rule-form").elements) {
    if (!field.name || field.disabled || field.value.trim() === "") continue;
    rule[field.name] = field.type === "number" ? Number(field.value) : field.value.trim();
  }
  return rule;
}

async function addRule(event) {
  event.preventDefault();
  const rule = ruleFromForm();
  try {
    const made = await send("/api/alert-rules", "POST", rule);
    $("rule-status").textContent = `rule ${made.name} added`;
    $("rule-form").elements.name.value = "";
  } catch (error) {
    $("rule-status").textContent = `rule ${rule.name || ""}: ${error.message}`;
  }
  poll();
}

async function removeRule(name) {
  try {
    await api(`/api/alert-rules/${encodeURIComponent(name)}`, { method: "DELETE" });
    $("rule-status").textContent = `rule ${name} deleted`;
  } catch (error) {
    $("rule-status").textContent = `delete ${name}: ${error.message}`;
  }
  poll();
}

function showKindHint() {
  const kind = $("rule-kind").value;
  $("rule-hint").textContent = KIND_HINT[kind];
  $("rule-level").disabled = kind !== "exceed_probability";
}

function bindLive() {
  $("live-s").textContent = String(LIVE_S);
  for (const id of ["live-unit", "live-hours"]) $(id).addEventListener("change", poll);
  $("rule-form").addEventListener("submit", addRule);
  $("rule-kind").addEventListener("change", showKindHint);
  showKindHint();
}
