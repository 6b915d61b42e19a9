"""Checks every candle passes before it is stored, whether it comes from a file or an exchange.

Each failure names the source, the row (1-based) and the value, because "could not convert
string to float" tells a user nothing about which of a million lines is wrong. One candle with an
absurd time or value poisons a whole store (a candle dated 2100 ends every later download at
once; one in the year 285,200,616 breaks every listing), so the bounds are checked here, once,
for every reader and for every page a fetch receives.
"""

import time

import numpy as np
import pandas as pd

from volcast.data.store import PRICE_COLUMNS
from volcast.data.timeframe import format_time
from volcast.errors import VolcastError

SECONDS_BELOW_MS = 10**11
"""Open times below this (1973) are almost surely seconds, not milliseconds."""
EARLIEST_MS = 1_230_768_000_000
"""2009-01-01 00:00 UTC: no market traded crypto before it (Bitcoin's first block is 2009-01-03)."""
MAX_VALUE = 1e18
"""Largest price or volume accepted: a billion times the biggest real candle volumes (meme
tokens with 10^14 units a day), yet small enough that volume x price and sums over millions of
candles stay finite."""
MAX_TRADES = 10**12
"""Largest trade count accepted for one candle (Binance's busiest week has about 10^8)."""


def wall_clock_ms() -> int:
    """Now by this machine's clock: the latest open time an imported file may hold."""
    return int(time.time() * 1000)


def _first(bad: pd.Series) -> int:
    return int(bad.to_numpy().argmax())


def _not_numbers(values: pd.Series) -> pd.Series:
    """Where a raw value is a boolean (JSON's ``true``, a bool column): pandas would read it
    as 1, but a volume of ``true`` is a broken file, not one unit."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "boolean":
        return pd.Series(True, index=values.index)
    if kind.startswith("mixed"):
        return values.map(lambda v: isinstance(v, bool | np.bool_))
    return pd.Series(False, index=values.index)


def numeric(raw: pd.DataFrame, source: str, first_row: int = 1) -> pd.DataFrame:
    """Raw columns (text or objects) -> floats; ``first_row`` numbers the chunk's first row, so
    a file read in chunks names its rows as a reader of the whole file would."""
    frame = pd.DataFrame(index=raw.index)
    for column in raw.columns:
        values = pd.to_numeric(raw[column].where(~_not_numbers(raw[column])), errors="coerce")
        bad = values.isna()
        if column == "trades":  # a trade count may be unknown (empty), prices may not
            bad &= raw[column].notna() & (raw[column].astype(str).str.strip() != "")
        if bad.any():
            row = _first(bad)
            raise VolcastError(f"{source}: row {first_row + row}: {column} "
                               f"'{raw[column].iloc[row]}' is not a number")
        frame[column] = values.astype(float)
    return frame


def check_values(frame: pd.DataFrame, source: str, now_ms: int, clock: str,
                 first_row: int = 1, within_range: bool = False) -> None:
    """Refuse the first row (by position) with an impossible time or value: open time not a
    whole ms, in seconds, before 2009 or after ``now_ms`` (by ``clock``); a price or volume
    that is negative, not finite or above MAX_VALUE; high below low; with ``within_range``,
    an open or close outside low..high; a trade count that is negative, fractional or above
    MAX_TRADES. ``within_range`` is for files: some exchanges' APIs do send such candles
    (ccxt's own tests skip the check for them), and a refused page would stop that market's
    download at the same candle on every run."""
    ts, values = frame["timestamp"], frame[PRICE_COLUMNS]
    checks = [
        (ts % 1 != 0, "timestamp is not a whole number of milliseconds"),
        (ts < SECONDS_BELOW_MS, "timestamp looks like seconds, not milliseconds"),
        (ts < EARLIEST_MS, "opens before 2009-01-01, when no market traded crypto"),
        (ts > now_ms, f"opens after {clock}, {format_time(now_ms)} UTC"),
        (~np.isfinite(values).all(axis=1), "price or volume is not a finite number"),
        ((values < 0).any(axis=1), "negative price or volume"),
        ((values > MAX_VALUE).any(axis=1), f"price or volume above {MAX_VALUE:.0e}, more "
                                           "than any market trades"),
        (frame["high"] < frame["low"], "high is below low"),
    ]
    if within_range:
        ends = frame[["open", "close"]]
        checks.append(((ends.lt(frame["low"], axis=0) | ends.gt(frame["high"], axis=0))
                       .any(axis=1), "open or close outside low..high"))
    if "trades" in frame:
        trades = frame["trades"]
        checks.append(((trades < 0) | (trades % 1 != 0) | (trades > MAX_TRADES),
                       f"trade count is not a whole number from 0 to {MAX_TRADES:.0e}"))
    bad = pd.concat([mask.rename(i) for i, (mask, _) in enumerate(checks)], axis=1)
    if not bad.any(axis=None):
        return
    row = _first(bad.any(axis=1))
    why = checks[_first(bad.iloc[row])][1]
    opened = float(frame["timestamp"].iloc[row])
    shown = ", ".join([f"timestamp={opened:.16g} ({format_time(opened)})", *(
        f"{c}={float(frame[c].iloc[row])!r}" for c in frame.columns if c != "timestamp")])
    raise VolcastError(f"{source}: row {first_row + row}: {why} ({shown})")


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


def normalise(frame: pd.DataFrame, tf_ms: int | None, source: str,
              now_ms: int | None = None) -> pd.DataFrame:
    """Validate numeric columns (``numeric``'s output) into a sorted candle frame with unique
    integer timestamps, none opening after ``now_ms`` (default: the wall clock)."""
    if frame.empty:
        raise VolcastError(f"{source}: no candles in the file")
    frame = frame.reset_index(drop=True)
    check_values(frame, source, wall_clock_ms() if now_ms is None else now_ms, "now",
                 within_range=True)
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
