"""Every registered model through the same API: fit, predict, quantile order, save/load."""

import pytest

from volcast.errors import VolcastError
from volcast.models import MODEL_NAMES, create, load, model_class

from .conftest import TINY


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_predicts_saves_and_loads(name, recent, tmp_path):
    settings = {"lstm": TINY, "ensemble": TINY | {"gbm_rounds": 20}}.get(name)
    model = create(name, settings)
    model.fit(recent)
    forecast = model.predict(recent, 6)
    assert list(forecast.columns[:5]) == ["unique_id", "ds", "q10", "q50", "q90"]
    assert len(forecast) == 6 and (forecast["q50"] > 0).all()
    if model.supports_quantiles:
        assert (forecast["q10"] <= forecast["q50"]).all()
        assert (forecast["q50"] <= forecast["q90"]).all()
    else:
        assert forecast["q10"].isna().all()
    model.save(tmp_path / name)
    assert load(tmp_path / name).predict(recent, 6).equals(forecast)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_capabilities_are_declared(name):
    cls = model_class(name)
    assert isinstance(cls.supports_quantiles, bool) and isinstance(cls.refits_per_origin, bool)


def test_unknown_model_and_unknown_setting():
    with pytest.raises(VolcastError, match="unknown model 'prophet'; choose one of lstm"):
        create("prophet")
    with pytest.raises(VolcastError, match=r"setting 'seasonal_naive_24\.lookback'"):
        create("seasonal_naive_24", {"lookback": 3})
