"""The analysis gives the numbers its definitions say, on series built to have them."""

import json

import numpy as np
import pytest

from tests.analysis.conftest import HOUR, MONDAY, calendar_volume, series
from volcast.analysis import analyze, to_json
from volcast.analysis.profile import coverage, distribution, drivers, seasonality, spikes


def test_coverage_counts_gaps_missing_candles_and_zero_volume():
    frame = series(np.r_[np.zeros(5), np.full(95, 7.0)])
    holes = frame.drop(index=[10, 11, 12, 40])  # a 3-candle gap and a 1-candle gap
    c = coverage(holes)
    assert (c["candles"], c["expected"], c["missing"]) == (96, 100, 4)
    assert (c["gaps"], c["largest_gap"]) == (2, 3)
    assert c["zero_share"] == pytest.approx(5 / 96)
    assert (c["first"], c["last"]) == (MONDAY, MONDAY + 99 * HOUR)


def test_an_hour_of_day_profile_is_found_and_explains_all_the_variance():
    s = seasonality(series(calendar_volume(4, {14: 3.0, 15: 2.0})))
    by_hour = s["by_hour"].set_index("hour")
    assert by_hour.loc[14, "median"] == 300.0 and by_hour.loc[15, "mean"] == 200.0
    assert by_hour.loc[3, "median"] == 100.0
    assert s["explained"]["hour"] == pytest.approx(1.0)
    assert s["explained"]["weekday"] < 1e-4
    assert s["explained"]["how"] == pytest.approx(1.0)


def test_a_weekend_dip_is_a_weekday_effect_not_an_hour_effect():
    s = seasonality(series(calendar_volume(4, weekend_factor=0.25)))
    by_day = s["by_weekday"].set_index("weekday")["median"]
    assert by_day[5] == by_day[6] == 25.0 and by_day[0] == 100.0
    assert s["explained"]["weekday"] == pytest.approx(1.0)
    assert s["explained"]["hour"] < 0.01
    how = s["hour_of_week"].set_index("how")["median"]
    assert how[5 * 24 + 3] == 25.0 and how[2 * 24 + 3] == 100.0


def test_a_local_time_zone_moves_the_hours():
    s = seasonality(series(calendar_volume(2, {14: 3.0})), tz="Asia/Tokyo")  # UTC+9, no DST
    by_hour = s["by_hour"].set_index("hour")["median"]
    assert by_hour[23] == 300.0 and by_hour[14] == 100.0


def test_spikes_are_the_injected_ones_with_their_sizes():
    rng = np.random.default_rng(0)
    volume = 100 + rng.normal(0, 5, 24 * 30)
    at = {300: 20.0, 500: 8.0, 650: 40.0}
    for i, factor in at.items():
        volume[i] = 100 * factor
    volume[50] = 5000  # inside the first week: no baseline yet, never reported
    found = spikes(series(volume))
    assert list(found["ds"]) == [MONDAY + i * HOUR for i in (650, 300, 500)]  # by ratio
    assert found["ratio"].to_numpy() == pytest.approx([40, 20, 8], rel=0.05)
    assert (found["y"] > found["threshold"]).all()


def test_a_flat_series_has_no_spikes():
    assert spikes(series(np.full(24 * 30, 100.0))).empty


def test_distribution_quantiles():
    d = distribution(series(np.arange(1, 102, dtype=float)))
    assert d["q50"] == 51.0 and d["max"] == 101.0 and d["q01"] == pytest.approx(2.0)


def test_volume_that_follows_last_hours_move_correlates_at_lag_one():
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, 2000)
    close = 100 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    volume = 10 + 1e4 * np.abs(np.r_[0.0, returns[:-1]])  # driven by the previous candle
    frame = series(volume, close=close).assign(open=open_, high=np.maximum(open_, close),
                                               low=np.minimum(open_, close),
                                               trades=volume * 3)
    table = drivers(frame).set_index("driver")
    assert table.loc["abs_return", "lag_1"] == pytest.approx(1.0)
    assert abs(table.loc["abs_return", "lag_0"]) < 0.1
    assert table.loc["trades", "lag_0"] == pytest.approx(1.0)


def test_json_holds_every_section_and_serialises():
    long = series(calendar_volume(3, {9: 2.0}))
    out = json.loads(json.dumps(to_json(analyze(long), top=3)))
    one = out["series"][0]
    assert one["coverage"]["first"] == "2024-01-01T00:00:00+00:00"
    assert {"by_hour", "by_weekday", "hour_of_week", "explained"} <= set(one["seasonality"])
    assert len(one["seasonality"]["hour_of_week"]) == 168
    assert "shares" not in out  # one series: nothing to share


def test_undefined_correlations_are_null_in_json_not_nan():
    out = to_json(analyze(series(calendar_volume(2))))  # flat prices: no correlation defined
    text = json.dumps(out, allow_nan=False)  # raises on NaN
    assert json.loads(text)["series"][0]["drivers"][0]["lag_0"] is None
