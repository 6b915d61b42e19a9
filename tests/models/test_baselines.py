"""Reference models give exactly what their definition says on a hand-made series."""

import numpy as np
import pytest

from volcast.errors import VolcastError
from volcast.models import create

from .conftest import H, hand_made

# 30 days of candles; day d, hour h has volume 1000 d + h
HISTORY = hand_made(30 * 24)
NEXT_DAY = 30  # the forecast covers day 30, hours 0..23


def forecast(name, history=HISTORY, horizon=24):
    return create(name).predict(history, horizon)


def test_seasonal_naive_24_repeats_yesterday():
    f = forecast("seasonal_naive_24")
    assert f["q50"].tolist() == [1000 * 29 + h for h in range(24)]
    assert f["ds"].tolist() == [(30 * 24 + h) * H for h in range(24)]
    assert f["q10"].isna().all() and f["q90"].isna().all()


def test_seasonal_naive_168_repeats_last_week():
    assert forecast("seasonal_naive_168")["q50"].tolist() == [1000 * 23 + h for h in range(24)]


@pytest.mark.parametrize(("name", "days"), [("hour_of_day_median_7d", range(23, 30)),
                                            ("hour_of_day_median_28d", range(2, 30))])
def test_hour_of_day_medians(name, days):
    expected = [np.median([1000 * d + h for d in days]) for h in range(24)]
    assert forecast(name)["q50"].tolist() == expected


def test_hour_of_week_median_over_four_weeks():
    expected = [np.median([1000 * (NEXT_DAY - 7 * w) + h for w in range(1, 5)])
                for h in range(24)]
    assert forecast("hour_of_week_median_4w")["q50"].tolist() == expected


def test_a_missing_candle_is_filled_before_it_is_used():
    gap = HISTORY[HISTORY["ds"] != 29 * 24 * H + 5 * H]  # day 29, hour 5 missing
    f = forecast("seasonal_naive_24", gap)
    # log-linear interpolation between hours 4 and 6 of day 29
    neighbours = np.log1p([29004.0, 29006.0])
    assert f["q50"].iloc[5] == pytest.approx(np.expm1(neighbours.mean()))


def test_short_history_uses_the_days_it_has():
    f = forecast("hour_of_day_median_7d", hand_made(3 * 24))
    assert f["q50"].tolist() == [np.median([1000 * d + h for d in (0, 1, 2)]) for h in range(24)]


def test_horizon_longer_than_the_season_is_refused():
    with pytest.raises(VolcastError, match="at most 24 candles ahead"):
        forecast("seasonal_naive_24", horizon=25)
