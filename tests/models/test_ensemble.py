"""The ensemble: an LSTM plus a LightGBM median, blended with a weight fitted on validation."""

import json

import numpy as np
import pytest

from volcast.errors import VolcastError
from volcast.models import create, load

from .conftest import TINY


@pytest.fixture(scope="module")
def ensemble(recent):
    model = create("ensemble", TINY | {"gbm_rounds": 30})
    model.fit(recent)
    return model


def test_blend_weight_is_fitted_and_moves_the_lstm_median(ensemble, recent):
    assert 0.0 <= ensemble.weight <= 1.0
    assert ensemble.info["blend_weight_lstm"] == ensemble.weight
    lstm_alone = create("lstm", TINY)
    lstm_alone.fit(recent)
    both, alone = ensemble.predict(recent, 6), lstm_alone.predict(recent, 6)
    # same LSTM (same seed, same data); the interval keeps its width in log space
    width = np.log1p(both["q90"]) - np.log1p(both["q10"])
    np.testing.assert_allclose(width, np.log1p(alone["q90"]) - np.log1p(alone["q10"]),
                               rtol=1e-4)
    if ensemble.weight < 1.0:
        assert not np.allclose(both["q50"], alone["q50"])


def test_gbm_is_saved_as_text_not_pickle(ensemble, tmp_path, recent):
    ensemble.save(tmp_path / "e")
    state = json.loads((tmp_path / "e" / "model.json").read_text())["state"]
    assert state["gbm"].startswith("tree")
    assert load(tmp_path / "e").predict(recent, 6).equals(ensemble.predict(recent, 6))
    state["gbm"] = "not a model"
    manifest = json.loads((tmp_path / "e" / "model.json").read_text())
    manifest["state"] = state
    (tmp_path / "e" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(VolcastError, match="saved ensemble is damaged"):
        load(tmp_path / "e")


def test_ensemble_settings_are_validated():
    with pytest.raises(VolcastError, match=r"ensemble\.gbm_rounds"):
        create("ensemble", {"gbm_rounds": 0})
