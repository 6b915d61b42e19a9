"""The protocol's walk-forward backtest: one training before the cutoff, then a forecast from
every origin T, T + H, T + 2H, ... while a full horizon of actual candles remains.

At each origin the model is given every candle strictly before it and nothing else, which is
what makes look-ahead impossible by construction (a test checks it anyway). A model with a
faster way (``Forecaster.predict_origins``: the neural models cut every origin's window from
one grid of the series and run them in batches) gets the candles before the last origin at
once and must forecast each origin as ``predict`` would from the candles before it; the same
test, and one that compares the two ways on a series with gaps, hold it to that.
"""

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.frames import step_ms
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError
from volcast.evaluation.scores import naive_scale, score
from volcast.models.base import EpochProgress, Forecaster

PREDICTION_COLUMNS = ["origin", "timestamp", "step", "y_true", "y_pred", "q10", "q90"]


@dataclass
class BacktestResult:
    model: str
    predictions: pd.DataFrame
    scores: dict[str, dict[str, float]]
    train_s: float
    predict_s: float
    peak_rss_mb: float
    cutoff: int
    refits_per_origin: bool
    forecaster: Forecaster


def default_cutoff(ds: pd.Series, step: int, test_days: float) -> int:
    """The open time of the first candle of the last ``test_days`` days (on the grid)."""
    last = int(ds.max())
    return last + step - round(test_days * DAY_MS / step) * step


def origins(first: int, last: int, cutoff: int, step: int, horizon: int) -> list[int]:
    """T, T + H steps, ... while origin + (H - 1) steps is still within the file."""
    if cutoff <= first:
        raise VolcastError("the cutoff leaves no training data before it")
    if (cutoff - first) % step:
        raise VolcastError("the cutoff is not on the series' timeframe grid")
    out = list(range(cutoff, last - (horizon - 1) * step + 1, horizon * step))
    if not out:
        raise VolcastError("the cutoff leaves less than one full horizon of test data")
    return out


def backtest(model: Forecaster, long: pd.DataFrame, *, horizon: int = 24,
             cutoff: int | None = None, test_days: float = 60,
             progress: Callable[[int, int], None] | None = None,
             epoch_progress: EpochProgress | None = None, extra: pd.DataFrame | None = None,
             fit: bool = True) -> BacktestResult:
    """Train ``model`` before the cutoff and forecast every origin of one series.

    ``extra``: other series (long frame) a global model also learns from, cut at the same
    cutoff, so nothing at or after it is seen. ``fit=False``: the model was already trained
    on data before this cutoff (several series tested with one global model)."""
    if long["unique_id"].nunique() != 1:
        raise VolcastError("a backtest runs on one series at a time")
    long = long.sort_values("ds").reset_index(drop=True)
    step = step_ms(long["ds"])
    cutoff = default_cutoff(long["ds"], step, test_days) if cutoff is None else cutoff
    starts = origins(int(long["ds"].iloc[0]), int(long["ds"].iloc[-1]), cutoff, step, horizon)
    train = long[long["ds"] < cutoff]

    began = time.perf_counter()
    if fit:
        learn = train if extra is None else pd.concat([train, extra[extra["ds"] < cutoff]],
                                                      ignore_index=True)
        model.fit(learn, epoch_progress)
    train_s = time.perf_counter() - began

    actual = long.set_index("ds")["y"]
    began = time.perf_counter()
    at_once = model.predict_origins(long[long["ds"] < starts[-1]], starts, horizon)
    predict_s = time.perf_counter() - began
    ready = {} if at_once is None else dict(tuple(at_once.groupby("origin", sort=False)))
    frames = []
    for number, origin in enumerate(starts, 1):
        if at_once is None:
            began = time.perf_counter()
            ready[origin] = model.predict(_before(long, origin, step), horizon)
            predict_s += time.perf_counter() - began
        frames.append(_rows(origin, ready.pop(origin), actual, step, horizon))
        if progress:
            progress(number, len(starts))
    predictions = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BacktestResult(model.name, predictions, score(predictions, naive_scale(train, step)),
                          train_s, predict_s, peak, cutoff, model.refits_per_origin, model)


def _before(long: pd.DataFrame, origin: int, step: int) -> pd.DataFrame:
    """Every candle before the origin; candles missing just before it are added empty, so each
    model fills them as it fills any gap and forecasts from the origin itself."""
    history = long[long["ds"] < origin]
    last = int(history["ds"].iloc[-1])
    if last == origin - step:
        return history
    pad = pd.DataFrame({"ds": np.arange(last + step, origin, step, dtype=np.int64)})
    return pd.concat([history, pad.assign(unique_id=history["unique_id"].iloc[0])],
                     ignore_index=True)


def _rows(origin: int, forecast: pd.DataFrame, actual: pd.Series, step: int, horizon: int
          ) -> pd.DataFrame:
    expected = origin + step * np.arange(horizon, dtype=np.int64)
    if not np.array_equal(forecast["ds"].to_numpy(np.int64), expected):
        raise AssertionError(f"forecast from {origin} is not for the next {horizon} candles")
    return pd.DataFrame({
        "origin": origin, "timestamp": expected, "step": np.arange(1, horizon + 1),
        "y_true": actual.reindex(expected).to_numpy(), "y_pred": forecast["q50"].to_numpy(),
        "q10": forecast["q10"].to_numpy(), "q90": forecast["q90"].to_numpy()})
