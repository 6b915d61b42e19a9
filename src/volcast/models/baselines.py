"""The protocol's reference points: seasonal naive and seasonal medians.

Every learned model must beat these (shared/bench/PROTOCOL.md). They learn nothing; each
forecast is a function of the candles before the origin, so they also serve as a check on the
backtest itself. "Day" and "week" are counted in candles of the series' timeframe.
"""

from typing import ClassVar

import numpy as np
import pandas as pd

from volcast.data.frames import future_ds, on_grid, split_series, step_ms
from volcast.data.timeframe import DAY_MS
from volcast.models.base import EpochProgress, Forecaster, ModelSettings, empty_quantiles


class NoSettings(ModelSettings):
    """Reference models have nothing to set."""


class SeasonalForecaster(Forecaster):
    """y(t) = aggregate of y(t - k * period) over k = 1..count (candles before the origin)."""

    Settings = NoSettings
    needs_fitting = False
    is_reference = True
    period_days: ClassVar[float]
    count: ClassVar[int]
    period_steps: ClassVar[int | None] = None  # a fixed number of candles instead of days

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        """Nothing to learn."""

    def max_horizon(self, step_ms: int) -> int:
        """One period: further ahead, step h would need the candle h - period after the
        origin, which is not known yet."""
        return self.period_steps or round(self.period_days * DAY_MS / step_ms)

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        self.check_request(long, horizon)
        parts = []
        for uid, series in split_series(long).items():
            step = step_ms(series["ds"])
            y = on_grid(series, step)["y"].to_numpy()
            period = self.max_horizon(step)
            # step h (1-based) looks k periods back: index len(y) - 1 + h - k * period
            back = len(y) - 1 + np.arange(1, horizon + 1)[:, None] - period * np.arange(
                1, self.count + 1)[None, :]  # [H, count]
            values = np.where(back >= 0, y[np.clip(back, 0, None)], np.nan)
            point = np.nanmedian(values, axis=1) if self.count > 1 else values[:, 0]
            parts.append(pd.DataFrame({"unique_id": uid, "ds": future_ds(
                int(series["ds"].iloc[-1]), step, horizon), "q50": point}))
        return empty_quantiles(pd.concat(parts, ignore_index=True))


class SeasonalNaive24(SeasonalForecaster):
    name, period_steps, count = "seasonal_naive_24", 24, 1


class SeasonalNaive168(SeasonalForecaster):
    name, period_steps, count = "seasonal_naive_168", 168, 1


class HourOfDayMedian7d(SeasonalForecaster):
    name, period_days, count = "hour_of_day_median_7d", 1, 7


class HourOfDayMedian28d(SeasonalForecaster):
    name, period_days, count = "hour_of_day_median_28d", 1, 28


class HourOfWeekMedian4w(SeasonalForecaster):
    name, period_days, count = "hour_of_week_median_4w", 7, 4
