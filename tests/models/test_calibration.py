"""Per-series calibration (``calibration = "series"``): a global model's intervals are scaled
by what each series' own held-out windows need, the pooled scales standing in for a series it
saw too little of or never saw; the median never moves."""

import numpy as np
import pandas as pd
import pytest

from volcast.models import create, load
from volcast.models.lstm.settings import MIN_SERIES_WINDOWS
from volcast.models.lstm.train import window_series

from .conftest import TINY

SERIES = ("calm", "short", "wild")
"""The fixture's series in the order a fit lays them out (``split_series``: sorted)."""


@pytest.fixture(scope="module")
def noisy(recent, older) -> pd.DataFrame:
    """Two copies of the same candles, one smoothed over a day, one with heavy multiplicative
    noise, and a series too short for scales of its own."""
    rng = np.random.default_rng(0)
    calm = recent.assign(unique_id="calm", y=recent["y"].rolling(24, min_periods=1).mean())
    wild = recent.assign(unique_id="wild",
                         y=recent["y"] * np.exp(rng.normal(0, 0.8, len(recent))))
    short = older.iloc[-400:].assign(unique_id="short")
    return pd.concat([calm, wild, short], ignore_index=True)


@pytest.fixture(scope="module")
def model(noisy):
    fitted = create("lstm", TINY)
    fitted.fit(noisy)
    return fitted


def forecasts(model, long: pd.DataFrame, monkeypatch) -> dict[str, pd.DataFrame]:
    """The model's forecast with each calibration."""
    out = {}
    for calibration in ("series", "pooled"):
        monkeypatch.setattr(model.s, "calibration", calibration)
        out[calibration] = model.predict(long, 6)
    return out


def width(forecast: pd.DataFrame, uid: str) -> float:
    one = forecast[forecast["unique_id"] == uid]
    return float((one["q90"] - one["q10"]).mean())


def test_the_held_out_windows_are_told_apart_by_series(model):
    """``window_series`` labels the held-out windows in ``gather``'s order: every wild
    window's spread is above every calm one's."""
    held_out = model.validation
    labels = np.array(SERIES)[window_series(held_out.split.validation)]
    sigma = held_out.windows["sigma"]
    assert sigma[labels == "wild"].min() > sigma[labels == "calm"].max()
    assert (labels == "short").sum() < MIN_SERIES_WINDOWS <= (labels == "calm").sum()


def test_each_series_is_calibrated_on_its_own_windows_and_the_median_stays(model, noisy,
                                                                          monkeypatch):
    own, pooled = model.series_scales, model.scales[0]
    assert sorted(own) == ["calm", "wild"]  # "short" has too few held-out windows
    for q in (0, 2):  # q10 and q90: calm needs less stretch than the pool, wild more
        assert own["calm"][0][q] < pooled[q] < own["wild"][0][q]
    both = forecasts(model, noisy, monkeypatch)
    assert width(both["series"], "calm") < width(both["pooled"], "calm")
    assert width(both["series"], "wild") > width(both["pooled"], "wild")
    pd.testing.assert_series_equal(both["series"]["q50"], both["pooled"]["q50"], check_exact=True)


def test_a_series_seen_too_little_or_never_keeps_the_pooled_scales(model, noisy, recent,
                                                                   monkeypatch):
    unseen = recent.assign(unique_id="unseen")
    long = pd.concat([noisy[noisy["unique_id"] == "short"], unseen], ignore_index=True)
    both = forecasts(model, long, monkeypatch)
    pd.testing.assert_frame_equal(both["series"], both["pooled"], check_exact=True)
    monkeypatch.setattr(model.s, "calibration", "series")
    scales = model.window_scales(["unseen", "calm", "short"])  # [B, M, Q]
    assert scales.tolist() == [model.scales, model.series_scales["calm"], model.scales]


def test_the_per_series_scales_survive_save_and_load(model, noisy, tmp_path):
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.series_scales == model.series_scales
    pd.testing.assert_frame_equal(loaded.predict(noisy, 6), model.predict(noisy, 6),
                                  check_exact=True)


def test_the_ensemble_moves_the_series_calibrated_interval_with_the_same_median(noisy,
                                                                                monkeypatch):
    ensemble = create("ensemble", TINY | {"epochs": 1, "gbm_rounds": 10})
    ensemble.fit(noisy)
    assert sorted(ensemble.lstm.series_scales) == ["calm", "wild"]
    both = forecasts(ensemble, noisy, monkeypatch)  # the LSTM shares the ensemble's settings
    pd.testing.assert_series_equal(both["series"]["q50"], both["pooled"]["q50"], check_exact=True)
    assert not both["series"]["q90"].equals(both["pooled"]["q90"])
