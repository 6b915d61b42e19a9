"""Reconciled forecasts of a total and its markets: their means add up at every step, each
series' quantiles only move with its mean, the total's interval calibrated on its own moves its
coverage to 80% and leaves the markets' alone, and the backtest never looks ahead."""

import numpy as np
import pandas as pd
import pytest

from volcast.config import BacktestSettings
from volcast.evaluation.hierarchy import (
    DIRECT,
    METHODS,
    QUANTILES,
    Z90,
    backtest_hierarchy,
    interval_factors,
    methods_compared,
    reconcile,
    scale_intervals,
    verdict,
    with_mean,
)
from volcast.models import create

H = 3_600_000
TOTAL = "binance:*/USDT:1h"
MARKETS = ["binance:AAA/USDT:1h", "binance:BBB/USDT:1h", "binance:CCC/USDT:1h"]


def assert_adds_up(frame, columns, total=TOTAL, key="ds"):
    """At every ``key`` and for each column, the total's value is the sum of the markets'."""
    wide = frame.pivot_table(index=key, columns="unique_id", values=columns)
    for column in columns:
        markets = wide[column].drop(columns=total).sum(axis=1)
        np.testing.assert_allclose(wide[column][total], markets, rtol=1e-9)


def base_forecasts(rng, steps):
    """Incoherent base forecasts (the total's mean is not the sum of the markets') with q10 <
    q50 < q90 and their means, and a window of earlier forecasts with their actuals."""
    levels = {uid: level for uid, level in zip(MARKETS, (50.0, 20.0, 5.0), strict=True)}
    levels[TOTAL] = 80.0
    rows = []
    for uid, level in levels.items():
        q50 = level * rng.uniform(0.7, 1.3, steps)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": np.arange(steps) * H, "q50": q50,
                                  "q10": q50 * rng.uniform(0.5, 0.9, steps),
                                  "q90": q50 * rng.uniform(1.1, 1.6, steps)}))
    forecasts = with_mean(pd.concat(rows, ignore_index=True))
    past = forecasts.assign(ds=forecasts["ds"] - steps * H)
    past["y"] = past["q50"] * rng.uniform(0.8, 1.2, len(past))
    return forecasts, past[["unique_id", "ds", "y", "mean"]]


def sums_of_markets(frame, column):
    """The total's and the markets' summed ``column`` at each ``ds``."""
    wide = frame.pivot_table(index="ds", columns="unique_id", values=column)
    return wide[TOTAL], wide.drop(columns=TOTAL).sum(axis=1)


@pytest.mark.parametrize("method", METHODS)
def test_reconciled_means_add_up_and_each_distribution_only_moves(method):
    forecasts, past = base_forecasts(np.random.default_rng(3), 48)
    assert not np.allclose(*sums_of_markets(forecasts, "mean"))
    coherent = reconcile(forecasts, TOTAL, method, past)
    assert len(coherent) == len(forecasts)
    assert_adds_up(coherent, ["mean"])
    own = forecasts.set_index(["unique_id", "ds"]).loc[
        coherent.set_index(["unique_id", "ds"]).index].reset_index()
    shift = coherent["mean"] - own["mean"]
    assert (shift.abs() > 1e-6).any()
    for column in QUANTILES:  # every quantile moved by its mean's change: widths kept
        np.testing.assert_allclose(coherent[column], own[column] + shift, rtol=1e-9)


def test_bottom_up_keeps_each_markets_own_forecast_and_moves_the_total_by_its_means():
    forecasts, _ = base_forecasts(np.random.default_rng(4), 24)
    coherent = reconcile(forecasts, TOTAL, "bottom_up").set_index(["unique_id", "ds"])
    own = forecasts.set_index(["unique_id", "ds"]).loc[coherent.index]
    markets = coherent.index.get_level_values("unique_id") != TOTAL
    for column in ("mean", *QUANTILES):
        np.testing.assert_array_equal(coherent.loc[markets, column], own.loc[markets, column])
    total, summed = sums_of_markets(own.reset_index(), "mean")
    np.testing.assert_allclose(coherent.loc[TOTAL, "q50"],
                               own.loc[TOTAL, "q50"] + (summed - total), rtol=1e-9)


def test_the_mean_of_a_right_skewed_forecast_is_above_its_median_and_a_point_is_its_own():
    sigma, median = 0.5, 10.0
    lognormal = pd.DataFrame({"q10": [median * np.exp(-Z90 * sigma)], "q50": [median],
                              "q90": [median * np.exp(Z90 * sigma)]})
    assert with_mean(lognormal)["mean"].iloc[0] == pytest.approx(median * np.exp(sigma**2 / 2))
    skewed = pd.DataFrame({"q10": [8.0, 0.0, 9.0], "q50": [10.0, 10.0, 10.0],
                           "q90": [20.0, 20.0, 10.0]})
    assert (with_mean(skewed)["mean"].iloc[:2] > 10).all()  # q10 <= 0 as well
    assert with_mean(skewed)["mean"].iloc[2] == 10  # no upper tail
    point = pd.DataFrame({"q10": [np.nan], "q50": [7.0], "q90": [np.nan]})
    assert with_mean(point)["mean"].iloc[0] == 7.0
    # an idle market: a zero median, yet some volume expected, which the total must count
    idle = pd.DataFrame({"q10": [0.0, 0.0, np.nan, np.nan], "q50": [0.0, 0.0, 0.0, 0.0],
                         "q90": [10.0, 0.0, np.nan, 10.0]})
    assert with_mean(idle)["mean"].tolist() == [pytest.approx(3.0), 0.0, 0.0, pytest.approx(3.0)]


