"""The ensemble: an LSTM plus a LightGBM median, blended with a weight fitted on validation."""

import json

import numpy as np
import pandas as pd
import pytest

from volcast.errors import VolcastError
from volcast.models import create, load
from volcast.models.base import FitStopped
from volcast.models.ensemble import BLEND_GRID, blend_weight, gbm_features
from volcast.models.lstm.forecaster import LSTMForecaster

from .conftest import TINY

TINY_MEDIAN = 1  # the median's place among the quantiles 0.1, 0.5, 0.9


@pytest.fixture(scope="module")
def ensemble(recent):
    model = create("ensemble", TINY | {"gbm_rounds": 30})
    model.fit(recent)
    return model


def in_volume(log: np.ndarray, windows: dict[str, np.ndarray]) -> np.ndarray:
    """Normalised log volume [N, H] -> volume, with each window's mu and sigma."""
    return np.expm1(log * windows["sigma"][:, None] + windows["mu"][:, None])


def test_blend_weight_is_the_grid_share_with_the_least_mae():
    rng = np.random.default_rng(0)
    lstm, gbm = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    windows = {"mu": rng.uniform(3, 6, 50), "sigma": rng.uniform(0.2, 1, 50)}
    share = BLEND_GRID[6]  # 0.3
    for target, expected in ((lstm, 1.0), (gbm, 0.0), (share * lstm + (1 - share) * gbm, share)):
        weight, errors = blend_weight(lstm, gbm, windows | {"target": target})
        assert weight == expected and len(errors) == len(BLEND_GRID)
        assert errors[int(np.argmin(errors))] == pytest.approx(0.0, abs=1e-9)


def test_the_weight_is_chosen_on_the_lstm_trainings_validation_windows(ensemble):
    assert isinstance(ensemble.lstm, LSTMForecaster) and not isinstance(ensemble, LSTMForecaster)
    held_out = ensemble.lstm.validation
    assert len(held_out.windows["target"]) == sum(len(e) for _, e in held_out.split.validation)
    median = held_out.pred[..., TINY_MEDIAN].mean(axis=0)
    actual = in_volume(held_out.windows["target"], held_out.windows)
    lstm_alone = np.abs(in_volume(median, held_out.windows) - actual).mean()
    mae = ensemble.info["validation_mae"]
    assert mae["lstm"] == pytest.approx(lstm_alone, rel=1e-9)
    # the chosen share beats both models alone here, so the blend really moves the median
    assert mae["blend"] < mae["lstm"] and mae["blend"] < mae["gbm"]
    assert 0.0 < ensemble.weight < 1.0 and ensemble.info["blend_weight_lstm"] == ensemble.weight


def test_weight_one_is_the_lstm_alone(ensemble, recent, monkeypatch):
    monkeypatch.setattr(ensemble, "weight", 1.0)
    both, alone = ensemble.predict(recent, 6), ensemble.lstm.predict(recent, 6)
    # equal up to float32 rounding: the blend computes in float64, the LSTM in float32
    pd.testing.assert_frame_equal(both, alone, check_dtype=False, rtol=1e-6)


def test_weight_zero_gives_the_boosters_median_in_the_lstms_interval(ensemble, recent,
                                                                      monkeypatch):
    monkeypatch.setattr(ensemble, "weight", 0.0)
    windows, _ = ensemble.lstm.inputs.last_window(recent)
    booster = ensemble.booster.predict(gbm_features(windows, 0)).reshape(1, -1)
    both, alone = ensemble.predict(recent, 6), ensemble.lstm.predict(recent, 6)
    np.testing.assert_allclose(both["q50"], in_volume(booster, windows)[0], rtol=1e-9)
    # the interval keeps its width in log space, moved with the median
    width = np.log1p(both["q90"]) - np.log1p(both["q10"])
    np.testing.assert_allclose(width, np.log1p(alone["q90"]) - np.log1p(alone["q10"]),
                               rtol=1e-4)


def test_gbm_is_saved_as_text_and_forecasts_the_same_after_loading(ensemble, tmp_path, recent):
    ensemble.save(tmp_path / "e")
    state = json.loads((tmp_path / "e" / "model.json").read_text())["state"]
    assert state["gbm"].startswith("tree")
    loaded = load(tmp_path / "e")
    assert loaded.weight == ensemble.weight
    assert loaded.predict(recent, 6).equals(ensemble.predict(recent, 6))
    state["gbm"] = "not a model"
    manifest = json.loads((tmp_path / "e" / "model.json").read_text())
    manifest["state"] = state
    (tmp_path / "e" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(VolcastError, match="gbm_sha256"):  # the weights hold its hash
        load(tmp_path / "e")


def test_ensemble_settings_are_validated():
    with pytest.raises(VolcastError, match=r"ensemble\.gbm_rounds"):
        create("ensemble", {"gbm_rounds": 0})


def test_a_stop_ends_the_booster_before_its_next_round(recent, monkeypatch):
    """base.StoppableProgress: the booster's boosting rounds are its batches."""
    import lightgbm

    real, rounds = lightgbm.train, []

    def counting(params, data, num_round, callbacks=()):
        return real(params, data, num_round,
                    callbacks=[*callbacks, lambda env: rounds.append(env.iteration)])

    class StopAfterThreeRounds:
        def __call__(self, epoch, total, train, val):
            pass

        def should_stop(self):
            return len(rounds) >= 3

    monkeypatch.setattr(lightgbm, "train", counting)
    model = create("ensemble", TINY | {"gbm_rounds": 30})
    with pytest.raises(FitStopped):
        model.fit(recent, StopAfterThreeRounds())
    assert rounds == [0, 1, 2] and model.booster is None


def test_the_booster_learns_from_at_most_gbm_windows_training_windows(ensemble, recent):
    """Its rows do not grow with the number of series past the cap: the training windows it
    learns are spread over the series (the validation windows are the LSTM's, capped there)."""
    held_out = ensemble.lstm.validation
    train_windows = sum(len(e) for _, e in held_out.split.train)
    horizon = ensemble.horizon
    assert ensemble.info["gbm_rows"] == (train_windows + len(held_out.windows["target"])
                                         ) * horizon  # the default cap keeps them all
    capped = create("ensemble", TINY | {"gbm_rounds": 10, "gbm_windows": 64})
    capped.fit(recent)
    assert capped.info["gbm_rows"] == (64 + len(capped.lstm.validation.windows["target"])
                                       ) * horizon
    assert np.isfinite(capped.predict(recent, 6)[["q10", "q50", "q90"]].to_numpy()).all()
