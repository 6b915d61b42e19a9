"""One self-contained HTML report: the analysis, the plots, the latest forecast and the
backtest table. plotly's JavaScript is embedded once in the page, so it opens offline."""

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from volcast.analysis import SeriesAnalysis
from volcast.data.timeframe import format_time
from volcast.evaluation.backtest import BacktestResult
from volcast.evaluation.compare import verdicts
from volcast.viz import charts, tables
from volcast.viz.interactive import figure
from volcast.viz.spec import Chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #555; font-size: 0.9rem; }
"""


@dataclass
class ReportInputs:
    """Everything the report shows for one series; ``model_note`` says what the forecasting
    model was trained on, so a reader knows how fresh it is."""

    name: str
    series: pd.DataFrame
    analysis: SeriesAnalysis
    forecast: pd.DataFrame
    model: str
    model_note: str
    backtests: list[BacktestResult]
    tz: str = "UTC"
    unit_kind: str = "base"
    """``y`` is base volume or quote volume (the analysis names the currency)."""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, escape=True)


def _chart(chart: Chart, number: int) -> str:
    return figure(chart).to_html(full_html=False, include_plotlyjs=False,
                                 div_id=f"chart-{number}", default_width="100%")


def _sections(r: ReportInputs) -> list[tuple[str, list[str | Chart]]]:
    a = r.analysis
    predictions = {b.model: b.predictions for b in r.backtests}
    main = next((b for b in r.backtests if b.model == r.model), None)
    return [
        ("Data", [_table(tables.coverage_frame([a])), _table(tables.distribution_frame([a]))]),
        ("When volume comes", [
            _table(tables.seasonality_frame([a])),
            *([charts.heatmap_chart(r.series, r.name, tz=r.tz, unit=a.unit),
               charts.heatmap_chart(r.series, r.name, relative=True, tz=r.tz)]
              if charts.intraday(r.series) else [])]),
        ("Spikes", [charts.history_chart(r.series, r.name, tz=r.tz, found=a.spikes,
                                         unit=a.unit),
                    "<p class='note'>Largest spikes: volume over the median of the previous "
                    "7 days.</p>", _table(tables.spikes_frame(a))]),
        ("What moves with volume", [
            "<p class='note'>Spearman correlation of volume with each driver measured "
            "<i>lag</i> candles earlier.</p>", _table(tables.drivers_frame(a))]),
        (f"Forecast: the next {len(r.forecast)} candles ({r.model})", [
            f"<p class='note'>{html.escape(r.model_note)} Plan capacity on q90.</p>",
            charts.fan_chart(r.series, r.forecast, r.name, unit=a.unit),
            _table(tables.forecast_frame(r.forecast, a.unit))]),
        ("Backtest (shared/bench/PROTOCOL.md)", [] if main is None else [
            _table(tables.scores_frame(r.backtests, a.unit)),
            *(f"<p><b>{html.escape(line)}</b></p>" for line in verdicts(r.backtests)),
            charts.comparison_chart(predictions, a.unit),
            charts.horizon_chart(predictions, a.unit),
            *([charts.calibration_chart(predictions)]
              if any(b.forecaster.supports_quantiles for b in r.backtests) else []),
            charts.origin_fan(r.series, main.predictions, f"{r.name}, {main.model}, last "
                              "backtest origin", unit=a.unit)]),
    ]


def render(reports: list[ReportInputs]) -> str:
    """One page: per series (titled by it when there are several) every section; with several
    series, first each one's share of the quote volume."""
    body: list[str] = []
    charts_made = 0

    def add(part: str | Chart) -> None:
        nonlocal charts_made
        if isinstance(part, Chart):
            charts_made += 1
            body.append(_chart(part, charts_made))
        else:
            body.append(part)

    several = len(reports) > 1
    if several:
        add("<h2>Share of the quote volume</h2>")
        add(charts.shares_chart(pd.concat([r.series for r in reports], ignore_index=True),
                                reports[0].unit_kind))
    for r in reports:
        for title, parts in _sections(r):
            add(f"<h2>{html.escape(f'{r.name}: {title}' if several else title)}</h2>")
            for part in parts:
                add(part)
    names = ", ".join(r.name for r in reports)
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    spans = "; ".join(f"{html.escape(r.name)} {format_time(r.analysis.coverage['first'])} to "
                      f"{format_time(r.analysis.coverage['last'])}" for r in reports)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>volcast report: {html.escape(names)}</title><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>"
            f"<h1>volcast report: {html.escape(names)}</h1>"
            f"<p class='note'>candles (UTC) {spans}; hours and weekdays in "
            f"{html.escape(reports[0].tz)}; made {made} UTC by volcast.</p>"
            + "\n".join(body) + "</body></html>")


def write_report(reports: list[ReportInputs], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(reports), encoding="utf-8")
    return path


def trained_note(info: dict[str, object]) -> str:
    """What a model learned from, in words (from the training info every model keeps)."""
    if not info:
        return "The model was not trained on these candles."
    series = ", ".join(map(str, info.get("series", [])))
    return (f"Model trained on {series}, candles {format_time(info['first_ds'])} to "
            f"{format_time(info['last_ds'])} UTC.")
