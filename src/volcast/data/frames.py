"""Long frames at the boundary between data and models, and the grid every model works on.

A long frame has one row per (series, candle): ``unique_id, ds, y`` (ds = open time in ms UTC,
y = volume) plus the candle's ``open, high, low, close`` and, when known, ``trades``. Models
reindex each series onto its full timeframe grid (``on_grid``) and fill missing candles by
interpolation, as the protocol allows; a missing candle is never scored.
"""

import numpy as np
import pandas as pd

from volcast.data.timeframe import DAY_MS, WEEK_MS
from volcast.errors import VolcastError

PRICE = ["open", "high", "low", "close"]


def to_long(candles: pd.DataFrame, unique_id: str | np.ndarray) -> pd.DataFrame:
    """A candle frame (timestamp, open, high, low, close, volume[, trades]) -> long frame;
    ``unique_id``: the series' id, or each candle's (candles of several series)."""
    kept = [*PRICE, *(["trades"] if "trades" in candles else [])]
    return pd.DataFrame({"unique_id": unique_id, "ds": candles["timestamp"],
                         "y": candles["volume"], **{c: candles[c] for c in kept}})  # one copy


def quote_volume(long: pd.DataFrame) -> pd.DataFrame:
    """The long frame with ``y`` in the quote currency: volume x the candle's typical price
    (high + low + close) / 3, so pairs with different base currencies (BTC, ETH) can be summed
    and compared. Typical price because the candle's own volume-weighted average price is not
    in OHLCV data; it is the usual proxy for it (the close alone over- or understates a candle
    that moved). Exchanges that report quote volume would give the exact figure."""
    missing = [c for c in ("high", "low", "close") if c not in long]
    if missing:
        raise VolcastError(f"quote volume needs the candles' {', '.join(missing)}")
    typical = (long["high"] + long["low"] + long["close"]) / 3
    return long.assign(y=long["y"] * typical)


def step_ms(ds: pd.Series | np.ndarray) -> int:
    """The series' timeframe: the most common distance between consecutive candles."""
    diffs = np.diff(np.asarray(ds, dtype=np.int64))
    if len(diffs) == 0:
        raise VolcastError("a series needs at least two candles")
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[counts.argmax()])


def on_grid(series: pd.DataFrame, step: int, end: int | None = None) -> pd.DataFrame:
    """One series reindexed onto its full grid (up to ``end``, exclusive), missing candles
    interpolated (volume in log space) and flagged in ``missing``. Built column by column in
    numpy and made a frame once: a batch forecast prepares hundreds of series, and pandas'
    per-column steps cost more than the work. A series with no candle missing skips the merge
    onto the grid, and a column with nothing to fill its interpolation."""
    ds = series["ds"].to_numpy()
    first = int(ds[0])
    last = int(ds[-1]) if end is None else end - step
    if (last - first) // step + 1 == len(ds) and (np.diff(ds) == step).all():
        frame = series
    else:
        grid = pd.DataFrame({"ds": np.arange(first, last + 1, step, dtype=np.int64)})
        frame = grid.merge(series.drop(columns="unique_id"), on="ds", how="left")
    full = {c: frame[c].to_numpy() for c in frame.columns if c != "unique_id"}
    missing = np.isnan(full["y"].astype(float))
    if missing.any():  # only the gaps change: present candles keep their exact values
        filled = np.expm1(_interpolated(np.log1p(full["y"])))
        full["y"] = np.where(missing, filled, full["y"])
    for column in [c for c in [*PRICE, "trades"] if c in full]:
        values = full[column].astype(float)
        full[column] = _interpolated(values) if np.isnan(values).any() else values
    return pd.DataFrame(full | {"missing": missing})


def _interpolated(values: np.ndarray) -> np.ndarray:
    """NaNs filled linearly between their neighbours, and from the nearest at either end."""
    return pd.Series(values).interpolate(limit_direction="both").to_numpy()


def split_series(long: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Long frame -> {unique_id: that series sorted by ds}, refusing an empty input."""
    if long.empty:
        raise VolcastError("no candles to work on")
    return {uid: part.sort_values("ds").reset_index(drop=True)
            for uid, part in long.groupby("unique_id", sort=True)}


def calendar(ds: np.ndarray) -> np.ndarray:
    """[N, 4] hour-of-day and day-of-week as sin/cos pairs (UTC): known for any future candle."""
    ds = np.asarray(ds, dtype=np.int64)
    day = (ds % DAY_MS) / DAY_MS * 2 * np.pi
    week = ((ds + 3 * DAY_MS) % WEEK_MS) / WEEK_MS * 2 * np.pi  # 1970-01-01 was a Thursday
    return np.stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)], axis=1)


def future_ds(last_ds: int, step: int, horizon: int) -> np.ndarray:
    return last_ds + step * np.arange(1, horizon + 1, dtype=np.int64)
