"""A neural model's inputs from candles: each series on its grid as arrays, and the window that
forecasts from an origin, made from the candles before it alone.

``Inputs`` is what shapes them (the settings, and whether trade counts were an input when the
model was trained); ``NeuralForecaster`` holds one for fitting, forecasting the next candles of
many series and forecasting every origin of a backtest. Forecasting is mostly this preparation
(the network runs once per batch of windows), so it stays in numpy where it can (``on_grid``
skips its merge for a series with nothing to fill), and a backtest cuts the windows of all its
origins from one grid of the series (``origin_windows``).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.frames import future_ds, on_grid, step_ms
from volcast.errors import VolcastError
from volcast.models.lstm.settings import NeuralSettings
from volcast.models.lstm.windows import (
    SeriesArrays,
    calendar_inputs,
    context_rows,
    make_windows,
    sound_ends,
)

INPUTS = ("past", "future", "mu", "sigma")
"""What of a window forecasting takes (``make_windows`` also makes the target when it can)."""
Windows = dict[str, np.ndarray]


@dataclass(frozen=True)
class Inputs:
    """Candles -> arrays and windows for one model: its settings, whether it was trained with
    trade counts, its name in messages."""

    s: NeuralSettings
    has_trades: bool
    title: str

    def arrays(self, series: pd.DataFrame, step: int | None = None,
               end: int | None = None) -> SeriesArrays:
        """Inputs on the grid (up to ``end``, exclusive); trade counts only when the model was
        trained with them."""
        self.check_trades(series)
        step = step or step_ms(series["ds"])
        return self.on(on_grid(series, step, end), step)

    def on(self, grid: pd.DataFrame, step: int) -> SeriesArrays:
        features = tuple(f for f in self.s.features if f != "trades" or self.has_trades)
        return SeriesArrays.build(grid, step, features, tuple(self.s.covariates))

    def check_trades(self, series: pd.DataFrame) -> None:
        if self.has_trades and ("trades" not in series or series["trades"].isna().any()):
            raise VolcastError("this model was trained with trade counts; the data has none")

    def reach(self, step: int) -> int:
        """Candles before an origin its window reads (``windows.context_rows``), and the
        origin's own."""
        return context_rows(self.s.lookback, step) + 1

    def last_window(self, series: pd.DataFrame) -> tuple[Windows, np.ndarray]:
        """The window that forecasts the ``horizon`` candles after the series' last one (a batch
        of one, as ``windows.make_windows`` makes them) and those candles' open times."""
        step = step_ms(series["ds"])
        return self.window_at(series, int(series["ds"].iloc[-1]) + step, step)

    def window_at(self, series: pd.DataFrame, origin: int, step: int
                  ) -> tuple[Windows, np.ndarray]:
        """The window that forecasts the ``horizon`` candles from ``origin`` on, made from the
        series' candles before it alone (the newest ``reach`` of them, candles missing up to
        the origin filled in as ``on_grid`` fills any gap), and those candles' open times."""
        uid = series["unique_id"].iloc[0]
        ds = series["ds"].to_numpy()
        tail = series.iloc[np.searchsorted(ds, origin - self.reach(step) * step):
                           np.searchsorted(ds, origin)]
        if tail.empty:
            raise VolcastError(f"{uid}: no candle in the {self.reach(step)} candles before the "
                               "origin")
        arrays = self.arrays(tail, step, end=origin)
        if len(arrays.raw) < self.s.lookback:
            raise VolcastError(f"{uid}: the {self.title} needs {self.s.lookback} candles of "
                               f"history, got {len(arrays.raw)}")
        latest = arrays.raw[-1, arrays.raw.shape[1] - len(self.s.covariates):]
        unknown = [n for n, v in zip(self.s.covariates, latest, strict=True) if np.isnan(v)]
        if unknown:
            raise VolcastError(f"{uid}: covariate {', '.join(unknown)} has no value at or "
                               f"before the last candle; {how_to_supply(self.s.covariates)}")
        future = future_ds(origin - step, step, self.s.horizon)
        future_cal = calendar_inputs(future, tuple(self.s.features))[None]  # [1, H, 4]
        windows = make_windows(arrays, np.array([len(arrays.raw)]), self.s.lookback,
                               self.s.horizon, future_cal)
        return {k: windows[k] for k in INPUTS}, future

    def origin_windows(self, series: pd.DataFrame, origins: np.ndarray
                       ) -> tuple[Windows, np.ndarray]:
        """``window_at`` of each origin [B] (windows [B, ...], open times [B, H]), most of them
        cut from one grid of the whole series: an origin whose reach has no missing candle
        (and every covariate a value on its first candle) gets the very same arrays there.
        The others, near a gap, are made on their own: a whole grid fills a gap from candles
        on both sides of it, the origin's candles only from those before it."""
        self.check_trades(series)
        step = step_ms(series["ds"])
        grid = on_grid(series, step)
        ends, shared = sound_ends(grid, origins, step, self.reach(step), self.s.lookback,
                                  self.s.covariates)  # [B], [B]
        future = origins[:, None] + step * np.arange(self.s.horizon)  # [B, H]
        parts = []
        if shared.any():
            cal = calendar_inputs(future[shared].reshape(-1), tuple(self.s.features))
            parts.append(make_windows(self.on(grid, step), ends[shared], self.s.lookback,
                                      self.s.horizon, cal.reshape(int(shared.sum()), -1, 4)))
        parts += [self.window_at(series, int(o), step)[0] for o in origins[~shared]]
        order = np.argsort(np.concatenate([np.flatnonzero(shared), np.flatnonzero(~shared)]))
        return {k: np.concatenate([p[k] for p in parts])[order] for k in INPUTS}, future


def how_to_supply(covariates: list[str]) -> str:
    return (f"pass --covariates {','.join(covariates)} and import them: volcast covariates "
            "import --source NAME FILE")
