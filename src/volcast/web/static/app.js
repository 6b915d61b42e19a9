// volcast dashboard: plain JavaScript over the HTTP API (no build step), plotly.js served by
// the app itself. Every number shown comes from /api; nothing is computed twice here.

const $ = (id) => document.getElementById(id);
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#000000"];
const DAY = 86400000;
const REFRESH_S = Number(new URLSearchParams(location.search).get("refresh")) || 30;  // ?refresh=N
const state = { models: [], references: [], series: [], job: null };

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

const query = (params) => new URLSearchParams(params).toString();
const number = (v) => (v === null || v === undefined ? "-" : v.toLocaleString("en-US", { maximumFractionDigits: 1 }));
const utc = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
function age(seconds) {
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}
function status(text) { $("status").textContent = text; }
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function selected() {
  const s = state.series[$("series").selectedIndex];
  return s ? { exchange: s.exchange, symbol: s.symbol, timeframe: s.timeframe } : null;
}

function fillSelect(select, values, chosen, label = (v) => v) {
  select.replaceChildren(...values.map((v) => new Option(label(v), v, false, v === chosen)));
}

async function loadModels() {
  const found = await api("/api/models");
  state.models = found.models;
  state.references = found.references;
  fillSelect($("ov-model"), state.models, "hour_of_week_median_4w");
}

async function loadSeries() {
  const before = selected();
  state.series = await api("/api/series");
  const names = state.series.map((s) => `${s.exchange} ${s.symbol} ${s.timeframe}`);
  const keep = before ? `${before.exchange} ${before.symbol} ${before.timeframe}` : names[0];
  fillSelect($("series"), names, keep);
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

async function loadOverview() {
  const threshold = $("ov-threshold").value;
  const params = { timeframe: $("ov-timeframe").value, model: $("ov-model").value };
  if (threshold !== "") params.threshold = threshold;
  const body = $("overview").tBodies[0];
  let rows;
  try {
    rows = await api(`/api/overview?${query(params)}`);
  } catch (error) {
    status(`overview: ${error.message}`);
    return;
  }
  body.replaceChildren();
  for (const r of rows) {
    const row = body.insertRow();
    row.dataset.series = `${r.exchange} ${r.symbol} ${r.timeframe}`;
    cell(row, row.dataset.series);
    cell(row, utc(r.last_candle));
    cell(row, age(r.age_s) + (r.stale ? " (stale)" : ""), r.stale ? "stale" : "");
    const f = r.forecast;
    if (f) {
      cell(row, number(f.expected_volume));
      cell(row, number(f.p90_volume));
      cell(row, number(f.peak_p90));
      cell(row, f.share_over_threshold === null ? "-" : `${Math.round(100 * f.share_over_threshold)}%`);
    } else {
      const td = row.insertCell();
      td.colSpan = 4;
      td.textContent = r.note;
      td.className = "note";
    }
    row.addEventListener("click", () => choose(row.dataset.series));
  }
}

function choose(name) {
  const index = state.series.findIndex((s) => `${s.exchange} ${s.symbol} ${s.timeframe}` === name);
  if (index >= 0) {
    $("series").selectedIndex = index;
    fillModels();
    drawSeries();
  }
}

async function drawHistory(key, model) {
  const s = state.series[$("series").selectedIndex];
  const recent = await api(`/api/candles?${query({ ...key, start: s.last - 14 * DAY, limit: 5000 })}`);
  const traces = [{
    x: recent.candles.map((c) => c.timestamp_time), y: recent.candles.map((c) => c.volume),
    name: "volume", mode: "lines", line: { color: PALETTE[5], width: 1.2 },
  }];
  const trained = state.references.includes(model) || s.trained.includes(model);
  if (trained) {
    const f = await api(`/api/forecast?${query({ ...key, model })}`);
    const x = f.forecast.map((r) => r.time);
    if (f.forecast.every((r) => r.q10 !== null)) {
      traces.push({ x, y: f.forecast.map((r) => r.q10), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x, y: f.forecast.map((r) => r.q90), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(0,114,178,0.25)", name: "q10-q90 (80%)" });
    }
    traces.push({ x, y: f.forecast.map((r) => r.q50), mode: "lines", name: `${model} median`, line: { color: PALETTE[0], dash: "dash" } });
    const trainedTo = f.trained.last_ds ? ` (trained on candles up to ${utc(f.trained.last_ds)} UTC)` : "";
    status(`forecast by ${model} from the latest candle${trainedTo}`);
  } else {
    status(`${model} is not trained for this series yet: press "train model"`);
  }
  Plotly.react("history-chart", traces, {
    title: { text: `${key.symbol} on ${key.exchange}: last 14 days and the forecast (UTC)` },
    xaxis: { title: { text: "time (UTC)" } }, yaxis: { title: { text: "volume per candle" } },
    template: "plotly_white", height: 440, margin: { t: 60, l: 60, r: 20 },
  }, { responsive: true });
}

async function drawHeatmap(key) {
  const found = await api(`/api/analysis?${query(key)}`);
  const profile = found.series[0].seasonality.hour_of_week;
  const z = Array.from({ length: 7 }, () => Array(24).fill(null));
  for (const p of profile) z[Math.floor(p.how / 24)][p.how % 24] = p.median;
  Plotly.react("heatmap-chart", [{
    type: "heatmap", z, x: [...Array(24).keys()], y: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    colorscale: "Cividis", colorbar: { title: { text: "volume" } },
  }], {
    title: { text: "median volume by hour of week (UTC)" }, xaxis: { title: { text: "hour of day (UTC)" } },
    yaxis: { autorange: "reversed" }, template: "plotly_white", height: 380, margin: { t: 60 },
  }, { responsive: true });
}

async function loadBacktests(key) {
  const rows = await api(`/api/backtests?${query(key)}`);
  const body = $("backtests").tBodies[0];
  body.replaceChildren();
  rows.sort((a, b) => a.scores.mae - b.scores.mae);
  for (const r of rows) {
    const row = body.insertRow();
    cell(row, r.model);
    cell(row, number(r.scores.mae));
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
    status("no stored series yet: fetch one with the API or `volcast fetch`");
    return;
  }
  try {
    await Promise.all([drawHistory(key, $("model").value), drawHeatmap(key), loadBacktests(key)]);
  } catch (error) {
    status(error.message);
  }
}

async function startJob(kind) {
  const key = selected();
  if (!key) return;
  try {
    const job = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind, ...key, model: $("model").value }),
    });
    watch(job);
  } catch (error) {
    status(`${kind}: ${error.message}`);
  }
}

