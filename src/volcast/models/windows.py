"""Turn series on their grid into LSTM windows: past features, known-future features, targets.

Everything is normalised per window with statistics of the window's own past (mean and spread
of log1p(volume) and of each other input), so nothing is fitted on data the window cannot see,
one model serves pairs whose volumes differ by orders of magnitude, and the level after a regime
change is read from the window instead of remembered from training.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.frames import calendar
from volcast.data.timeframe import DAY_MS, WEEK_MS

EPS = 1e-3
N_FUTURE = 9  # calendar (4), a day back, a week back, same-slot means over 7d, 28d, 4 weeks
BASE_COLUMN = 6
CONTEXT_DAYS = 28
"""History the seasonal inputs reach back to, beyond the LSTM's lookback."""
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
    """Windows whose past is [end - lookback, end): past [B, L, F], future [B, H, 9],
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
    lags = _seasonal_lags(arrays.raw[:, 0], ends, mu[:, :, 0], sigma[:, :, 0], horizon,
                          arrays.step)  # [B, H, 5]
    windows = {"past": past, "future": np.concatenate([future_cal, lags], axis=2),
               "mu": mu[:, 0, 0], "sigma": sigma[:, 0, 0]}
    if target_idx.max() < len(arrays.raw):
        windows["target"] = (arrays.raw[target_idx, 0] - mu[:, :, 0]) / sigma[:, :, 0]
    return {k: v.astype(np.float32) for k, v in windows.items()}


def _seasonal_lags(log_volume: np.ndarray, ends: np.ndarray, mu: np.ndarray,
                   sigma: np.ndarray, horizon: int, step: int) -> np.ndarray:
    """[B, H, 5] for each future step j of each window: (normalised) log volume one day and one
    week earlier, and the mean of the same slot over the past 7 and 28 days and over the same
    hour of the week in the past 4 weeks; always from candles before the window's end."""
    day, week = max(1, DAY_MS // step), max(1, WEEK_MS // step)
    target = ends[:, None] + np.arange(horizon)[None, :]  # [B, H]

    def mean_back(period: int, count: int) -> np.ndarray:
        sums = np.zeros(target.shape)
        counts = np.zeros(target.shape)
        for k in range(1, count + 1):
            idx = target - k * period
            ok = (idx >= 0) & (idx < ends[:, None])  # only candles before the origin
            sums += np.where(ok, log_volume[np.clip(idx, 0, len(log_volume) - 1)], 0.0)
            counts += ok
        mean = sums / np.maximum(counts, 1)
        return np.where(counts > 0, (mean - mu) / sigma, 0.0)

    return np.stack([mean_back(day, 1), mean_back(week, 1), mean_back(day, 7),
                     mean_back(day, 28), mean_back(week, 4)], axis=2)
