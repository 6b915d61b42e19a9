"""Several series side by side: each one's share of their total volume over time.

Volumes are compared in the quote currency (volume x typical price, ``data.frames.quote_volume``),
because base units differ between pairs (1 BTC is not 1 ETH); across exchanges quoting USD and
USDT the two are taken as equal. ``unit`` says what ``y`` already is: base volume is converted,
quote volume is taken as it is.
"""

import pandas as pd

from volcast.analysis.profile import local_times
from volcast.data.frames import quote_volume


def _quote(long: pd.DataFrame, unit: str) -> pd.Series:
    return (long if unit == "quote" else quote_volume(long))["y"].astype(float)


def shares(long: pd.DataFrame, freq: str = "W-SUN", unit: str = "base") -> pd.DataFrame:
    """One row per period (its start, UTC), one column per series: the share of the period's
    summed quote volume. Periods where a series has no candles count it as zero."""
    quote = pd.DataFrame({"unique_id": long["unique_id"].to_numpy(),
                          "time": local_times(long["ds"]),
                          "quote": _quote(long, unit).to_numpy()})
    period = quote["time"].dt.tz_localize(None).dt.to_period(freq).dt.start_time
    sums = quote.groupby([period.rename("period"), "unique_id"])["quote"].sum().unstack(
        fill_value=0.0)
    return sums.div(sums.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)


def overall_shares(long: pd.DataFrame, unit: str = "base") -> dict[str, float]:
    quote = _quote(long, unit).groupby(long["unique_id"]).sum()
    return (quote / quote.sum()).to_dict() if quote.sum() > 0 else {}