def correlated_markets(rng, n):
    """n draws of three markets' volumes (lognormal, partly correlated), each market's true
    10/50/90% quantiles, and their sum: the total, whose summed quantiles are too wide."""
    common = rng.normal(size=(n, 1))
    noise = 0.4 * common + 0.9165 * rng.normal(size=(n, 3))  # sd 1, correlation 0.16
    levels = np.array([50.0, 20.0, 5.0])
    sigma = 0.3
    y = levels * np.exp(sigma * noise)
    z = 1.2815515655446004
    q10, q50, q90 = (levels * np.exp(sigma * k) * np.ones((n, 3)) for k in (-z, 0.0, z))
    return y.sum(axis=1), q10.sum(axis=1), q50.sum(axis=1), q90.sum(axis=1)


def coverage(y, q10, q90):
    return float(((y >= q10) & (y <= q90)).mean())


def test_calibrating_the_total_moves_its_coverage_to_80_percent():
    rng = np.random.default_rng(5)
    validation = correlated_markets(rng, 2000)
    y, q10, q50, q90 = correlated_markets(rng, 4000)
    before = coverage(y, q10, q90)
    assert before > 0.9  # quantiles do not add: the summed interval is far too wide
    lower, upper = interval_factors(*validation)
    assert lower < 1 and upper < 1
    frame = pd.DataFrame({"q10": q10, "q50": q50, "q90": q90})
    scaled = scale_intervals(frame, (lower, upper))
    after = coverage(y, scaled["q10"].to_numpy(), scaled["q90"].to_numpy())
    assert abs(after - 0.8) < 0.03 < abs(before - 0.8)
    assert abs(float((y < scaled["q10"]).mean()) - 0.1) < 0.03


def test_a_point_forecast_has_no_interval_to_calibrate():
    nan = np.full(5, np.nan)
    assert all(np.isnan(interval_factors(np.ones(5), nan, np.ones(5), nan)))


def hierarchy(days=30, seed=7):
    """Three markets with a daily cycle and their exact total, hourly: a long frame."""
    rng = np.random.default_rng(seed)
    ds = np.arange(days * 24, dtype=np.int64) * H
    cycle = 1 + 0.5 * np.sin(2 * np.pi * (ds // H % 24) / 24)
    markets = {uid: level * cycle * rng.lognormal(0, 0.2, len(ds))
               for uid, level in zip(MARKETS, (50.0, 20.0, 5.0), strict=True)}
    frames = [pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}) for uid, y in markets.items()]
    frames.append(pd.DataFrame({"unique_id": TOTAL, "ds": ds, "y": sum(markets.values())}))
    return pd.concat(frames, ignore_index=True)


PROTOCOL = BacktestSettings(horizon=24, test_days=3)


def test_the_backtest_reconciles_every_origin_and_never_looks_ahead():
    long = hierarchy()
    result = backtest_hierarchy(lambda: create("mstl", {"window_days": 14}), long, TOTAL,
                                PROTOCOL, "mint_shrink", validation_days=4)
    predictions = result.predictions
    assert predictions["origin"].nunique() == 3 and predictions["unique_id"].nunique() == 4
    assert_adds_up(predictions, ["mean"], key="timestamp")
    assert (predictions["mean"] > predictions["y_pred"]).all()  # mstl gives intervals
    assert set(result.scores["forecast"]) == {DIRECT, *METHODS}
    assert set(methods_compared(result)["method"]) == set(METHODS)
    assert verdict(result).startswith("mint_shrink: the total's MAE")
    total = result.scores[(result.scores["series"] == TOTAL)].set_index("forecast")
    assert abs(total.loc["mint_shrink", "coverage"] - 0.8) < 0.25
    # the total's interval is scaled on its own: bottom-up leaves every market's scores as
    # they were, coverage and pinball included
    assert all(np.isfinite(result.factors["bottom_up"]))
    assert result.factors["bottom_up"] != pytest.approx((1.0, 1.0), abs=0.01)
    scores = result.scores.set_index(["forecast", "series"]).drop(columns="n")
    pd.testing.assert_frame_equal(scores.loc["bottom_up"].drop(TOTAL),
                                  scores.loc[DIRECT].drop(TOTAL), rtol=1e-9)
    # candles after the first origin's horizon changed: its reconciled forecasts are the same
    later = long["ds"] >= result.cutoff + PROTOCOL.horizon * H
    changed = long.assign(y=long["y"].where(~later, long["y"] * 3))
    again = backtest_hierarchy(lambda: create("mstl", {"window_days": 14}), changed, TOTAL,
                               PROTOCOL, "mint_shrink", validation_days=4).predictions
    first = predictions["origin"] == result.cutoff
    pd.testing.assert_frame_equal(
        predictions[first].drop(columns="y_true").reset_index(drop=True),
        again[again["origin"] == result.cutoff].drop(columns="y_true").reset_index(drop=True))


def test_bottom_up_of_a_linear_model_changes_nothing():
    """seasonal_naive_24 of the total is the sum of its markets' already: reconciling it
    bottom-up gives the same figures, and the direct and reconciled scores agree."""
    result = backtest_hierarchy(lambda: create("seasonal_naive_24"), hierarchy(), TOTAL,
                                PROTOCOL, "bottom_up", validation_days=4)
    scores = result.scores.set_index(["forecast", "series"])["mae"]
    pd.testing.assert_series_equal(scores.loc["bottom_up"], scores.loc[DIRECT], rtol=1e-9)
    assert result.predictions["q10"].isna().all()
