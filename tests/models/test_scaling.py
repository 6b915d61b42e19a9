"""The neural path's cost does not grow with the number of series: validation windows are
capped, training memory stays put from N to 4N series, and every series is forecast in one
batch that gives what one series at a time gives."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from volcast.data.frames import on_grid
from volcast.models import create
from volcast.models.lstm.settings import LSTMSettings
from volcast.models.lstm.train import history_candles
from volcast.models.lstm.windows import SeriesArrays, split_windows, spread

from .conftest import TINY, H


def copies(recent: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` series made of ``recent``, each scaled by its own factor."""
    return pd.concat([recent.assign(unique_id=f"s{i}", y=recent["y"] * (1 + i / 3))
                      for i in range(count)], ignore_index=True)


def test_spread_keeps_every_end_under_the_cap_and_even_shares_over_it():
    index = [(0, np.arange(10)), (1, np.arange(100, 200)), (2, np.arange(1000, 2000))]
    assert spread(index, 1110) is index
    kept = spread(index, 300)
    assert [len(e) for _, e in kept] == [10, 100, 190]  # the small ones whole, the rest even
    ends = kept[2][1]
    assert ends[0] == 1000 and ends[-1] == 1999 and len(set(ends)) == 190
    assert np.ptp(np.diff(ends)) <= 1  # evenly spaced over the series' validation time
    again = spread(index, 300)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(kept, again, strict=True))
    assert sum(len(e) for _, e in spread(index, 7)) == 7


def test_the_default_cap_keeps_every_validation_window_of_two_pairs_over_a_year():
    """BTC and ETH hourly over the default year (``train_days``): all ~1,750 windows kept,
    so models trained as before the cap are trained exactly as before."""
    settings = LSTMSettings()
    year = SeriesArrays(np.zeros((400 * 24, 1), np.float32), np.zeros((400 * 24, 4)), H)
    split = split_windows([year, year], settings, history_candles(settings, H))
    held_out = sum(len(e) for _, e in split.validation)
    assert 1700 < held_out <= settings.val_windows


def test_a_fit_holds_at_most_val_windows_validation_windows(recent):
    model = create("lstm", TINY | {"epochs": 1, "refit": False, "stride": 24,
                                   "val_windows": 64})
    model.fit(copies(recent, 4))
    assert model.validation is not None
    assert len(model.validation.windows["mu"]) == model.validation.pred.shape[1] == 64
    assert [len(e) for _, e in model.validation.split.validation] == [16] * 4


def fit_peak(long: pd.DataFrame, settings: dict) -> int:
    """Peak bytes allocated through Python and numpy (windows, frames, arrays) during a fit,
    above what was allocated before it (torch's own allocations are not traced)."""
    model = create("lstm", settings)
    tracemalloc.start()
    try:
        model.fit(long)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("cap", [64, 10_000])
def test_training_memory_does_not_grow_with_the_number_of_series(recent, cap):
    """From 2 to 8 series, a fit's peak grows by less than three times the candles added
    (the per-series arrays and frame copies are that small); with no effective cap
    (10,000), the held-out windows alone outgrow that, which this test must then catch."""
    settings = TINY | {"epochs": 1, "refit": False, "stride": 24, "val_fraction": 0.4,
                       "val_windows": cap}
    few, many = copies(recent, 2), copies(recent, 8)
    added = many.memory_usage(deep=True).sum() - few.memory_usage(deep=True).sum()
    growth = fit_peak(many, settings) - fit_peak(few, settings)
    assert (growth < 3 * added) == (cap == 64), f"{growth:,} bytes more for {added:,}"


def test_every_series_is_forecast_in_one_batch_as_it_would_be_alone(recent, older):
    series = pd.concat([recent, older, copies(recent, 1)], ignore_index=True)
    model = create("lstm", TINY | {"epochs": 1})
    model.fit(series)
    sizes: list[int] = []

    def head(windows: dict[str, np.ndarray]) -> np.ndarray:
        sizes.append(len(windows["mu"]))
        return model.quantiles(windows)

    together = model.predict_with(series, 6, head)
    assert sizes == [3]  # one network call for the three series
    for uid, alone in series.groupby("unique_id"):
        pd.testing.assert_frame_equal(
            together[together["unique_id"] == uid].reset_index(drop=True),
            model.predict(alone, 6), rtol=1e-6)


def test_a_series_with_nothing_to_fill_skips_the_merge_for_the_same_frame(recent):
    fast = on_grid(recent, H)
    merged = on_grid(recent, H, end=int(recent["ds"].iloc[-1]) + 2 * H)  # one to fill: merge
    assert merged["missing"].sum() == 1 and not fast["missing"].any()
    pd.testing.assert_frame_equal(fast, merged.iloc[:-1])


@pytest.mark.parametrize(("name", "more"), [("lstm", {}), ("ensemble", {"gbm_rounds": 10})])
def test_a_forecast_from_the_candles_it_reaches_is_the_forecast_from_all(recent, name, more):
    """``reach`` is what a batch forecast reads from the store: the newest candles alone,
    a hole among them included, must give the very forecast the whole series gives."""
    model = create(name, TINY | {"epochs": 1} | more)
    model.fit(recent)
    holed = recent.drop(index=recent.index[-30:-27])  # a hole inside the reach
    newest = int(holed["ds"].iloc[-1])
    reach = model.reach(H)
    assert reach is not None and reach > TINY["lookback"]
    tail = holed[holed["ds"] > newest - reach * H]
    pd.testing.assert_frame_equal(model.predict(tail, 6), model.predict(holed, 6))
    shorter = holed[holed["ds"] > newest - (reach - 24) * H]
    assert not model.predict(shorter, 6).equals(model.predict(holed, 6))
