// volcast dashboard: plain JavaScript over the HTTP API (no build step), plotly.js served by
// the app itself. Every number shown comes from /api; nothing is computed twice here. This
// file draws the stored series; live.js the watched ones at the top of the page.

import {
  $, PALETTE, age, api, cell, fillSelect, localTime, number, params, query, setToken,
  showTokenBox, token, zone,
} from "./common.js";
import { redrawLive, startLive } from "./live.js";

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAY = 86400000;
const REFRESH_S = Number(params.get("refresh")) || 30;  // ?refresh=N
const JOB_POLL_MS = 500;
const state = {
  models: [], references: [], series: [], auth: { writes: false, reads: false },
  health: {},  // GET /health: "watching" in it when the server runs the live service
  jobs: new Map(),  // id -> job, for every job this page has seen queued or running
  polling: false, refreshing: false,
};

// -- API token: asked for only when the server says it needs one (GET /api/auth) ----------

function changeToken() {
  setToken($("token").value.trim());
  refresh();
  watchJobs();
  startLive(state.health);
}

async function loadAuth() {
  state.auth = await api("/api/auth");
  if (state.auth.writes || state.auth.reads) showTokenBox();
  if (state.auth.reads && !token()) {
    status("this server needs its API token to show data: enter it above (top right)");
  }
}

const seriesName = (s) => `${s.exchange} ${s.symbol} ${s.timeframe}`;
function status(text) { $("status").textContent = text; }

// -- time zone: ?tz=NAME, else UTC; the heatmap and every time shown use it --------------

