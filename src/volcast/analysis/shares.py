"""Several series side by side: each one's share of their total volume over time.

Volumes are compared in the quote currency (volume x close), because base units differ between
pairs (1 BTC is not 1 ETH); across exchanges quoting USD and USDT the two are taken as equal.
"""

import pandas as pd

from volcast.analysis.profile import local_times


def shares(long: pd.DataFrame, freq: str = "W-SUN") -> pd.DataFrame:
    """One row per period (its start, UTC), one column per series: the share of the period's
    summed quote volume. Periods where a series has no candles count it as zero."""
    quote = pd.DataFrame({"unique_id": long["unique_id"].to_numpy(),
                          "time": local_times(long["ds"]),
                          "quote": (long["y"] * long["close"]).to_numpy(dtype=float)})
    period = quote["time"].dt.tz_localize(None).dt.to_period(freq).dt.start_time
    sums = quote.groupby([period.rename("period"), "unique_id"])["quote"].sum().unstack(
        fill_value=0.0)
    return sums.div(sums.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)


def overall_shares(long: pd.DataFrame) -> dict[str, float]:
    quote = (long["y"] * long["close"]).groupby(long["unique_id"]).sum()
    return (quote / quote.sum()).to_dict() if quote.sum() > 0 else {}
