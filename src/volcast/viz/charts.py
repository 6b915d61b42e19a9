"""What each plot kind shows, as a renderer-neutral ``Chart`` (see ``spec.py``).

Volume history with its spikes, the hour-of-day by weekday heatmap (absolute or relative to the
series' usual level), several series' shares of the volume, a forecast fan chart, and three
views of backtests: error by horizon step, model comparison, calibration. Times are UTC unless
a zone is asked for.
"""

import numpy as np
import pandas as pd

from volcast.analysis.profile import WEEKDAYS, local_times, spikes
from volcast.analysis.shares import shares
from volcast.data.frames import step_ms
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError
from volcast.evaluation.scores import score
from volcast.viz.spec import OKABE_ITO, Chart, Trace

Predictions = dict[str, pd.DataFrame]
"""Backtest predictions (the protocol's columns) by model name."""


def _zone(tz: str) -> str:
    return "UTC" if tz == "UTC" else f"local time, {tz}"


def _volume(unit: str) -> str:
    return f"volume ({unit} per candle)"


def history_chart(series: pd.DataFrame, name: str, k: float = 6.0, tz: str = "UTC",
                  found: pd.DataFrame | None = None, unit: str = "base units") -> Chart:
    """Volume over time, with the spikes of ``analysis.profile.spikes`` marked (``found``:
    those already computed with the same ``k``, as the report's analysis has them)."""
    found = spikes(series, k) if found is None else found
    return Chart(f"{name}: volume history, spikes marked (> median + {k:g} MAD of the "
                 "previous 7 days)", f"time ({_zone(tz)})", _volume(unit),
                 [Trace("line", "volume", local_times(series["ds"], tz), series["y"].tolist()),
                  Trace("points", f"spikes ({len(found)})", local_times(found["ds"], tz),
                        found["y"].tolist(), color=OKABE_ITO[3])])


def shares_chart(long: pd.DataFrame, unit: str = "base") -> Chart:
    """Each series' weekly share of the summed quote volume (``analysis.shares``; ``unit``
    says what ``y`` is in)."""
    weekly = shares(long, unit=unit)
    if weekly.shape[1] < 2:
        raise VolcastError("the shares plot compares several series; give two or more")
    return Chart("share of the weekly quote volume (volume x typical price)", "week (UTC)",
                 "share",
                 [Trace("line", str(uid), weekly.index, weekly[uid].tolist())
                  for uid in weekly.columns])


def intraday(series: pd.DataFrame) -> bool:
    return step_ms(series["ds"]) < DAY_MS


