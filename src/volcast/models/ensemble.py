"""The LSTM with a gradient-boosted second opinion on the median (issue 7's fallback model).

LightGBM (L1, so it predicts a median) learns the same windows from a flat view: the future
step's calendar and seasonal inputs, the step number, the last few past volumes and the
window's level. The two medians are blended with the weight that minimises MAE in volume on
the LSTM's held-out validation windows (never on test data); the LSTM's calibrated interval is
moved with the blended median. The LSTM stays the core: every LSTM setting applies here too.
"""

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from volcast.models.base import EpochProgress
from volcast.models.lstm import LSTMForecaster
from volcast.models.settings import LSTMSettings
from volcast.models.windows import SeriesArrays

PAST_LAGS = (1, 2, 3, 6, 12, 24)


class EnsembleSettings(LSTMSettings):
    gbm_rounds: int = Field(300, ge=10, le=5000, description="boosting rounds")
    gbm_leaves: int = Field(31, ge=4, le=1024, description="leaves per tree")
    gbm_learning_rate: float = Field(0.05, gt=0, le=1)


def gbm_features(windows: dict[str, np.ndarray]) -> np.ndarray:
    """One row per (window, future step): [B * H, F]."""
    future = windows["future"]  # [B, H, 9]
    batch, horizon, _ = future.shape
    past = windows["past"][:, :, 0]  # [B, L] normalised log volume
    per_window = np.concatenate([past[:, [-k for k in PAST_LAGS]], past[:, -24:].std(axis=1,
                                 keepdims=True), windows["mu"][:, None],
                                 windows["sigma"][:, None]], axis=1)  # [B, 9]
    steps = np.broadcast_to(np.arange(horizon, dtype=np.float32)[None, :, None],
                            (batch, horizon, 1))
    repeated = np.broadcast_to(per_window[:, None, :], (batch, horizon, per_window.shape[1]))
    return np.concatenate([future, steps, repeated], axis=2).reshape(batch * horizon, -1)


class EnsembleForecaster(LSTMForecaster):
    name = "ensemble"
    Settings = EnsembleSettings

    def __init__(self, settings: EnsembleSettings | None = None) -> None:
        super().__init__(settings)
        self.booster: Any = None
        self.weight = 1.0

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        import lightgbm as lgb

        from volcast.data.frames import split_series
        from volcast.models.train import history_candles, split_windows

        super().fit(long, progress)
        s: EnsembleSettings = self.settings  # type: ignore[assignment]
        arrays = [self._arrays(series) for series in split_series(long).values()]
        train_index, val_index = split_windows(arrays, s.lookback, s.horizon, s.val_fraction,
                                               history_candles(s, arrays[0].step))
        params = {"objective": "l1", "num_leaves": s.gbm_leaves, "verbosity": -1,
                  "learning_rate": s.gbm_learning_rate, "seed": s.seed, "deterministic": True,
                  "num_threads": s.threads or 0}
        x_train, y_train = self._rows(arrays, train_index, s)
        x_val, y_val = self._rows(arrays, val_index, s)
        booster = lgb.train(params, lgb.Dataset(x_train, y_train), s.gbm_rounds)
        self.weight = self._blend_weight(booster.predict(x_val), y_val, s.horizon)
        self.booster = lgb.train(params, lgb.Dataset(np.concatenate([x_train, x_val]),
                                                     np.concatenate([y_train, y_val])),
                                 s.gbm_rounds)
        self.info["blend_weight_lstm"] = self.weight

    @staticmethod
    def _rows(arrays: list[SeriesArrays], index: list, s: EnsembleSettings
              ) -> tuple[np.ndarray, np.ndarray]:
        from volcast.models.train import batches

        parts = batches(arrays, index, s, None)
        x = np.concatenate([gbm_features(b) for b in parts])
        y = np.concatenate([b["target"].reshape(-1) for b in parts])
        return x, y

    def _blend_weight(self, gbm: np.ndarray, y_val: np.ndarray, horizon: int) -> float:
        """The LSTM's share of the median that minimises validation MAE in volume; ``gbm`` and
        ``y_val`` are in the order of the LSTM's own validation windows."""
        lstm = np.mean([v["pred"][..., self.nets[0].median] for v in self.validation],
                       axis=0).reshape(-1)
        mu = np.repeat(self.validation[0]["mu"], horizon)
        sigma = np.repeat(self.validation[0]["sigma"], horizon)
        actual = np.expm1(y_val * sigma + mu)
        grid = np.linspace(0, 1, 21)
        errors = [np.abs(np.expm1((w * lstm + (1 - w) * gbm) * sigma + mu) - actual).mean()
                  for w in grid]
        return float(grid[int(np.argmin(errors))])

    def _normalised(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        quantiles = super()._normalised(windows)  # [B, H, Q]
        median = self.nets[0].median
        batch, horizon = quantiles.shape[:2]
        # one thread: a few dozen rows do not pay for waking a thread pool (was ~80 ms)
        gbm = self.booster.predict(gbm_features(windows), num_threads=1).reshape(batch, horizon)
        blended = self.weight * quantiles[..., median] + (1 - self.weight) * gbm
        return quantiles + (blended - quantiles[..., median])[..., None]

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        state, tensors = super().state()
        return state | {"weight": self.weight, "gbm": self.booster.model_to_string()}, tensors

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        import lightgbm as lgb

        from volcast.errors import VolcastError

        super().restore(state, tensors)
        try:
            self.weight = float(state["weight"])
            self.booster = lgb.Booster(model_str=state["gbm"])
        except (KeyError, ValueError, lgb.basic.LightGBMError) as exc:
            raise VolcastError(f"saved ensemble is damaged ({str(exc)[:120]})") from None
