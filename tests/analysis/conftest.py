"""Hand-made hourly series whose seasonality, spikes and drivers are known exactly."""

import numpy as np
import pandas as pd

HOUR = 3_600_000
MONDAY = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def series(volume: np.ndarray, uid: str = "s", close: float | np.ndarray = 10.0,
           start: int = MONDAY) -> pd.DataFrame:
    """A long frame of hourly candles with the given volume (prices flat unless given)."""
    n = len(volume)
    close = np.broadcast_to(np.asarray(close, dtype=float), (n,))
    return pd.DataFrame({"unique_id": uid, "ds": start + HOUR * np.arange(n, dtype=np.int64),
                         "y": np.asarray(volume, dtype=float), "open": close, "high": close,
                         "low": close, "close": close})


def calendar_volume(weeks: int, hour_factor: dict[int, float] | None = None,
                    weekend_factor: float = 1.0) -> np.ndarray:
    """100 x the hour's factor x the weekend factor on Saturdays and Sundays."""
    hours = np.arange(weeks * 168)
    factor = np.array([(hour_factor or {}).get(h % 24, 1.0) for h in hours])
    weekend = np.where((hours // 24) % 7 >= 5, weekend_factor, 1.0)
    return 100.0 * factor * weekend
