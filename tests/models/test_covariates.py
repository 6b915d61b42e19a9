"""Covariates: named extra columns of the candles as past inputs of the neural models (LSTM,
ensemble, transformer). A saved model records them and refuses candles without them; a
covariate that carries signal helps, one that is noise does no harm; none leaks from after a
window's origin."""

import json

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open

from volcast.errors import VolcastError
from volcast.models import create, load
from volcast.models.lstm.windows import SeriesArrays, covariate_channels, make_windows

from .conftest import TINY, TINY_TRANSFORMER, H, hand_made

NEURAL = {"lstm": TINY, "ensemble": TINY | {"gbm_rounds": 20},
          "transformer": TINY_TRANSFORMER}


def with_drivers(long: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``long`` with two noise covariates on different scales, the first unknown (NaN) for
    its first 100 candles as before a source's first published value."""
    rng = np.random.default_rng(seed)
    fear = rng.uniform(0, 100, len(long))
    fear[:100] = np.nan
    return long.assign(fear_greed=fear, vix=rng.lognormal(3, 0.3, len(long)))


@pytest.mark.parametrize("name", NEURAL)
def test_a_model_with_covariates_round_trips_and_records_them(name, recent, tmp_path):
    model = create(name, NEURAL[name] | {"epochs": 1, "covariates": ["vix", "fear_greed"]})
    candles = with_drivers(recent)
    model.fit(candles)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["settings"]["covariates"] == ["fear_greed", "vix"]  # sorted: one model
    with safe_open(str(tmp_path / "m" / "weights.safetensors"), "pt") as weights:
        saved_with = json.loads(weights.metadata()["volcast"])
    assert saved_with["covariates"] == ["fear_greed", "vix"]
    loaded = load(tmp_path / "m")
    assert loaded.settings.covariates == ["fear_greed", "vix"]
    assert loaded.predict(candles, 6).equals(model.predict(candles, 6))


def test_a_model_without_covariates_writes_no_covariates_metadata(recent, tmp_path):
    """So that the weights of models saved before covariates existed keep matching."""
    model = create("lstm", TINY | {"epochs": 1})
    model.fit(recent)
    model.save(tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "weights.safetensors"), "pt") as weights:
        assert "covariates" not in json.loads(weights.metadata()["volcast"])


@pytest.fixture(scope="module")
def with_vix(recent):
    model = create("lstm", TINY | {"epochs": 1, "covariates": ["fear_greed", "vix"]})
    model.fit(with_drivers(recent))
    return model


@pytest.mark.parametrize("candles", [
    lambda long: long,
    lambda long: with_drivers(long).drop(columns="vix"),
    lambda long: with_drivers(long).assign(vix=np.nan),
])
def test_a_model_trained_with_covariates_refuses_candles_without_them(with_vix, recent,
                                                                      tmp_path, candles):
    with_vix.save(tmp_path / "m")
    lacking = "fear_greed, vix" if "fear_greed" not in candles(recent) else "vix"
    for model in (with_vix, load(tmp_path / "m")):
        with pytest.raises(VolcastError) as refused:
            model.predict(candles(recent), 6)
        assert str(refused.value) == (
            f"the lstm model takes covariates fear_greed, vix; the candles have no {lacking}: "
            "pass --covariates fear_greed,vix and import them: volcast covariates import "
            "--source NAME FILE")


def test_training_refuses_candles_without_the_covariates_asked_for(recent):
    with pytest.raises(VolcastError, match="takes covariates vix; the candles have no vix"):
        create("transformer", TINY_TRANSFORMER | {"covariates": ["vix"]}).fit(recent)


def test_a_series_whose_covariate_is_unknown_at_its_origin_is_refused(with_vix, recent):
    stale = with_drivers(recent)
    stale.loc[stale.index[-800:], "vix"] = np.nan  # nothing in the newest 28 days
    with pytest.raises(VolcastError, match="btc: covariate vix has no value at or before the "
                                           "last candle; pass --covariates fear_greed,vix"):
        with_vix.predict(stale, 6)


@pytest.mark.parametrize("name", NEURAL)
def test_a_noise_covariate_trains_and_forecasts(name, recent):
    model = create(name, NEURAL[name] | {"covariates": ["fear_greed"]})
    model.fit(with_drivers(recent))
    forecast = model.predict(with_drivers(recent), 6)
    assert np.isfinite(forecast[["q10", "q50", "q90"]].to_numpy()).all()


def driven(hours: int, lag: int, seed: int = 0) -> pd.DataFrame:
    """Hourly candles whose log volume is a daily cycle plus ``lag``-hours-old ``driver``
    (independent hour to hour, so the volume's own past cannot foresee it), plus a little
    noise."""
    rng = np.random.default_rng(seed)
    driver = rng.uniform(0, 3, hours)
    long = hand_made(hours)
    hour = (long["ds"] // H) % 24
    log_volume = 6 + 0.5 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 0.05, hours)
    log_volume[lag:] += driver[:-lag]
    return long.assign(y=np.exp(log_volume), driver=driver)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_a_covariate_that_drives_volume_lowers_the_validation_loss(name):
    """The volume at t follows the driver at t - 1, which the volume's past cannot foresee:
    the next candle is foreseeable from the driver's newest value alone. Seeded; the margin is
    generous (seen: a third of the loss without it, or less)."""
    candles = driven(1500, lag=1)
    settings = NEURAL[name] | {"horizon": 1, "epochs": 8, "patience": 8}
    blind = create(name, settings)
    blind.fit(candles)
    told = create(name, settings | {"covariates": ["driver"]})
    told.fit(candles)
    assert told.info["best_val_loss"] < 0.5 * blind.info["best_val_loss"]


def test_a_window_before_a_covariates_first_value_sees_zero_and_nothing_later():
    """Channel of a covariate first known at candle 100: zero in every window whose past
    holds an unknown candle; a window's past never changes with values after its origin."""
    grid = hand_made(400).assign(driver=np.r_[np.full(100, np.nan), np.arange(300.0)])
    later = grid.assign(driver=np.r_[grid["driver"][:150], -grid["driver"][150:]])
    ends = np.array([60, 120, 148, 150, 200])

    def channel(frame: pd.DataFrame) -> np.ndarray:
        arrays = SeriesArrays.build(frame, H, ("volume", "calendar"), ("driver",))
        return covariate_channels(make_windows(arrays, ends, 48, 6)["past"], 1)[..., 0]

    seen = channel(grid)  # [5 windows, 48]
    assert (seen[:2] == 0).all() and (seen[2:] != 0).any(axis=1).all()
    np.testing.assert_array_equal(channel(later)[:4], seen[:4])  # origins up to 150


@pytest.mark.parametrize(("covariates", "message"), [
    (["y"], "'y' is a column of the candles"),
    (["missing"], "'missing' is a column of the candles"),
    (["Fear Greed"], "lstm.covariates.0"),
    ([f"c{i}" for i in range(17)], "lstm.covariates"),
])
def test_a_bad_covariate_name_is_a_one_line_error(covariates, message):
    with pytest.raises(VolcastError, match=message) as info:
        create("lstm", {"covariates": covariates})
    assert "\n" not in str(info.value)