def _usual_level(series: pd.DataFrame) -> pd.Series:
    """Each candle's volume over the median of the 7 days around it: 1.0 = a usual hour."""
    window = max(1, 7 * DAY_MS // step_ms(series["ds"]))
    y = series["y"].astype(float).reset_index(drop=True)
    level = y.rolling(window, center=True, min_periods=1).median()
    return y / level.where(level > 0)


def heatmap_chart(series: pd.DataFrame, name: str, relative: bool = False, tz: str = "UTC",
                  unit: str = "base units") -> Chart:
    """Median volume for each weekday (rows) and hour of day (columns). ``relative``: each
    candle is first divided by the median of its surrounding week, the view traders know
    ("this hour is usually 1.6x a typical hour"), so a few high-volume months do not paint
    the whole map."""
    if not intraday(series):
        raise VolcastError(f"the hour-by-weekday heatmap needs candles shorter than a day; "
                           f"{name} has daily or longer candles")
    times = local_times(series["ds"], tz)
    values = _usual_level(series) if relative else series["y"].astype(float).reset_index(
        drop=True)
    cells = pd.DataFrame({"v": values.to_numpy(), "weekday": times.weekday,
                          "hour": times.hour}).groupby(["weekday", "hour"])["v"].median()
    z = cells.unstack("hour").reindex(index=range(7), columns=range(24)).to_numpy()
    what = "volume relative to its usual level (x)" if relative else "median volume"
    return Chart(f"{name}: {what} by hour and weekday ({_zone(tz)})", f"hour of day "
                 f"({_zone(tz)})", "weekday",
                 [Trace("heatmap", what, list(range(24)), list(WEEKDAYS), z=z)],
                 z_label="x usual" if relative else f"volume ({unit})")


def fan_chart(history: pd.DataFrame, forecast: pd.DataFrame, name: str,
              actual: pd.DataFrame | None = None, days: float = 7.0,
              unit: str = "base units") -> Chart:
    """The last ``days`` of history, the q10-q90 band, the median, and the actual volume of
    the forecast hours when known (a backtest origin)."""
    shown = history[history["ds"] > history["ds"].max() - days * DAY_MS]
    times = local_times(forecast["ds"])
    traces = [Trace("line", "history", local_times(shown["ds"]), shown["y"].tolist(),
                    color=OKABE_ITO[7])]
    if forecast["q10"].notna().all():
        traces.append(Trace("band", "q10-q90 (80% interval)", times, forecast["q10"].tolist(),
                            upper=forecast["q90"].tolist(), color=OKABE_ITO[0]))
    traces.append(Trace("line", "forecast median (q50)", times, forecast["q50"].tolist(),
                        color=OKABE_ITO[0], dashed=True))
    if actual is not None:
        traces.append(Trace("points", "actual", local_times(actual["ds"]),
                            actual["y"].tolist(), color=OKABE_ITO[3]))
    start = local_times(forecast["ds"].iloc[:1])[0]
    return Chart(f"{name}: forecast from {start:%Y-%m-%d %H:%M} UTC", "time (UTC)",
                 _volume(unit), traces)


def origin_fan(history: pd.DataFrame, predictions: pd.DataFrame, name: str,
               origin: int | None = None, unit: str = "base units") -> Chart:
    """The fan chart of one backtest origin (default: the last), its actuals included."""
    origins = predictions["origin"].unique()
    chosen = int(origins.max()) if origin is None else origin
    if chosen not in origins:
        raise VolcastError(f"no forecast from origin {chosen} in these predictions")
    rows = predictions[predictions["origin"] == chosen]
    forecast = pd.DataFrame({"ds": rows["timestamp"], "q10": rows["q10"],
                             "q50": rows["y_pred"], "q90": rows["q90"]})
    actual = pd.DataFrame({"ds": rows["timestamp"], "y": rows["y_true"]}).dropna()
    return fan_chart(history[history["ds"] < chosen], forecast, name, actual, unit=unit)


def _mae_by_step(predictions: pd.DataFrame) -> pd.Series:
    scored = predictions[predictions["y_true"].notna()]
    return (scored["y_true"] - scored["y_pred"]).abs().groupby(scored["step"]).mean()


def horizon_chart(predictions: Predictions, unit: str = "base units") -> Chart:
    """MAE at each step ahead, one line per model: how fast each model's skill decays."""
    traces = []
    for model, frame in predictions.items():
        mae = _mae_by_step(frame)
        traces.append(Trace("line", model, mae.index.tolist(), mae.tolist()))
    return Chart("backtest error by horizon step", "steps ahead", f"MAE (volume, {unit})",
                 traces)


def comparison_chart(predictions: Predictions, unit: str = "base units") -> Chart:
    """Overall MAE per model, best first (the protocol's scorer, same rows as the table)."""
    mae = {m: score(f, float("nan"))["overall"]["mae"] for m, f in predictions.items()}
    order = sorted(mae, key=mae.__getitem__)
    return Chart("backtest: overall MAE by model (lower is better)", "model",
                 f"MAE (volume, {unit})",
                 [Trace("bar", "MAE", order, [mae[m] for m in order])])


def calibration_chart(predictions: Predictions) -> Chart:
    """Share of actual values below each forecast quantile against its nominal level: a
    calibrated model lies on the diagonal. Point forecasts (no q10/q90) are left out."""
    traces = [Trace("line", "perfect calibration", [0, 1], [0, 1], color=OKABE_ITO[7],
                    dashed=True)]
    for model, frame in predictions.items():
        scored = frame[frame["y_true"].notna()]
        if scored.empty or scored[["q10", "q90"]].isna().any().any():
            continue
        y = scored["y_true"].to_numpy()
        observed = [float(np.mean(y <= scored[c].to_numpy())) for c in ("q10", "y_pred", "q90")]
        inside = float(np.mean((y >= scored["q10"]) & (y <= scored["q90"])))
        traces.append(Trace("points", f"{model} (q10-q90 covers {inside:.0%})",
                            [0.1, 0.5, 0.9], observed))
    if len(traces) == 1:
        raise VolcastError("no model with quantiles (q10/q90) in these predictions")
    return Chart("calibration: observed vs nominal quantile level", "nominal level",
                 "share of actuals below the forecast quantile", traces)
