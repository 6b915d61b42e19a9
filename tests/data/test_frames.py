"""Long frames: the boundary between data and models."""

import pandas as pd
import pytest

from volcast.data.frames import quote_volume, to_long
from volcast.errors import VolcastError


def test_quote_volume_is_volume_times_the_typical_price():
    candles = pd.DataFrame({"timestamp": [0, 3_600_000], "open": [10.0, 100.0],
                            "high": [12.0, 130.0], "low": [6.0, 80.0], "close": [9.0, 120.0],
                            "volume": [2.0, 0.5]})
    long = to_long(candles, "x")
    quoted = quote_volume(long)
    assert quoted["y"].tolist() == [2.0 * (12 + 6 + 9) / 3, 0.5 * (130 + 80 + 120) / 3]
    assert quoted.drop(columns="y").equals(long.drop(columns="y"))
    assert long["y"].tolist() == [2.0, 0.5]  # the input is left alone


def test_quote_volume_needs_prices():
    with pytest.raises(VolcastError, match="needs the candles' high, low"):
        quote_volume(pd.DataFrame({"unique_id": ["x"], "ds": [0], "y": [1.0]}))
