"""The figures people read, as frames of text: one place that formats them, for the terminal's
rich tables (``ui.frame_table``) and the HTML report (``DataFrame.to_html``) alike."""

from typing import TYPE_CHECKING

import pandas as pd

from volcast.analysis.profile import WEEKDAYS
from volcast.data.timeframe import format_time

if TYPE_CHECKING:
    from volcast.analysis import Analysis, SeriesAnalysis
    from volcast.evaluation.backtest import BacktestResult


def fmt(value: float | None, spec: str) -> str:
    """A figure as text; an undefined one (NaN, or None from JSON) as "-"."""
    return "-" if value is None or value != value else format(value, spec)


def scores_frame(results: "list[BacktestResult]", unit: str = "") -> pd.DataFrame:
    """The protocol's overall scores per model, best MAE first, with the gap to the best
    reference model stated plainly; errors in volume carry ``unit`` (BTC) when given."""
    u = f" ({unit})" if unit else ""
    from volcast.evaluation.compare import versus_best_reference

    relative = versus_best_reference(results)
    rows = []
    for r in sorted(results, key=lambda r: r.scores["overall"]["mae"]):
        o = r.scores["overall"]
        gap = relative.get(r.model)
        rows.append({
            "model": r.model + (" (refit per origin)" if r.refits_per_origin else ""),
            f"MAE{u}": fmt(o["mae"], ",.2f"), "vs best reference": "-" if gap is None
            else f"{gap:+.1%}", f"RMSE{u}": fmt(o["rmse"], ",.2f"),
            "sMAPE %": fmt(o["smape"], ".2f"), "MASE": fmt(o["mase"], ".3f"),
            "MAE log1p": fmt(o["mae_log1p"], ".4f"), f"pinball{u}": fmt(o["pinball"], ",.2f"),
            "q10-q90 coverage": fmt(o["coverage"], ".3f"),
            "train s": f"{r.train_s:.1f}", "predict s": f"{r.predict_s:.2f}"})
    return pd.DataFrame(rows)


def forecast_frame(forecast: pd.DataFrame, unit: str = "base units") -> pd.DataFrame:
    """Volume quantiles per candle, with the unit of each row (the forecast's ``unit`` column
    when it has one, else ``unit``)."""
    return pd.DataFrame({
        "series": forecast["unique_id"], "candle (UTC)": forecast["ds"].map(format_time),
        "q10": forecast["q10"].map(lambda v: fmt(v, ",.2f")),
        "q50 (median)": forecast["q50"].map(lambda v: fmt(v, ",.2f")),
        "q90": forecast["q90"].map(lambda v: fmt(v, ",.2f")),
        "unit": forecast.get("unit", unit)})


def coverage_frame(analyses: "list[SeriesAnalysis]") -> pd.DataFrame:
    return pd.DataFrame([{
        "series": a.unique_id, "first (UTC)": format_time(a.coverage["first"]),
        "last (UTC)": format_time(a.coverage["last"]), "candles": f"{a.coverage['candles']:,}",
        "missing": f"{a.coverage['missing']:,}", "gaps": str(a.coverage["gaps"]),
        "largest gap": str(a.coverage["largest_gap"]),
        "zero volume": f"{a.coverage['zero_share']:.2%}"} for a in analyses])


def seasonality_frame(analyses: "list[SeriesAnalysis]") -> pd.DataFrame:
    """Per series: the share of variance each calendar grouping explains, and the busiest and
    quietest hour and weekday by median volume."""
    rows = []
    for a in analyses:
        s = a.seasonality
        hours = s["by_hour"].set_index("hour")["median"]
        days = s["by_weekday"].set_index("weekday")["median"]
        rows.append({
            "series": a.unique_id, "hour of day explains": f"{s['explained']['hour']:.1%}",
            "weekday explains": f"{s['explained']['weekday']:.1%}",
            "hour of week explains": f"{s['explained']['how']:.1%}",
            f"busiest hour ({s['tz']})": f"{hours.idxmax():02d}:00",
            "quietest hour": f"{hours.idxmin():02d}:00",
            "busiest weekday": WEEKDAYS[days.idxmax()],
            "quietest weekday": WEEKDAYS[days.idxmin()]})
    return pd.DataFrame(rows)


def profile_frame(a: "SeriesAnalysis", by: str) -> pd.DataFrame:
    """Mean and median volume by hour of day (``by="hour"``) or by weekday."""
    table = a.seasonality[f"by_{by}"]
    labels = (table[by].map(lambda h: f"{h:02d}:00") if by == "hour"
              else table[by].map(WEEKDAYS.__getitem__))
    return pd.DataFrame({by: labels,
                         f"mean ({a.unit})": table["mean"].map(lambda v: fmt(v, ",.1f")),
                         f"median ({a.unit})": table["median"].map(lambda v: fmt(v, ",.1f"))})


def distribution_frame(analyses: "list[SeriesAnalysis]") -> pd.DataFrame:
    return pd.DataFrame([{"series": a.unique_id, "unit": a.unit, "spikes": str(len(a.spikes)),
                          **{k: fmt(v, ",.1f") for k, v in a.distribution.items()}}
                         for a in analyses])


def spikes_frame(a: "SeriesAnalysis", top: int = 10) -> pd.DataFrame:
    largest = a.spikes.head(top)
    return pd.DataFrame({
        "candle (UTC)": largest["ds"].map(format_time),
        f"volume ({a.unit})": largest["y"].map(lambda v: fmt(v, ",.1f")),
        "7-day median": largest["baseline"].map(lambda v: fmt(v, ",.1f")),
        "x median": largest["ratio"].map(lambda v: fmt(v, ".1f"))})


def drivers_frame(a: "SeriesAnalysis") -> pd.DataFrame:
    out = a.drivers.copy()
    for column in out.columns[1:]:
        out[column] = out[column].map(lambda v: fmt(v, "+.3f"))
    return out.rename(columns=lambda c: c.replace("lag_", "lag ") if c.startswith("lag_")
                      else c)


def shares_frame(analysis: "Analysis", last: int = 8) -> pd.DataFrame:
    """Overall share of the quote volume per series, then the last ``last`` weeks."""
    weekly = analysis.shares.tail(last) if analysis.shares is not None else pd.DataFrame()
    rows = [{"period": "all", **{k: f"{v:.1%}" for k, v in analysis.overall_shares.items()}}]
    rows += [{"period": f"week of {p:%Y-%m-%d}", **{k: f"{v:.1%}" for k, v in row.items()}}
             for p, row in weekly.iterrows()]
    return pd.DataFrame(rows)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h" if seconds < 2 * 86400 else f"{seconds / 86400:.0f} days"


def overview_frame(rows: list[dict]) -> pd.DataFrame:
    """The dashboard's overview (``Workspace.overview``) as text."""
    out = []
    for r in rows:
        f = r["forecast"] or {}
        share = f.get("share_over_threshold")
        out.append({
            "series": f"{r['exchange']} {r['symbol']} {r['timeframe']}", "unit": r["unit"],
            "last candle (UTC)": format_time(r["last_candle"]),
            "data age": _age(r["age_s"]) + (" (stale)" if r["stale"] else ""),
            "expected volume, next day": fmt(f.get("expected_volume"), ",.1f"),
            "p90, next day": fmt(f.get("p90_volume"), ",.1f"),
            "peak p90 per candle": fmt(f.get("peak_p90"), ",.1f"),
            "candles over threshold": "-" if share is None else f"{share:.0%}",
            "note": (r["note"] or "").split(";")[0]})  # the reason, not the API hint
    return pd.DataFrame(out)
