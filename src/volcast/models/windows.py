"""Turn series on their grid into LSTM windows: past features, known-future features, targets.

Everything is normalised per window with statistics of the window's own past (mean and spread
of log1p(volume) and of each other input), so nothing is fitted on data the window cannot see,
one model serves pairs whose volumes differ by orders of magnitude, and the level after a regime
change is read from the window instead of remembered from training.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.models.frames import DAY_MS, WEEK_MS, calendar

EPS = 1e-3
N_FUTURE = 7  # calendar (4), value a day back, a week back, mean of the same slot over 7 days
BASE_COLUMN = 6
"""The future feature the median is predicted relative to: the 7-day same-slot mean."""


@dataclass
class SeriesArrays:
    """One series on its grid as float32 arrays: raw inputs [T, C] (log volume first) and the
    calendar [T, 4]."""

    raw: np.ndarray
    cal: np.ndarray
    step: int

    @classmethod
    def build(cls, grid: pd.DataFrame, step: int, features: tuple[str, ...]) -> "SeriesArrays":
        columns = [np.log1p(grid["y"].to_numpy())]
        if "range" in features:
            columns.append(np.log1p(1e3 * np.log(grid["high"] / grid["low"]).clip(lower=0)))
        if "abs_return" in features:
            columns.append(np.log1p(1e3 * np.abs(np.log(grid["close"] / grid["open"]))))
        if "trades" in features and "trades" in grid:
            columns.append(np.log1p(grid["trades"].to_numpy(dtype=float)))
        cal = calendar(grid["ds"].to_numpy())
        if "calendar" not in features:
            cal = np.zeros_like(cal)
        raw = np.nan_to_num(np.stack(columns, axis=1).astype(np.float32))
        return cls(raw, cal.astype(np.float32), step)


def n_past_features(features: tuple[str, ...], has_trades: bool) -> int:
    channels = 1 + sum(f in features for f in ("range", "abs_return"))
    return channels + int("trades" in features and has_trades) + 4


def make_windows(arrays: SeriesArrays, ends: np.ndarray, lookback: int, horizon: int,
                 future_cal: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Windows whose past is [end - lookback, end): past [B, L, F], future [B, H, 7],
    mu/sigma [B] (log-volume scale), and target [B, H] where the series has one."""
    past_idx = ends[:, None] + np.arange(-lookback, 0)[None, :]  # [B, L]
    raw = arrays.raw[past_idx]  # [B, L, C]
    mu = raw.mean(axis=1, keepdims=True)  # [B, 1, C]
    sigma = raw.std(axis=1, keepdims=True) + EPS
    norm = (raw - mu) / sigma
    past = np.concatenate([norm, arrays.cal[past_idx]], axis=2)  # [B, L, C + 4]

    target_idx = ends[:, None] + np.arange(horizon)[None, :]  # [B, H]
    if future_cal is None:
        future_cal = arrays.cal[target_idx]  # [B, H, 4]
    lags = _seasonal_lags(norm[:, :, 0], lookback, horizon, arrays.step)  # [B, H, 3]
    windows = {"past": past, "future": np.concatenate([future_cal, lags], axis=2),
               "mu": mu[:, 0, 0], "sigma": sigma[:, 0, 0]}
    if target_idx.max() < len(arrays.raw):
        windows["target"] = (arrays.raw[target_idx, 0] - mu[:, :, 0]) / sigma[:, :, 0]
    return {k: v.astype(np.float32) for k, v in windows.items()}


def _seasonal_lags(norm_volume: np.ndarray, lookback: int, horizon: int, step: int
                   ) -> np.ndarray:
    """For each future step j: normalised log volume one day and one week earlier, and the
    mean of the same slot over the past 7 days (each only if inside the window, else 0)."""
    day, week = max(1, DAY_MS // step), max(1, WEEK_MS // step)
    batch = norm_volume.shape[0]
    j = np.arange(horizon)

    def back(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = lookback + j - k  # position in the window of the candle k steps before step j
        ok = (idx >= 0) & (idx < lookback)
        values = np.where(ok[None, :], norm_volume[:, np.clip(idx, 0, lookback - 1)], 0.0)
        return values, ok

    lag_day, _ = back(day)
    lag_week, _ = back(week)
    sums, counts = np.zeros((batch, horizon)), np.zeros(horizon)
    for k in range(1, 8):
        values, ok = back(k * day)
        sums += values
        counts += ok
    mean7 = sums / np.maximum(counts, 1)[None, :]
    return np.stack([lag_day, lag_week, mean7], axis=2)