async function watch(job) {
  state.job = job.id;
  $("job").hidden = false;
  $("job-label").textContent = `${job.kind} ${job.symbol}${job.model && job.kind !== "fetch" ? ` (${job.model})` : ""}:`;
  while (true) {
    const now = await api(`/api/jobs/${job.id}`);
    $("job-progress").max = Math.max(1, now.total);
    $("job-progress").value = now.done;
    $("job-message").textContent = `${now.state} ${now.message}`;
    if (!["queued", "running"].includes(now.state)) {
      status(now.state === "done" ? `${now.kind} done` : `${now.kind} ${now.state}${now.error ? `: ${now.error}` : ""}`);
      state.job = null;
      $("job").dataset.state = now.state;
      await refresh();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function refresh() {
  await loadSeries();
  await Promise.all([loadOverview(), drawSeries()]);
}

async function main() {
  const health = await api("/health");
  $("health").textContent = `version ${health.version}, ${health.series} series stored`;
  await loadModels();
  await refresh();
  $("series").addEventListener("change", () => { fillModels(); drawSeries(); });
  $("model").addEventListener("change", drawSeries);
  for (const id of ["ov-timeframe", "ov-model", "ov-threshold"]) $(id).addEventListener("change", loadOverview);
  for (const kind of ["fetch", "train", "backtest"]) $(`job-${kind}`).addEventListener("click", () => startJob(kind));
  $("job-cancel").addEventListener("click", () => state.job && api(`/api/jobs/${state.job}`, { method: "DELETE" }));
  setInterval(() => { if (!state.job) refresh(); }, REFRESH_S * 1000);
  $("refresh-s").textContent = String(REFRESH_S);
  document.body.dataset.ready = "true";
}

main().catch((error) => status(error.message));