function canonicalZone(name) {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

function setupZone() {
  const asked = params.get("tz") || "UTC";
  zone.tz = canonicalZone(asked) || "UTC";
  if (!canonicalZone(asked)) status(`unknown time zone '${asked}': times are shown in UTC`);
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zones = [...new Set(["UTC", zone.tz, ...known])];
  fillSelect($("tz"), zones, zone.tz);
  showZone();
}

function showZone() {
  for (const el of document.querySelectorAll(".tz-name")) el.textContent = zone.tz;
}

function changeZone() {
  zone.tz = $("tz").value;
  params.set("tz", zone.tz);
  history.replaceState(null, "", `?${params}`);
  showZone();
  refresh();
  redrawLive();
}

// -- series and models --------------------------------------------------------------------

function selected() {
  const s = state.series[$("series").selectedIndex];
  return s ? { exchange: s.exchange, symbol: s.symbol, timeframe: s.timeframe } : null;
}

async function loadModels() {
  const found = await api("/api/models");
  state.models = found.models;
  state.references = found.references;
  fillSelect($("ov-model"), state.models, "mstl");
}

async function loadSeries() {
  const before = selected();
  state.series = await api("/api/series");
  const names = state.series.map(seriesName);
  fillSelect($("series"), names, before ? seriesName(before) : names[0]);
  fillModels();
}

function fillModels() {
  const s = state.series[$("series").selectedIndex];
  if (!s) return;
  const current = $("model").value;
  const available = (m) => state.references.includes(m) || s.trained.includes(m);
  const preferred = current && available(current) ? current
    : s.trained.includes("lstm") ? "lstm" : "hour_of_week_median_4w";
  fillSelect($("model"), state.models, preferred, (m) => (available(m) ? m : `${m} (not trained)`));
}

// -- overview -----------------------------------------------------------------------------

async function loadOverview() {
  const threshold = $("ov-threshold").value;
  const wanted = { timeframe: $("ov-timeframe").value, model: $("ov-model").value, unit: $("ov-unit").value };
  if (threshold !== "") wanted.threshold = threshold;
  let rows;
  try {
    rows = await api(`/api/overview?${query(wanted)}`);
  } catch (error) {
    status(`overview: ${error.message}`);
    return;
  }
  const body = $("overview").tBodies[0];
  body.replaceChildren();
  for (const r of rows) overviewRow(body, r);
  if (!rows.length) explainEmptyOverview(body, wanted.timeframe);
}

function overviewRow(body, r) {
  const row = body.insertRow();
  row.dataset.series = seriesName(r);
  cell(row, row.dataset.series);
  cell(row, localTime(r.last_candle));
  cell(row, age(r.age_s) + (r.stale ? " (stale)" : ""), r.stale ? "stale" : "");
  const f = r.forecast;
  if (f) {
    cell(row, `${number(f.expected_volume)} ${r.unit}`);
    cell(row, `${number(f.p90_volume)} ${r.unit}`);
    cell(row, `${number(f.peak_p90)} ${r.unit}`);
    cell(row, f.share_over_threshold === null ? "-" : `${Math.round(100 * f.share_over_threshold)}%`);
  } else {
    cell(row, r.note, "note").colSpan = 4;
  }
  row.addEventListener("click", () => choose(row.dataset.series));
}

function explainEmptyOverview(body, timeframe) {
  const others = [...new Set(state.series.map((s) => s.timeframe))].filter((t) => t !== timeframe);
  let text = `no stored series with timeframe ${timeframe}; fetch one (button below) or `
    + `\`volcast fetch -e EXCHANGE -s SYMBOL -t ${timeframe} --since YYYY-MM-DD\``;
  if (others.length) text += `. Stored series have timeframe ${others.join(", ")}`;
  const row = body.insertRow();
  row.className = "empty";
  cell(row, text, "note").colSpan = 7;
}

function choose(name) {
  const index = state.series.findIndex((s) => seriesName(s) === name);
  if (index >= 0) {
    $("series").selectedIndex = index;
    fillModels();
    drawSeries();
  }
}

// -- one series: history with forecast, heatmap, backtests ---------------------------------

async function drawHistory(key, model) {
  const s = state.series[$("series").selectedIndex];
  const recent = await api(`/api/candles?${query({ ...key, start: s.last - 14 * DAY, limit: 5000 })}`);
  const traces = [{
    x: recent.candles.map((c) => localTime(c.timestamp)), y: recent.candles.map((c) => c.volume),
    name: "volume", mode: "lines", line: { color: PALETTE[5], width: 1.2 },
  }];
  const trained = state.references.includes(model) || s.trained.includes(model);
  if (trained) {
    const f = await api(`/api/forecast?${query({ ...key, model })}`);
    traces.push(...forecastTraces(f.forecast, model));
    const trainedTo = f.trained.last_ds ? ` (trained on candles up to ${localTime(f.trained.last_ds)} ${zone.tz})` : "";
    status(`forecast by ${model} from the latest candle${trainedTo}`);
  } else {
    status(`${model} is not trained for this series yet: press "train model"`);
  }
  Plotly.react("history-chart", traces, {
    title: { text: `${key.symbol} on ${key.exchange}: last 14 days and the forecast (${zone.tz})` },
    xaxis: { title: { text: `time (${zone.tz})` } }, yaxis: { title: { text: `volume (${s.base} per candle)` } },
    template: "plotly_white", height: 440, margin: { t: 60, l: 60, r: 20 },
  }, { responsive: true });
}

function forecastTraces(forecast, model) {
  const x = forecast.map((r) => localTime(r.ds));
  const traces = [];
  if (forecast.every((r) => r.q10 !== null)) {
    traces.push({ x, y: forecast.map((r) => r.q10), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
    traces.push({ x, y: forecast.map((r) => r.q90), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(0,114,178,0.25)", name: "q10-q90 (80%)" });
  }
  traces.push({ x, y: forecast.map((r) => r.q50), mode: "lines", name: `${model} median`, line: { color: PALETTE[0], dash: "dash" } });
  return traces;
}

async function drawHeatmap(key) {
  const found = await api(`/api/analysis?${query({ ...key, tz: zone.tz })}`);
  const season = found.series[0].seasonality;
  const z = Array.from({ length: 7 }, () => Array(24).fill(null));
  for (const p of season.hour_of_week) z[Math.floor(p.how / 24)][p.how % 24] = p.median;
  Plotly.react("heatmap-chart", [{
    type: "heatmap", z, x: [...Array(24).keys()], y: WEEKDAYS,
    colorscale: "Cividis", colorbar: { title: { text: `volume (${found.unit})` } },
  }], {
    title: { text: `median volume by hour of week (${season.tz})` },
    xaxis: { title: { text: `hour of day (${season.tz})` } },
    yaxis: { autorange: "reversed" }, template: "plotly_white", height: 380, margin: { t: 60 },
  }, { responsive: true });
  const top = (rows) => rows.reduce((best, r) => (r.median > best.median ? r : best));
  const hour = String(top(season.by_hour).hour).padStart(2, "0");
  $("busiest").textContent = `busiest hour (${season.tz}), by median volume: ${hour}:00; `
    + `busiest weekday: ${WEEKDAYS[top(season.by_weekday).weekday]}`;
}

async function loadBacktests(key) {
  const rows = await api(`/api/backtests?${query(key)}`);
  const body = $("backtests").tBodies[0];
  body.replaceChildren();
  rows.sort((a, b) => a.scores.mae - b.scores.mae);
  for (const r of rows) {
    const row = body.insertRow();
    cell(row, r.model);
    cell(row, `${number(r.scores.mae)} ${state.series[$("series").selectedIndex].base}`);
    cell(row, r.scores.mase === null ? "-" : r.scores.mase.toFixed(3));
    cell(row, number(r.scores.smape));
    cell(row, r.scores.coverage === null ? "-" : r.scores.coverage.toFixed(3));
    cell(row, String(r.origins));
  }
  if (!rows.length) {
    const row = body.insertRow();
    cell(row, 'no backtest yet: press "run backtest"', "note");
  }
}

async function drawSeries() {
  const key = selected();
  if (!key) {
    status("no stored series yet: fetch one (form below the overview) or `volcast fetch`");
    return;
  }
  try {
    await Promise.all([drawHistory(key, $("model").value), drawHeatmap(key), loadBacktests(key)]);
  } catch (error) {
    status(error.message);
  }
}

// -- jobs: every queued or running one, with progress and a cancel button -----------------

const isActive = (job) => job.state === "queued" || job.state === "running";
const outcome = (job) => `${job.kind} ${job.symbol} ${job.state}${job.error ? `: ${job.error}` : ""}`;

async function startJob(request) {
  try {
    const job = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
    });
    state.jobs.set(job.id, job);
    showJob(job);
    watchJobs();
  } catch (error) {
    status(`${request.kind}: ${error.message}`);
  }
}

function startSeriesJob(kind) {
  const key = selected();
  if (key) startJob({ kind, ...key, model: $("model").value });
}

function startNewFetch() {
  const request = { kind: "fetch", exchange: $("new-exchange").value.trim(),
    symbol: $("new-symbol").value.trim(), timeframe: $("new-timeframe").value.trim() };
  if ($("new-since").value) request.since = $("new-since").value;
  startJob(request);
}

async function cancelJob(id) {
  try {
    showJob(await api(`/api/jobs/${id}`, { method: "DELETE" }));
  } catch (error) {
    status(`cancel: ${error.message}`);
  }
  watchJobs();
}

function watchJobs() {  // one polling loop at a time; it ends when no job is active
  if (state.polling) return;
  state.polling = true;
  pollJobs();
}

async function pollJobs() {
  try {
    const ended = trackJobs(await api("/api/jobs"));
    if (ended.length) {
      status(ended.map(outcome).join("; "));
      await refresh();
    }
  } catch (error) {
    status(`job progress: ${error.message} (trying again)`);
  }
  if ([...state.jobs.values()].some(isActive)) setTimeout(pollJobs, JOB_POLL_MS);
  else state.polling = false;
}

function trackJobs(listed) {  // listed: newest first; returns the jobs that just ended
  const ended = [];
  const ids = new Set(listed.map((job) => job.id));
  for (const id of state.jobs.keys()) if (!ids.has(id)) forgetJob(id);
  for (const job of [...listed].reverse()) {
    const before = state.jobs.get(job.id);
    if (!before && !isActive(job)) continue;  // ended before this page saw it
    if (before && isActive(before) && !isActive(job)) ended.push(job);
    state.jobs.set(job.id, job);
    showJob(job);
  }
  return ended;
}

function forgetJob(id) {  // the server no longer knows it (restarted, or forgot old jobs)
  state.jobs.delete(id);
  $("jobs").querySelector(`tr[data-job="${id}"]`)?.remove();
  $("jobs").hidden = state.jobs.size === 0;
}

function jobRow(id) {
  const body = $("jobs").tBodies[0];
  let row = body.querySelector(`tr[data-job="${id}"]`);
  if (row) return row;
  row = body.insertRow(0);  // newest on top
  row.dataset.job = id;
  for (let i = 0; i < 3; i++) row.insertCell();
  row.insertCell().append(document.createElement("progress"));
  row.insertCell().className = "note";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = "cancel";
  cancel.addEventListener("click", () => cancelJob(id));
  row.insertCell().append(cancel);
  $("jobs").hidden = false;
  return row;
}

function showJob(job) {  // updates the row in place, so a click on its button is never lost
  const row = jobRow(job.id);
  row.dataset.state = job.state;
  row.cells[0].textContent = job.kind + (job.model && job.kind !== "fetch" ? ` ${job.model}` : "");
  row.cells[1].textContent = seriesName(job);
  row.cells[2].textContent = job.state;
  const bar = row.cells[3].firstChild;
  bar.max = Math.max(1, job.total);
  bar.value = job.done;
  row.cells[4].textContent = job.error || job.message;
  row.cells[5].firstChild.hidden = !isActive(job);
}

// -- refresh: every REFRESH_S seconds, whatever a job or a request did ----------------------

async function refresh() {
  state.refreshing = true;
  try {
    if (!state.models.length) await loadModels();
    await loadSeries();
    await Promise.all([loadOverview(), drawSeries()]);
  } catch (error) {
    status(error.message);
  } finally {
    state.refreshing = false;
  }
}

function tick() {
  if (!state.refreshing) refresh();
  watchJobs();  // finds jobs started elsewhere (the API, another tab)
}

function bindControls() {
  $("tz").addEventListener("change", changeZone);
  $("series").addEventListener("change", () => { fillModels(); drawSeries(); });
  $("model").addEventListener("change", drawSeries);
  for (const id of ["ov-timeframe", "ov-model", "ov-threshold", "ov-unit"]) $(id).addEventListener("change", loadOverview);
  for (const kind of ["fetch", "train", "backtest"]) $(`job-${kind}`).addEventListener("click", () => startSeriesJob(kind));
  $("job-new-fetch").addEventListener("click", startNewFetch);
  $("token").addEventListener("change", changeToken);
}

async function main() {
  setupZone();
  bindControls();
  $("refresh-s").textContent = String(REFRESH_S);
  setInterval(tick, REFRESH_S * 1000);
  try {
    state.health = await api("/health");
    const health = state.health;
    $("health").textContent = `version ${health.version}, ${health.series} series stored`;
    await loadAuth();
  } catch (error) {
    status(error.message);
  }
  if (!state.auth.reads || token()) {
    startLive(state.health);
    await refresh();
    watchJobs();
  }
  document.body.dataset.ready = "true";
}

main();
