"""The LSTM with a gradient-boosted second opinion on the median (issue 7's fallback model).

LightGBM (L1, so it predicts a median) learns the same windows from a flat view: the future
step's calendar and seasonal inputs, the step number, the last few past volumes, the window's
level and each covariate's last (normalised) value. The two medians are blended with the
weight that minimises MAE in volume on the LSTM's held-out validation windows (never on test
data); the LSTM's calibrated interval is moved with the blended median. The LSTM stays the
core: every LSTM setting applies here too.
"""

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator

from volcast.errors import VolcastError
from volcast.models.base import EpochProgress, Forecaster, stop_check
from volcast.models.folder import brief, is_number
from volcast.models.lstm.forecaster import LSTMForecaster
from volcast.models.lstm.settings import LSTMSettings
from volcast.models.lstm.windows import Pool, batches, covariate_channels, spread

PAST_LAGS = (1, 2, 3, 6, 12, 24)
BLEND_GRID = np.linspace(0, 1, 21)
"""The LSTM's shares of the median tried on validation."""
GBM_FEATURES = 9 + 1 + len(PAST_LAGS) + 3
"""Columns of ``gbm_features`` without covariates: the future inputs, the step, the lags, the
spread, mu, sigma; then one per covariate."""
MAX_GBM_LEAVES = 500_000
"""Most leaves (rounds x leaves per tree) a booster may have: its saved text stays well under
``folder.MAX_MANIFEST_BYTES``."""
GBM_BYTES_PER_LEAF = 256
"""A saved booster's text per leaf, at most (about 100 in practice)."""


class EnsembleSettings(LSTMSettings):
    gbm_rounds: int = Field(300, ge=10, le=5000, description="boosting rounds")
    gbm_leaves: int = Field(31, ge=4, le=1024, description="leaves per tree")
    gbm_learning_rate: float = Field(0.05, gt=0, le=1)
    gbm_windows: int = Field(65_536, ge=64, le=4_194_304, description="most training windows "
                             "the booster learns from, spread evenly over series and time, so "
                             "its memory does not grow with the number of series")

    @field_validator("gbm_leaves")
    @classmethod
    def _bounded_booster(cls, leaves: int, info: ValidationInfo) -> int:
        if leaves * info.data.get("gbm_rounds", 1) > MAX_GBM_LEAVES:
            raise ValueError(f"gbm_rounds x gbm_leaves must be at most {MAX_GBM_LEAVES:,}")
        return leaves


def gbm_features(windows: dict[str, np.ndarray], covariates: int) -> np.ndarray:
    """One row per (window, future step): [B * H, GBM_FEATURES + covariates]."""
    future = windows["future"]  # [B, H, 9]
    batch, horizon, _ = future.shape
    past = windows["past"][:, :, 0]  # [B, L] normalised log volume
    per_window = np.concatenate([past[:, [-k for k in PAST_LAGS]], past[:, -24:].std(axis=1,
                                 keepdims=True), windows["mu"][:, None],
                                 windows["sigma"][:, None],
                                 covariate_channels(windows["past"], covariates)[:, -1]],
                                axis=1)  # [B, 9 + K]
    steps = np.broadcast_to(np.arange(horizon, dtype=np.float32)[None, :, None],
                            (batch, horizon, 1))
    repeated = np.broadcast_to(per_window[:, None, :], (batch, horizon, per_window.shape[1]))
    return np.concatenate([future, steps, repeated], axis=2).reshape(batch * horizon, -1)


def gbm_rows(parts: Iterable[dict[str, np.ndarray]], covariates: int,
             stop: Callable[[], None] = lambda: None) -> tuple[np.ndarray, np.ndarray]:
    """Features [R, F] and targets [R] (normalised log volume) of window batches, read once
    (each batch's windows can go as soon as its rows are made); ``stop`` before each batch."""
    features, targets = [], []
    for part in parts:
        stop()
        features.append(gbm_features(part, covariates))
        targets.append(part["target"].reshape(-1))
    return np.concatenate(features), np.concatenate(targets)


