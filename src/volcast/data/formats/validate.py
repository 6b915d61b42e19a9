"""Checks every imported file passes before a single candle is stored.

Each failure names the file, the row (1-based, data rows) and the value, because "could not
convert string to float" tells a user nothing about which of a million lines is wrong.
"""

import pandas as pd

from volcast.data.store import CANDLE_COLUMNS, PRICE_COLUMNS
from volcast.data.timeframe import format_time
from volcast.errors import VolcastError

_EARLIEST_MS = 10**11
"""Open times below this (1973) are almost surely seconds, not milliseconds."""


def _numeric(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = pd.DataFrame(index=raw.index)
    for column in raw.columns:
        values = pd.to_numeric(raw[column], errors="coerce")
        bad = values.isna()
        if column == "trades":  # a trade count may be unknown (empty), prices may not
            bad &= raw[column].astype(str).str.strip() != ""
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise VolcastError(f"{source}: row {row + 1}: {column} '{raw[column].iloc[row]}' is "
                               "not a number")
        frame[column] = values
    return frame


def _check_values(frame: pd.DataFrame, source: str) -> None:
    checks = [
        (frame["timestamp"] % 1 != 0, "timestamp is not a whole number of milliseconds"),
        (frame["timestamp"] < _EARLIEST_MS, "timestamp looks like seconds, not milliseconds"),
        ((frame[PRICE_COLUMNS] < 0).any(axis=1), "negative price or volume"),
        (frame["high"] < frame["low"], "high is below low"),
    ]
    for bad, why in checks:
        if bad.any():
            row = int(bad.to_numpy().argmax())
            values = ", ".join(f"{c}={frame[c].iloc[row]}" for c in CANDLE_COLUMNS)
            raise VolcastError(f"{source}: row {row + 1}: {why} ({values})")


def _check_grid(ts: pd.Series, tf_ms: int, source: str) -> None:
    """All candles on one grid of the timeframe, mostly one step apart: catches a wrong
    --timeframe before it stores a series full of fake gaps."""
    residue = ts % tf_ms
    off = residue != residue.iloc[0]
    if off.any() or (tf_ms <= 86_400_000 and residue.iloc[0] != 0):
        first = ts[off].iloc[0] if off.any() else ts.iloc[0]
        raise VolcastError(f"{source}: candle at {format_time(int(first))} is not on the "
                           f"timeframe's grid; is --timeframe right?")
    steps = ts.diff().dropna()
    if len(steps) >= 2 and steps.mode().iloc[0] != tf_ms:
        raise VolcastError(f"{source}: candles are mostly {int(steps.mode().iloc[0]) // 60_000} "
                           f"minutes apart, not {tf_ms // 60_000}; is --timeframe right?")


def normalise(raw: pd.DataFrame, tf_ms: int | None, source: str) -> pd.DataFrame:
    """Validate raw columns into a sorted candle frame with unique integer timestamps."""
    if raw.empty:
        raise VolcastError(f"{source}: no candles in the file")
    frame = _numeric(raw.reset_index(drop=True), source)
    _check_values(frame, source)
    frame["timestamp"] = frame["timestamp"].astype("int64")
    if "trades" in frame:
        frame["trades"] = frame["trades"].astype("Int64")
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates(keep="last")
    clash = frame["timestamp"].duplicated()
    if clash.any():
        when = format_time(int(frame.loc[clash, "timestamp"].iloc[0]))
        raise VolcastError(f"{source}: two different candles open at {when}")
    frame = frame.reset_index(drop=True)
    if tf_ms is None:
        steps = frame["timestamp"].diff().dropna()
        if steps.empty:
            raise VolcastError(f"{source}: one candle is not a series")
        tf_ms = int(steps.mode().iloc[0])
    _check_grid(frame["timestamp"], tf_ms, source)
    return frame
