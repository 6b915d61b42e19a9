"""The transformer: it learns, it is reproducible, it round-trips, its quantiles are ordered and
it refuses bad settings; everything but its network is the LSTM's (checked in
test_conformance.py and test_model_folders.py)."""

import json

import numpy as np
import pytest
import torch

from volcast.errors import VolcastError
from volcast.models import create, load
from volcast.models.lstm.settings import NeuralSettings
from volcast.models.transformer.network import TransformerConfig, VolumeTransformer

from .conftest import TINY_TRANSFORMER


@pytest.fixture(scope="module")
def trained(recent):
    model = create("transformer", TINY_TRANSFORMER | {"epochs": 6})
    model.fit(recent)
    return model


def test_a_tiny_transformer_learns(trained):
    losses = [h["train"] for h in trained.history]
    assert losses[-1] < losses[0]


def test_same_seed_same_forecast_other_seed_another(trained, recent):
    again = create("transformer", TINY_TRANSFORMER | {"epochs": 6})
    again.fit(recent)
    assert again.predict(recent, 6).equals(trained.predict(recent, 6))
    other = create("transformer", TINY_TRANSFORMER | {"epochs": 6, "seed": 1})
    other.fit(recent)
    assert not other.predict(recent, 6).equals(trained.predict(recent, 6))


def test_save_load_round_trips_to_identical_forecasts(trained, recent, tmp_path):
    trained.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["model"] == "transformer"
    assert manifest["state"]["net"] | {"quantiles": None} == {
        "n_past": 7, "lookback": 48, "horizon": 6, "quantiles": None, "patch_len": 12,
        "d_model": 16, "heads": 2, "layers": 1, "dropout": 0.1}
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json",
                                                                  "weights.safetensors"]
    assert load(tmp_path / "m").predict(recent, 6).equals(trained.predict(recent, 6))


def test_quantiles_are_ordered_for_any_levels(recent):
    model = create("transformer", TINY_TRANSFORMER | {"epochs": 1,
                                                      "quantiles": [0.05, 0.25, 0.5, 0.75,
                                                                    0.95]})
    model.fit(recent)
    levels = model.predict(recent, 6)[["q5", "q25", "q50", "q75", "q95"]].to_numpy()
    assert (np.diff(levels, axis=1) > 0).all()


def test_the_network_reads_patches_and_the_future_inputs():
    """Shapes, and what the output depends on: the newest patch and each step's future
    inputs (its query), not only a pooled summary."""
    cfg = TransformerConfig(n_past=5, lookback=48, horizon=6, quantiles=[0.1, 0.5, 0.9],
                            patch_len=12, d_model=16, heads=2, layers=2, dropout=0.0)
    torch.manual_seed(0)
    net = VolumeTransformer(cfg).eval()
    past, future = torch.randn(3, 48, 5), torch.randn(3, 6, 9)
    out = net(past, future)
    assert out.shape == (3, 6, 3) and bool((out[..., 0] < out[..., 1]).all())
    newest = past.clone()
    newest[:, -1] += 1
    assert not torch.equal(net(newest, future), out)
    one_step = future.clone()
    one_step[:, 2, :4] += 1  # step 3's calendar only
    changed = (net(past, one_step) != out).any(dim=-1)  # [B, H]
    assert changed[:, 2].all() and not changed[:, [0, 1, 3, 4, 5]].any()


def test_the_transformer_shares_the_neural_settings():
    settings = create("transformer").settings
    assert isinstance(settings, NeuralSettings) and not hasattr(settings, "hidden_size")
    assert settings.lookback % settings.patch_len == 0


@pytest.mark.parametrize(("settings", "message"), [
    ({"patch_len": 25}, "transformer.patch_len': .*lookback \\(336\\) must be a whole number"),
    ({"lookback": 48, "patch_len": 36}, "transformer.patch_len"),
    ({"heads": 3}, "d_model \\(32\\) must be a multiple of the heads \\(3\\)"),
    ({"d_model": 4}, "transformer.d_model"),
    ({"layers": 7}, "transformer.layers"),
    ({"hidden_size": 64}, "transformer.hidden_size"),
    ({"covariates": ["close"]}, "'close' is a column of the candles"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(VolcastError, match=message) as info:
        create("transformer", settings)
    assert "\n" not in str(info.value)


def test_device_cuda_without_a_gpu_is_refused(recent):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(VolcastError, match="device 'cuda' asked for"):
        create("transformer", TINY_TRANSFORMER | {"device": "cuda"}).fit(recent)
