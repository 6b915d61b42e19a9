"""Turn series on their grid into windows: past inputs, known-future inputs, targets.

The one data path of every network (the LSTM, the transformer). Everything is normalised per
window with statistics of the window's own past (mean and spread of log1p(volume) and of each
other input), so nothing is fitted on data the window cannot see, one model serves pairs whose
volumes differ by orders of magnitude, and the level after a regime change is read from the
window instead of remembered from training.

Past channels, in order: the candle inputs (log volume first), the covariates (settings'
order), the calendar (4). A covariate's value on a row was public at that candle's close (the
data layer's promise), so a window's past never holds a value published after its origin.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.frames import calendar
from volcast.data.timeframe import DAY_MS, WEEK_MS
from volcast.errors import VolcastError
from volcast.models.lstm.settings import NeuralSettings

EPS = 1e-3
N_FUTURE = 9  # calendar (4), a day back, a week back, same-slot means over 7d, 28d, 4 weeks
BASE_COLUMN = 6
"""The future feature the median is predicted relative to: the 7-day same-slot mean."""
CONTEXT_DAYS = 28
"""History the seasonal inputs reach back to, beyond the lookback."""
Index = list[tuple[int, np.ndarray]]
"""(series number, window end positions) pairs."""


@dataclass
class SeriesArrays:
    """One series on its grid as float32 arrays: raw inputs [T, C] (log volume first, the
    covariates last, NaN where a covariate has no value yet) and the calendar [T, 4]."""

    raw: np.ndarray
    cal: np.ndarray
    step: int

    @classmethod
    def build(cls, grid: pd.DataFrame, step: int, features: tuple[str, ...],
              covariates: tuple[str, ...] = ()) -> "SeriesArrays":
        def column(name: str) -> np.ndarray:  # numpy, not pandas: a forecast builds one per series
            return grid[name].to_numpy(dtype=float)

        columns = [np.log1p(column("y"))]
        if "range" in features:
            columns.append(np.log1p(1e3 * np.log(column("high") / column("low")).clip(min=0)))
        if "abs_return" in features:
            columns.append(np.log1p(1e3 * np.abs(np.log(column("close") / column("open")))))
        if "trades" in features and "trades" in grid:
            columns.append(np.log1p(column("trades")))
        candles = np.nan_to_num(np.stack(columns, axis=1).astype(np.float32))
        drivers = [covariate_input(grid[name])[:, None] for name in covariates]
        raw = np.concatenate([candles, *drivers], axis=1, dtype=np.float32)
        return cls(raw, calendar_inputs(grid["ds"].to_numpy(), features), step)


def covariate_input(values: pd.Series) -> np.ndarray:
    """A covariate as a past input: each candle carries the last value known at its close
    (forward fill, which also covers the candles ``on_grid`` filled in), NaN before the first
    one, in signed log1p (market volumes are heavy-tailed, funding rates signed)."""
    known = values.astype(float).ffill().to_numpy()
    return np.sign(known) * np.log1p(np.abs(known))


def calendar_inputs(ds: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    """[T, 4] calendar inputs: zeros when the model does not use the calendar, so past and
    future candles are treated alike."""
    cal = calendar(ds).astype(np.float32)
    return cal if "calendar" in features else np.zeros_like(cal)


def n_past_features(features: tuple[str, ...], has_trades: bool, covariates: int = 0) -> int:
    channels = 1 + sum(f in features for f in ("range", "abs_return"))
    return channels + int("trades" in features and has_trades) + covariates + 4


def covariate_channels(past: np.ndarray, covariates: int) -> np.ndarray:
    """The covariates' normalised channels [B, L, K] of prepared past inputs [B, L, F]."""
    return past[:, :, past.shape[2] - 4 - covariates: past.shape[2] - 4]


@dataclass
class Pool:
    """The rows of every series that its windows read, end to end in one ``SeriesArrays``
    (series n holds rows offsets[n] to offsets[n + 1], its first ``skipped[n]`` rows left
    out), so that a training batch's windows, drawn from many series, are made in one
    vectorised ``make_windows`` call: one call per series cost ~0.6 ms each, 83 ms for a batch
    of 256 windows from 138 series (more than the network's step). Only the rows the windows
    reach are copied: a long history trained on its newest ``train_days`` costs no more."""

    arrays: SeriesArrays
    offsets: np.ndarray
    skipped: np.ndarray

    @classmethod
    def of(cls, arrays: list[SeriesArrays], index: Index, lookback: int) -> "Pool":
        """The rows the windows of ``index`` (window ends per series number) read: from
        their past and seasonal context (``context_rows``) before the first end to the end
        of the series; none of a series without windows."""
        reach = context_rows(lookback, arrays[0].step)
        first = {n: max(0, int(ends.min()) - reach) for n, ends in index if len(ends)}
        skipped = np.array([first.get(n, len(a.raw)) for n, a in enumerate(arrays)])
        kept = [(a.raw[k:], a.cal[k:]) for a, k in zip(arrays, skipped, strict=True)]
        joined = SeriesArrays(np.concatenate([raw for raw, _ in kept]),
                              np.concatenate([cal for _, cal in kept]), arrays[0].step)
        return cls(joined, np.cumsum([0, *(len(raw) for raw, _ in kept)]), skipped)


