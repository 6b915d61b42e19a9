"""Every registered model through the same API, and every capability it declares on its class
checked against what it does (declared as darts declares them, never guessed from the name)."""

import numpy as np
import pandas as pd
import pytest

from volcast.config import MODEL_TABLES
from volcast.errors import VolcastError
from volcast.models import MODEL_NAMES, REFERENCE_MODELS, create, load, model_class

from .conftest import TINY, TINY_TRANSFORMER, H

PROTOCOL_REFERENCES = {"seasonal_naive_24", "seasonal_naive_168", "hour_of_day_median_7d",
                       "hour_of_day_median_28d", "hour_of_week_median_4w"}
"""shared/bench/PROTOCOL.md, "Reference points"."""
SETTINGS = {"lstm": TINY, "ensemble": TINY | {"gbm_rounds": 20},
            "transformer": TINY_TRANSFORMER}


def build(name: str):
    return create(name, SETTINGS.get(name))


@pytest.fixture(scope="module")
def fitted(recent):
    """name -> (the model fitted on ``recent``, every progress call of that fit), made once."""
    made = {}

    def get(name: str):
        if name not in made:
            model, calls = build(name), []
            model.fit(recent, lambda *call: calls.append(call))
            made[name] = model, calls
        return made[name]

    return get


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_predicts_saves_and_loads(name, fitted, recent, tmp_path):
    model = fitted(name)[0]
    forecast = model.predict(recent, 6)
    assert list(forecast.columns[:5]) == ["unique_id", "ds", "q10", "q50", "q90"]
    assert len(forecast) == 6 and (forecast["q50"] > 0).all()
    model.save(tmp_path / name)
    assert load(tmp_path / name).predict(recent, 6).equals(forecast)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_needs_fitting_is_whether_predict_before_fit_is_refused(name, recent):
    model = build(name)
    if model.needs_fitting:
        with pytest.raises(VolcastError, match=f"the {name} model has not been trained"):
            model.predict(recent, 6)
    else:
        assert len(model.predict(recent, 6)) == 6


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_what_fit_saw_matters_exactly_when_the_model_needs_fitting(name, fitted, recent, older):
    """refits_per_origin (and no fitting at all): the forecast is a function of the history
    given to predict alone, so a model fitted on other candles forecasts the same."""
    other = build(name)
    other.fit(older)
    same = other.predict(recent, 6).equals(fitted(name)[0].predict(recent, 6))
    assert same == (not other.needs_fitting)
    if other.refits_per_origin:
        assert same


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_supports_quantiles_is_whether_q10_q50_q90_are_ordered_numbers(name, fitted, recent):
    forecast = fitted(name)[0].predict(recent, 6)
    assert forecast["q50"].notna().all()
    if model_class(name).supports_quantiles:
        assert forecast[["q10", "q90"]].notna().all().all()
        assert (forecast["q10"] < forecast["q50"]).all()
        assert (forecast["q50"] < forecast["q90"]).all()
    else:
        assert forecast[["q10", "q90"]].isna().all().all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_max_horizon_is_exactly_how_far_predict_reaches(name, fitted, recent):
    model = fitted(name)[0]
    most = model.max_horizon(H)
    if most is None:
        assert len(model.predict(recent, 3 * 24)) == 3 * 24  # three protocol horizons
        return
    assert len(model.predict(recent, most)) == most
    with pytest.raises(VolcastError, match=f"at most {most} candles ahead") as refused:
        model.predict(recent, most + 1)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_horizon_is_the_settings_horizon_and_can_be_forecast(name, fitted, recent):
    model = fitted(name)[0]
    assert model.horizon == getattr(model.settings, "horizon", None)
    if model.horizon is not None:
        assert len(model.predict(recent, model.horizon)) == model.horizon
        assert model.max_horizon(H) is None or model.max_horizon(H) >= model.horizon


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_supports_global_is_whether_one_model_serves_many_series(name, recent, older):
    both = pd.concat([recent, older], ignore_index=True)
    model = build(name)
    if not model.supports_global:
        with pytest.raises(VolcastError):
            model.fit(both)
        return
    model.fit(both)
    forecast = model.predict(both, 6)
    for uid, series in (("btc", recent), ("btc_older", older)):
        alone = model.predict(series, 6)
        # neural models run every series in one batch: the same up to float32 rounding
        pd.testing.assert_frame_equal(
            forecast[forecast["unique_id"] == uid].reset_index(drop=True), alone, rtol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_supports_exogenous_is_whether_a_named_extra_column_is_an_input(name, fitted, recent):
    """An extra column the model was not told of changes nothing; one named in ``covariates``
    (exogenous models only) changes the forecast when its recent values change."""
    model = fitted(name)[0]
    rng = np.random.default_rng(0)
    driver = recent.assign(funding=rng.normal(size=len(recent)))
    assert model.predict(driver, 6).equals(model.predict(recent, 6))
    if not model.supports_exogenous:
        return
    told = create(name, SETTINGS[name] | {"covariates": ["funding"]})
    told.fit(driver)
    changed = driver.assign(funding=np.r_[driver["funding"][:-24], rng.normal(size=24)])
    assert not told.predict(changed, 6).equals(told.predict(driver, 6))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_progress_follows_the_epoch_progress_contract(name, fitted):
    calls = fitted(name)[1]
    if not model_class(name).needs_fitting:
        assert calls == []
        return
    epochs, totals = [c[0] for c in calls], [c[1] for c in calls]
    assert epochs == list(range(1, len(calls) + 1))
    assert all(e <= t for e, t in zip(epochs, totals, strict=True))
    assert totals == sorted(totals, reverse=True) and epochs[-1] == totals[-1]


def test_is_reference_marks_exactly_the_protocols_reference_models():
    assert set(REFERENCE_MODELS) == PROTOCOL_REFERENCES
    assert [n for n in MODEL_NAMES if model_class(n).is_reference] == REFERENCE_MODELS
    assert not any(model_class(n).needs_fitting for n in REFERENCE_MODELS)


def test_unknown_model_and_unknown_setting():
    with pytest.raises(VolcastError, match="unknown model 'prophet'; choose one of lstm"):
        create("prophet")
    with pytest.raises(VolcastError, match=r"setting 'seasonal_naive_24\.lookback'"):
        create("seasonal_naive_24", {"lookback": 3})


def test_a_config_file_may_hold_a_table_for_exactly_every_registered_model():
    """config.py cannot import the registry (it sits below the models): its list must not
    drift from it."""
    assert list(MODEL_TABLES) == MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_no_setting_takes_nan_or_infinity(name):
    floats = [n for n, f in model_class(name).Settings.model_fields.items()
              if "float" in str(f.annotation)]
    for field in floats:
        for bad in (float("nan"), float("inf")):
            value = [bad] if "list" in str(model_class(name).Settings.model_fields[field]
                                           .annotation) else bad
            with pytest.raises(VolcastError, match=f"setting '{name}.{field}"):
                create(name, {field: value})