def blend_weight(lstm: np.ndarray, gbm: np.ndarray, windows: dict[str, np.ndarray]
                 ) -> tuple[float, list[float]]:
    """The LSTM's share of the median (on ``BLEND_GRID``) with the least MAE in volume, and
    the MAE of every share. lstm, gbm [N, H]: medians in normalised log volume for windows
    with target [N, H], mu [N] and sigma [N]."""
    mu, sigma = windows["mu"][:, None], windows["sigma"][:, None]  # [N, 1]
    actual = np.expm1(windows["target"] * sigma + mu)  # [N, H]
    errors = [float(np.abs(np.expm1((w * lstm + (1 - w) * gbm) * sigma + mu) - actual).mean())
              for w in BLEND_GRID]
    return float(BLEND_GRID[int(np.argmin(errors))]), errors


def _each_round(stop: Callable[[], None]) -> Callable[[Any], None]:
    """A LightGBM callback that calls ``stop`` before every boosting round."""
    def callback(env: Any) -> None:
        stop()
    callback.before_iteration = True  # type: ignore[attr-defined]
    return callback


class EnsembleForecaster(Forecaster):
    """An LSTM and a LightGBM booster, held side by side; the LSTM forecasts, the booster
    moves its median."""

    name = "ensemble"
    Settings = EnsembleSettings
    needs_fitting = True
    supports_quantiles = True
    supports_exogenous = True

    def __init__(self, settings: EnsembleSettings | None = None) -> None:
        super().__init__(settings)
        self.lstm = LSTMForecaster(self.s)  # every LSTM setting applies; the LSTM ignores the rest
        self.booster: Any = None  # lightgbm.Booster, imported when used
        self.weight = 1.0

    @property
    def s(self) -> EnsembleSettings:
        return self.settings  # type: ignore[return-value]

    @property
    def horizon(self) -> int:
        return self.lstm.horizon

    def reach(self, step_ms: int) -> int:
        return self.lstm.reach(step_ms)  # the booster reads the LSTM's windows

    @property
    def shards(self) -> int:
        return self.lstm.shards

    @property
    def is_fitted(self) -> bool:
        return self.lstm.is_fitted and self.booster is not None

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        """The LSTM first; the booster then learns the LSTM's training windows, the blend
        weight is chosen on its held-out windows, and the booster learns both."""
        import lightgbm as lgb

        stop = stop_check(progress)
        self.lstm.fit(long, progress)
        validation = self.lstm.validation
        assert validation is not None  # set by every fit
        params = {"objective": "l1", "num_leaves": self.s.gbm_leaves, "verbosity": -1,
                  "learning_rate": self.s.gbm_learning_rate, "seed": self.s.seed,
                  "deterministic": True}
        covariates = len(self.s.covariates)
        train = spread(validation.split.train, self.s.gbm_windows)
        x_train, y_train = gbm_rows(batches(Pool.of(validation.arrays, validation.split.every,
                                                    self.s.lookback), train, self.s, None),
                                    covariates, stop)
        x_val, y_val = gbm_rows([validation.windows], covariates)
        rounds = [_each_round(stop)]  # a boosting round is the booster's batch
        booster = lgb.train(params, lgb.Dataset(x_train, y_train), self.s.gbm_rounds,
                            callbacks=rounds)
        median = self.s.quantiles.index(0.5)
        lstm = validation.pred[..., median].mean(axis=0)  # [N, H], the members' average
        gbm = booster.predict(x_val).reshape(lstm.shape)  # [N, H]
        self.weight, errors = blend_weight(lstm, gbm, validation.windows)
        self.booster = lgb.train(params, lgb.Dataset(np.concatenate([x_train, x_val]),
                                                     np.concatenate([y_train, y_val])),
                                 self.s.gbm_rounds, callbacks=rounds)
        self.info = self.lstm.info | {
            "blend_weight_lstm": self.weight, "gbm_rows": len(x_train) + len(x_val),
            "validation_mae": {"lstm": errors[-1], "gbm": errors[0], "blend": min(errors)}}

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        self.check_request(long, horizon)
        return self.lstm.predict_with(long, horizon, self._blend)

    def predict_origins(self, long: pd.DataFrame, origins: list[int], horizon: int
                        ) -> pd.DataFrame:
        self.check_request(long, horizon)
        return self.lstm.predict_with(long, horizon, self._blend, origins)

    def _blend(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        """The LSTM's calibrated quantiles [B, H, Q], moved with the blended median."""
        quantiles = self.lstm.quantiles(windows)  # [B, H, Q]
        median = quantiles[..., self.s.quantiles.index(0.5)]  # [B, H]
        # one thread: a few dozen rows do not pay for waking a thread pool (was ~80 ms)
        gbm = self.booster.predict(gbm_features(windows, len(self.s.covariates)),
                                   num_threads=1).reshape(median.shape)
        blended = self.weight * median + (1 - self.weight) * gbm
        return quantiles + (blended - median)[..., None]

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.is_fitted:
            raise VolcastError("the ensemble has not been trained")
        state, tensors = self.lstm.state()
        return state | {"weight": self.weight, "gbm": self.booster.model_to_string()}, tensors

    def check_state(self, state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The LSTM's state, a blend weight in [0, 1] and a LightGBM model of bounded size
        (``GBM_BYTES_PER_LEAF`` per leaf the settings allow) with finite leaf values."""
        lstm = self.lstm.check_state({k: v for k, v in state.items() if k not in ("weight",
                                                                               "gbm")})
        weight, gbm = state.get("weight"), state.get("gbm")
        if not is_number(weight) or not 0 <= weight <= 1:
            raise VolcastError(f"state.weight is {brief(weight)}, not a blend weight in [0, 1]")
        most = self.s.gbm_rounds * self.s.gbm_leaves * GBM_BYTES_PER_LEAF
        if not isinstance(gbm, str) or len(gbm) > most:
            size = f"{len(gbm):,} characters" if isinstance(gbm, str) else brief(gbm)
            raise VolcastError(f"state.gbm is {size}, not a LightGBM model of at most "
                               f"{self.s.gbm_rounds} trees of {self.s.gbm_leaves} leaves")
        for line in gbm.splitlines():
            if line.startswith("leaf_value="):
                try:
                    values = np.array(line[len("leaf_value="):].split(), dtype=float)
                except ValueError:
                    values = np.array([np.nan])
                if not np.isfinite(values).all():
                    raise VolcastError("state.gbm holds NaN, infinite or unreadable leaf values")
        return lstm

    def weights_metadata(self, state: dict[str, Any]) -> dict[str, Any]:
        gbm = state.get("gbm")
        digest = hashlib.sha256(gbm.encode()).hexdigest() if isinstance(gbm, str) else None
        return self.lstm.weights_metadata(state) | {"weight": state.get("weight"),
                                                     "gbm_sha256": digest}

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.lstm.restore(state, tensors)
        try:
            self.weight = float(state["weight"])
            self.booster = lgb.Booster(model_str=state["gbm"])
        except (KeyError, ValueError, lgb.basic.LightGBMError) as exc:
            raise VolcastError(f"saved ensemble is damaged ({str(exc)[:120]})") from None
        trees, width = self.booster.num_trees(), GBM_FEATURES + len(self.s.covariates)
        if self.booster.num_feature() != width or trees > self.s.gbm_rounds:
            raise VolcastError(f"saved ensemble's LightGBM model has {trees} trees over "
                               f"{self.booster.num_feature()} features; its settings allow "
                               f"{self.s.gbm_rounds} trees over {width}")
