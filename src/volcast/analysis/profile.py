"""One series, described: coverage, seasonality, distribution and spikes, drivers.

Every function takes one series of a long frame (``unique_id, ds, y, open, high, low, close
[, trades]``, ds in ms UTC) and returns plain numbers and frames, so the CLI prints them, the
report draws them and ``--format json`` serialises them from the same values.
"""

import numpy as np
import pandas as pd

from volcast.data.frames import step_ms
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DRIVER_LAGS = (0, 1, 2, 3, 6, 12, 24)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def check_zone(tz: str) -> str:
    """An IANA time zone name, or a one-line error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
        pd.Timestamp(0, tz="UTC").tz_convert(tz)  # pandas reads names through pytz, which
    except (ZoneInfoNotFoundError, ValueError, OSError, KeyError):  # lacks a few ('Factory')
        raise VolcastError(f"unknown time zone '{tz}'; use an IANA name such as UTC or "
                           "Europe/Berlin") from None
    return tz


def local_times(ds: pd.Series, tz: str = "UTC") -> pd.DatetimeIndex:
    """Open times as timezone-aware datetimes (UTC unless a local zone is asked for)."""
    return pd.DatetimeIndex(pd.to_datetime(ds.to_numpy(), unit="ms", utc=True)).tz_convert(tz)


def coverage(series: pd.DataFrame) -> dict[str, object]:
    """First and last candle, how many the grid expects, the gaps and the zero-volume share."""
    step = step_ms(series["ds"])
    ds = series["ds"].to_numpy(dtype=np.int64)
    jumps = np.diff(ds) // step - 1  # missing candles between neighbours
    expected = int((ds[-1] - ds[0]) // step + 1)
    return {"first": int(ds[0]), "last": int(ds[-1]), "step_ms": step, "candles": len(ds),
            "expected": expected, "missing": expected - len(ds),
            "gaps": int((jumps > 0).sum()), "largest_gap": int(jumps.max(initial=0)),
            "zero_share": float((series["y"] == 0).mean())}


def _detrended(series: pd.DataFrame) -> pd.Series:
    """log1p(volume) minus its mean over the trailing week, so a rising or falling level does
    not count as seasonality; the first week (no full window yet) is dropped."""
    step = step_ms(series["ds"])
    window = max(1, 7 * DAY_MS // step)
    logs = np.log1p(series["y"].astype(float))
    return (logs - logs.rolling(window, min_periods=window).mean()).dropna()


def _explained(values: pd.Series, groups: np.ndarray) -> float:
    """Share of the variance of ``values`` that the group means explain (eta squared)."""
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    means = values.groupby(groups).transform("mean")
    return float(((means - values.mean()) ** 2).sum() / total)


def seasonality(series: pd.DataFrame, tz: str = "UTC") -> dict[str, object]:
    """Mean and median volume by hour of day and by weekday, the hour-of-week median profile,
    and the share of the (detrended, log) variance each calendar grouping explains."""
    times = local_times(series["ds"], tz)
    y = series["y"].to_numpy(dtype=float)
    hour, weekday = times.hour.to_numpy(), times.weekday.to_numpy()
    frame = pd.DataFrame({"y": y, "hour": hour, "weekday": weekday,
                          "how": weekday * 24 + hour})
    detrended = _detrended(series)
    kept = frame.loc[detrended.index]
    return {
        "tz": tz,
        "by_hour": frame.groupby("hour")["y"].agg(["mean", "median"]).reset_index(),
        "by_weekday": frame.groupby("weekday")["y"].agg(["mean", "median"]).reset_index(),
        "hour_of_week": frame.groupby("how")["y"].median().reset_index(name="median"),
        "explained": {name: _explained(detrended, kept[name].to_numpy())
                      for name in ("hour", "weekday", "how")},
    }


def distribution(series: pd.DataFrame) -> dict[str, float]:
    y = series["y"].astype(float)
    return {"mean": float(y.mean()), "std": float(y.std()), "max": float(y.max()),
            **{f"q{round(q * 100):02d}": float(y.quantile(q)) for q in QUANTILES}}


def spikes(series: pd.DataFrame, k: float = 6.0, days: float = 7.0) -> pd.DataFrame:
    """Candles whose volume exceeds a robust baseline of the previous ``days``: the rolling
    median plus ``k`` times the rolling MAD (scaled to a standard deviation, and at least 1% of
    the median so a flat stretch does not flag its noise). The MAD is the rolling median of
    each past candle's distance from its own baseline, so both are O(n log window) rolling
    medians (minute candles over years stay fast and small). Largest first by ratio to the
    median; only past candles enter each baseline, so a spike never hides itself."""
    step = step_ms(series["ds"])
    window = max(3, round(days * DAY_MS / step))
    y = series["y"].astype(float).reset_index(drop=True)
    past = y.shift(1)  # candle t's baseline sees candles t - window .. t - 1
    median = past.rolling(window, min_periods=window).median()
    mad = (past - median.shift(1)).abs().rolling(window, min_periods=1).median() * 1.4826
    threshold = median + k * np.maximum(mad, 0.01 * median)
    found = (y > threshold).to_numpy()
    out = pd.DataFrame({"ds": series["ds"].to_numpy()[found], "y": y[found].to_numpy(),
                        "baseline": median[found].to_numpy(),
                        "threshold": threshold[found].to_numpy()})
    out["ratio"] = out["y"] / out["baseline"].where(out["baseline"] > 0)
    return out.sort_values("ratio", ascending=False).reset_index(drop=True)


def drivers(series: pd.DataFrame, lags: tuple[int, ...] = DRIVER_LAGS) -> pd.DataFrame:
    """Spearman correlation of volume with |return|, high-low range and trade count measured
    ``lag`` candles earlier (lag 0: the same candle). Rank correlation, because volume is
    heavy-tailed and one spike would otherwise decide a Pearson figure."""
    candidates = {
        "abs_return": np.abs(np.log(series["close"] / series["open"])),
        "range": np.log(series["high"] / series["low"]),
    }
    if "trades" in series and series["trades"].notna().any():
        candidates["trades"] = series["trades"].astype(float)
    y = series["y"].astype(float).reset_index(drop=True)
    rows = []
    for name, values in candidates.items():
        values = pd.Series(np.asarray(values, dtype=float))
        rows.append({"driver": name, **{f"lag_{lag}": _spearman(y, values.shift(lag))
                                        for lag in lags}})
    return pd.DataFrame(rows)


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Rank correlation; NaN when either side is constant (no correlation is defined)."""
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if both["a"].nunique() < 2 or both["b"].nunique() < 2:
        return float("nan")
    return float(both["a"].corr(both["b"], method="spearman"))