def context_rows(lookback: int, step: int) -> int:
    """Rows before a window's end that it reads: its lookback, and the seasonal inputs' 28
    days or 4 weeks back (at least 28 and 4 rows: ``_seasonal_lags`` counts a day and a week
    as one row each at timeframes longer than them)."""
    day, week = max(1, DAY_MS // step), max(1, WEEK_MS // step)
    return max(lookback, CONTEXT_DAYS * day, 4 * week)


def make_windows(arrays: SeriesArrays, ends: np.ndarray, lookback: int, horizon: int,
                 future_cal: np.ndarray | None = None, first: np.ndarray | None = None,
                 stop: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Windows whose past is [end - lookback, end): past [B, L, F], future [B, H, 9],
    mu/sigma [B] (log-volume scale), and target [B, H] where the series has one. A covariate
    without a value somewhere in a window (before its first one) is 0 throughout that window,
    its normalised mean: unknown, and no later value leaks in to fill it. ``arrays`` may hold
    several series end to end (``Pool``): ``first`` and ``stop`` [B] then bound each window's
    own series (default: the whole arrays)."""
    first = np.zeros(len(ends), dtype=int) if first is None else first
    stop = np.full(len(ends), len(arrays.raw)) if stop is None else stop
    past_idx = ends[:, None] + np.arange(-lookback, 0)[None, :]  # [B, L]
    raw = arrays.raw[past_idx]  # [B, L, C]
    mu = raw.mean(axis=1, keepdims=True)  # [B, 1, C]
    sigma = raw.std(axis=1, keepdims=True) + EPS
    norm = np.nan_to_num((raw - mu) / sigma)  # NaN only in covariates' channels
    past = np.concatenate([norm, arrays.cal[past_idx]], axis=2)  # [B, L, C + 4]

    target_idx = ends[:, None] + np.arange(horizon)[None, :]  # [B, H]
    if future_cal is None:
        future_cal = arrays.cal[target_idx]  # [B, H, 4]
    lags = _seasonal_lags(arrays.raw[:, 0], ends, first, mu[:, :, 0], sigma[:, :, 0], horizon,
                          arrays.step)  # [B, H, 5]
    windows = {"past": past, "future": np.concatenate([future_cal, lags], axis=2),
               "mu": mu[:, 0, 0], "sigma": sigma[:, 0, 0]}
    if (target_idx[:, -1] < stop).all():
        windows["target"] = (arrays.raw[target_idx, 0] - mu[:, :, 0]) / sigma[:, :, 0]
    return {k: v.astype(np.float32) for k, v in windows.items()}


def _seasonal_lags(log_volume: np.ndarray, ends: np.ndarray, first: np.ndarray, mu: np.ndarray,
                   sigma: np.ndarray, horizon: int, step: int) -> np.ndarray:
    """[B, H, 5] for each future step j of each window: (normalised) log volume one day and one
    week earlier, and the mean of the same slot over the past 7 and 28 days and over the same
    hour of the week in the past 4 weeks; always from candles of the window's own series
    (from ``first``) before its end."""
    day, week = max(1, DAY_MS // step), max(1, WEEK_MS // step)
    target = ends[:, None] + np.arange(horizon)[None, :]  # [B, H]

    def mean_back(period: int, count: int) -> np.ndarray:
        sums = np.zeros(target.shape)
        counts = np.zeros(target.shape)
        for k in range(1, count + 1):
            idx = target - k * period
            ok = (idx >= first[:, None]) & (idx < ends[:, None])  # its own, before the origin
            sums += np.where(ok, log_volume[np.clip(idx, 0, len(log_volume) - 1)], 0.0)
            counts += ok
        mean = sums / np.maximum(counts, 1)
        return np.where(counts > 0, (mean - mu) / sigma, 0.0)

    return np.stack([mean_back(day, 1), mean_back(week, 1), mean_back(day, 7),
                     mean_back(day, 28), mean_back(week, 4)], axis=2)


def sound_ends(grid: pd.DataFrame, origins: np.ndarray, step: int, reach: int, lookback: int,
               covariates: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Window ends [B] of origins [B] on a whole series' grid (``on_grid``), and which of
    them give the very window the candles before the origin alone give (``reach`` of them):
    the origin on the grid, a full lookback, no missing candle in the reach (the whole grid
    fills a gap from both sides of it) and each covariate known on its first candle (so that
    forward filling starts alike)."""
    ds = grid["ds"].to_numpy()
    ends = (origins - ds[0]) // step
    at = np.clip(ends, 0, len(ds))
    starts = np.maximum(at - reach, 0)
    seen = np.concatenate([[0], np.cumsum(grid["missing"].to_numpy())])  # missing before row i
    sound = ((origins - ds[0]) % step == 0) & (ends >= lookback) & (ends <= len(ds)) & (
        seen[at] == seen[starts])
    for name in covariates:
        sound &= grid[name].notna().to_numpy()[np.minimum(starts, len(ds) - 1)]
    return ends, sound


@dataclass
class Split:
    """Window ends by time: ``train`` ends at least one horizon before the first
    ``validation`` end, so no target is seen by both; ``every`` is all the window ends of the
    same series (train, gap and validation: what the refit learns from)."""

    train: Index
    validation: Index
    every: Index


def window_ends(a: SeriesArrays, lookback: int, horizon: int, newest: int | None) -> np.ndarray:
    """Every window end with a full past and a full target, within the newest candles."""
    first = lookback if newest is None else max(lookback, len(a.raw) - newest)
    return np.arange(first, len(a.raw) - horizon + 1)


def split_windows(arrays: list[SeriesArrays], settings: NeuralSettings, newest: int | None
                  ) -> Split:
    """The newest ``val_fraction`` of each series' window ends is validation, of which at most
    ``val_windows`` in all are kept (``spread``)."""
    lookback, horizon = settings.lookback, settings.horizon
    train, val, every = [], [], []
    for number, a in enumerate(arrays):
        ends = window_ends(a, lookback, horizon, newest)
        if len(ends) < 20:
            continue
        cut = ends[int(len(ends) * (1 - settings.val_fraction))]
        train.append((number, ends[ends <= cut - horizon]))
        val.append((number, ends[ends >= cut]))
        every.append((number, ends))
    if not train or sum(len(e) for _, e in train) < 10:
        need = lookback + horizon + 40
        raise VolcastError(f"too little history to train: each series needs well over {need} "
                           "candles (lookback + horizon + validation)")
    return Split(train, spread(val, settings.val_windows), every)


def spread(index: Index, most: int) -> Index:
    """At most ``most`` window ends of ``index`` (all of them when they are no more): equal
    shares per series (a series with fewer keeps all it has, its unused share going to the
    others), each share evenly spaced over that series' ends. No randomness: the same ends
    every time."""
    sizes = [len(e) for _, e in index]
    if sum(sizes) <= most:
        return index
    shares = dict.fromkeys(range(len(index)), 0)
    left = most
    for k, i in enumerate(sorted(shares, key=lambda i: sizes[i])):  # smallest first
        shares[i] = min(sizes[i], left // (len(index) - k))
        left -= shares[i]
    return [(n, e[np.linspace(0, len(e) - 1, shares[i]).round().astype(int)])
            for i, (n, e) in enumerate(index) if shares[i]]


def gather(pool: Pool, index: Index, settings: NeuralSettings,
           stop: Callable[[], None]) -> dict[str, np.ndarray]:
    """Every window of ``index`` in one set of arrays, in ``batches``' order, filled batch by
    batch (never two copies at once); ``stop`` before each batch."""
    total = sum(len(e) for _, e in index)
    out: dict[str, np.ndarray] = {}
    at = 0
    for batch in batches(pool, index, settings, None):
        stop()
        for key, value in batch.items():
            if key not in out:
                out[key] = np.empty((total, *value.shape[1:]), value.dtype)
            out[key][at:at + len(value)] = value
        at += len(batch["mu"])
    return out


def batches(pool: Pool, index: Index, settings: NeuralSettings,
            rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Window batches, shuffled across series when rng is given, each made when it is asked
    for (an epoch's windows never sit in memory at once)."""
    for chunk in batch_pairs(index, settings.batch_size, rng):
        yield window_batch(pool, chunk, settings)


def batch_pairs(index: Index, size: int, rng: np.random.Generator | None
                ) -> Iterator[np.ndarray]:
    """``index``'s windows as (series number, end) pairs [B, 2], ``size`` at a time, shuffled
    across series when rng is given: what a batch holds, before its windows are made."""
    pairs = np.concatenate([np.stack([np.full(len(e), n), e], axis=1) for n, e in index])
    if rng is not None:
        pairs = pairs[rng.permutation(len(pairs))]
    for start in range(0, len(pairs), size):
        yield pairs[start:start + size]


def window_batch(pool: Pool, pairs: np.ndarray, settings: NeuralSettings
                 ) -> dict[str, np.ndarray]:
    """The windows of (series number, end) pairs [B, 2], grouped by series in ascending order
    (the pairs' order within a series kept), made in one call."""
    series, ends = pairs[np.argsort(pairs[:, 0], kind="stable")].T
    first, stop = pool.offsets[series], pool.offsets[series + 1]
    at = first + ends - pool.skipped[series]
    reach = context_rows(settings.lookback, pool.arrays.step)
    cut = (pool.skipped[series] > 0) & (at - reach < first)  # its context was left out
    if cut.any() or (ends < settings.lookback).any() or (at + settings.horizon > stop).any():
        raise ValueError("a training window reaches outside its series")  # a bug, not input
    return make_windows(pool.arrays, at, settings.lookback, settings.horizon,
                        first=first, stop=stop)
