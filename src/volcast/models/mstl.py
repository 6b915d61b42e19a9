"""MSTL (statsforecast): daily and weekly seasonality plus an AutoETS trend, on log1p(volume).

It re-estimates on a trailing window at every forecast origin (``refits_per_origin``, reported
by the backtest), which is how MSTL is normally used; its 80% interval gives q10 and q90.
Working in log space keeps the forecasts positive and the seasonality multiplicative.
"""

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from volcast.data.frames import future_ds, on_grid, split_series, step_ms
from volcast.data.timeframe import DAY_MS
from volcast.models.base import FORECAST_COLUMNS, EpochProgress, Forecaster, ModelSettings


class MSTLSettings(ModelSettings):
    season_days: list[Annotated[float, Field(gt=0, le=366)]] = Field(
        [1.0, 7.0], min_length=1, max_length=8, description="season lengths in days")
    window_days: int = Field(56, ge=14, le=3650, description="history used at each origin")


class MSTLForecaster(Forecaster):
    name = "mstl"
    Settings = MSTLSettings
    needs_fitting = False
    supports_quantiles = True
    refits_per_origin = True

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        """Nothing to keep: MSTL is estimated at each origin on the window before it."""

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        from statsforecast.models import MSTL

        self.check_request(long, horizon)
        settings: MSTLSettings = self.settings  # type: ignore[assignment]
        parts = []
        for uid, series in split_series(long).items():
            step = step_ms(series["ds"])
            seasons = [max(2, round(d * DAY_MS / step)) for d in settings.season_days]
            grid = on_grid(series[series["ds"] > series["ds"].iloc[-1]
                                  - settings.window_days * DAY_MS], step)
            fitted = MSTL(season_length=seasons).forecast(
                y=np.log1p(grid["y"].to_numpy()), h=horizon, level=[80])
            parts.append(pd.DataFrame({
                "unique_id": uid, "ds": future_ds(int(grid["ds"].iloc[-1]), step, horizon),
                "q10": np.expm1(fitted["lo-80"]), "q50": np.expm1(fitted["mean"]),
                "q90": np.expm1(fitted["hi-80"])}))
        return pd.concat(parts, ignore_index=True)[FORECAST_COLUMNS]
