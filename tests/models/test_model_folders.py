"""A saved model folder is untrusted input: each attack on a copy of a trained tiny model is
refused in one line before anything is allocated from it, and nothing empty or infinite is ever
forecast."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import safetensors
import safetensors.torch
import torch
from safetensors.torch import load_file, save_file

from volcast.errors import VolcastError
from volcast.models import create, load
from volcast.models.base import METADATA_KEY
from volcast.models.folder import MAX_MANIFEST_BYTES
from volcast.models.lstm import network

from .conftest import TINY, TINY_TRANSFORMER

SAVED_BY_0_1_0 = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "lstm-0.1.0"


@pytest.fixture(scope="module")
def saved(recent, tmp_path_factory) -> dict[str, Path]:
    """A trained tiny LSTM (two members), ensemble and transformer (with a covariate), each
    saved once."""
    folders = {}
    for name, settings in (("lstm", TINY | {"epochs": 1, "members": 2}),
                           ("ensemble", TINY | {"epochs": 1, "gbm_rounds": 11}),
                           ("transformer", TINY_TRANSFORMER | {"epochs": 1,
                                                               "covariates": ["vix"]})):
        model = create(name, settings)
        model.fit(recent.assign(vix=20.0))
        folders[name] = tmp_path_factory.mktemp(name) / "model"
        model.save(folders[name])
    return folders


class Reads:
    """A safetensors file opened through the real reader, counting the tensors read."""

    def __init__(self, handle, counts: list[str]) -> None:
        self.handle, self.counts = handle, counts

    def __enter__(self):
        self.handle.__enter__()
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)

    def get_tensor(self, name):
        self.counts.append(name)
        return self.handle.get_tensor(name)

    def __getattr__(self, name):
        return getattr(self.handle, name)


@pytest.fixture
def built(monkeypatch) -> list[object]:
    """Every network built (off the meta device) and every tensor read from now on: none may
    be, for a folder that is refused."""
    made: list[object] = []
    real_init, real_open = network.QuantileNet.__init__, safetensors.safe_open

    def init(self, cfg):
        if torch.get_default_device().type != "meta":
            made.append(cfg)
        real_init(self, cfg)

    monkeypatch.setattr(network.QuantileNet, "__init__", init)
    monkeypatch.setattr(safetensors, "safe_open", lambda *a, **k: Reads(real_open(*a, **k),
                                                                         made))
    monkeypatch.setattr(safetensors.torch, "load_file", lambda *a, **k: made.append(a) or {})
    return made


def copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def edit(folder: Path, change) -> Path:
    path = folder / "model.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return folder


def refused(folder: Path, fragment: str) -> str:
    with pytest.raises(VolcastError, match=fragment) as info:
        load(folder)
    assert "\n" not in str(info.value)
    return str(info.value)


def set_in(*path_and_value):
    *path, value = path_and_value

    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize(("change", "fragment"), [
    (set_in("state", "net", "layers", 1_000_000), "state.net.layers is 1000000; the settings "
                                                  "ask for 1"),
    (set_in("state", "net", "hidden", 8000), "state.net.hidden is 8000; the settings ask for 8"),
    (set_in("settings", "hidden_size", 8000), "setting 'lstm.hidden_size'"),
    (set_in("settings", "layers", 4), "state.net.layers is 1; the settings ask for 4"),
    (set_in("state", "net", "n_past", 7.0), "state.net.n_past is 7.0"),
    (set_in("state", "members", 1_000_000), "state.members is 1000000; the settings ask for 2"),
    (set_in("settings", "quantiles", [q / 200 for q in range(1, 200)]), "lstm.quantiles"),
    (set_in("state", "scales", 0, 2, 1e300), r"state.scales: 1e\+300 for quantile 0.9"),
    (set_in("state", "scales", 0, 0, float("nan")), "state.scales: NaN for quantile 0.1"),
    (set_in("state", "scales", 0, 1, 2.0), "1 for the median"),
    (set_in("state", "scales", [[1.0]]), "one list per member"),
    (set_in("state", "series_scales", [1.0]), r"state.series_scales must be a table of at "
                                              r"most 81 series' scales, not \[1.0\]"),
    (lambda m: m["state"]["series_scales"].update(dict.fromkeys(map(str, range(81)), 0)),
     "state.series_scales must be a table of at most 81 series' scales"),
    (set_in("state", "series_scales", {"x" * 201: []}), "state.series_scales names a series of "
                                                        "201 characters; at most 200"),
    (set_in("state", "series_scales", "btc", 0, 2, 1e300),
     r'state.series_scales\["btc"\]: 1e\+300 for quantile 0.9'),
    (set_in("state", "series_scales", "btc", 1, 0, float("nan")),
     r'state.series_scales\["btc"\]: NaN for quantile 0.1'),
    (set_in("state", "series_scales", "btc", 0, 1, 0.5), "1 for the median"),
    (set_in("state", "series_scales", "btc", [[1.0, 1.0, 1.0]]),
     r'state.series_scales\["btc"\] must hold one list per member \(2\)'),
    (set_in("state", "has_trades", "yes"), "state.has_trades"),
    (set_in("state", "extra", 1), "state.extra is not a field of the LSTM's state"),
    (set_in("state", "history", "long"), "state.history must be a list"),
    (set_in("model", ["lstm"]), "'model' must be a string"),
    (set_in("format_version", "1"), "format_version must be a whole number"),
    (set_in("settings", "lookback", 24), "model.json says lookback = 24, but the weights were "
                                         "saved with 48"),
])
def test_an_edited_lstm_manifest_is_refused_before_any_allocation(saved, tmp_path, built,
                                                                   change, fragment):
    folder = edit(copy(saved["lstm"], tmp_path), change)
    refused(folder, fragment)
    assert built == []  # no network built, no tensor read


@pytest.mark.parametrize(("change", "fragment"), [
    (set_in("state", "net", "d_model", 100_000), "state.net.d_model is 100000; the settings "
                                                 "ask for 16"),
    (set_in("settings", "patch_len", 24), "state.net.patch_len is 12; the settings ask for 24"),
    (set_in("state", "net", "lookback", 4_800_000), "state.net.lookback is 4800000"),
    (set_in("settings", "heads", 3), "setting 'transformer.heads'"),
    (set_in("settings", "covariates", []), "state.net.n_past is 8; the settings ask for 7"),
    (set_in("settings", "covariates", ["fear_greed"]),
     r'model.json says covariates = \["fear_greed"\], but the weights were saved with \["vix"\]'),
    (set_in("state", "extra", 1), "state.extra is not a field of the transformer's state"),
])
def test_an_edited_transformer_manifest_is_refused_before_any_allocation(saved, tmp_path, built,
                                                                         change, fragment):
    refused(edit(copy(saved["transformer"], tmp_path), change), fragment)
    assert built == []


def test_a_folder_saved_before_per_series_scales_calibrates_with_the_pooled_ones(saved,
                                                                                tmp_path,
                                                                                recent):
    """As the previous volcast wrote it: no per-series scales in the state or the weights'
    metadata."""
    folder = edit(copy(saved["lstm"], tmp_path), lambda m: m["state"].pop("series_scales"))
    path = str(folder / "weights.safetensors")
    with safetensors.safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    saved_with = json.loads(metadata[METADATA_KEY])
    del saved_with["series_scales"]
    save_file(load_file(path), path, metadata=metadata | {METADATA_KEY: json.dumps(saved_with)})
    older, current = load(folder), load(saved["lstm"])
    assert older.series_scales == {} and "btc" in current.series_scales
    current.s.calibration = "pooled"
    pd.testing.assert_frame_equal(older.predict(recent, 6), current.predict(recent, 6),
                                  check_exact=True)


def test_a_refused_manifest_names_its_file(saved, tmp_path):
    folder = edit(copy(saved["lstm"], tmp_path), set_in("state", "net", "hidden", 8000))
    assert refused(folder, "hidden").startswith(str(folder / "model.json"))


def rewrite_weights(folder: Path, change, metadata: bool = True) -> Path:
    """Change the weights, keeping the metadata they were saved with (or dropping it, as
    volcast 0.1.0 wrote none)."""
    path = str(folder / "weights.safetensors")
    with safetensors.safe_open(path, framework="pt") as f:
        kept = f.metadata() if metadata else None
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata=kept)
    return folder


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda t: t.update({"0.head.3.weight": torch.zeros(3, 9)}),
     r"tensor '0.head.3.weight' is F32 \(3, 9\); the manifest needs F32 \(3, 8\)"),
    (lambda t: t.update({"0.head.3.weight": torch.zeros(3, 8, dtype=torch.float64)}),
     r"tensor '0.head.3.weight' is F64"),
    (lambda t: t.pop("1.step.weight"), "lacks '1.step.weight'"),
    (lambda t: t.update({"2.step.weight": torch.zeros(6, 16)}), "unexpected '2.step.weight'"),
])
def test_weights_that_disagree_with_the_manifest_are_refused_unread(saved, tmp_path, built,
                                                                    change, fragment):
    refused(rewrite_weights(copy(saved["lstm"], tmp_path), change), fragment)
    assert built == []


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(saved, tmp_path, value):
    folder = rewrite_weights(copy(saved["lstm"], tmp_path),
                             lambda t: t["1.encoder.weight_hh_l0"].view(-1)[5].fill_(value))
    refused(folder, "tensor '1.encoder.weight_hh_l0' holds NaN or infinite values")


def test_edited_metadata_or_a_missing_weights_file_is_refused(saved, tmp_path):
    folder = copy(saved["lstm"], tmp_path)
    path = str(folder / "weights.safetensors")
    save_file(load_file(path), path, metadata={"volcast": "{not json"})
    refused(folder, "damaged metadata")
    (folder / "weights.safetensors").unlink()
    refused(folder, "weights.safetensors is missing")


def test_huge_finite_weights_never_forecast_infinity(saved, tmp_path, recent):
    folder = rewrite_weights(copy(saved["lstm"], tmp_path),
                             lambda t: t["0.head.3.bias"].fill_(1e30))
    with pytest.raises(VolcastError, match="forecast an infinite or undefined volume"):
        load(folder).predict(recent, 6)


@pytest.mark.parametrize(("change", "fragment"), [
    (set_in("state", "weight", 1e300), r"state.weight is 1e\+300, not a blend weight"),
    (set_in("state", "weight", float("nan")), "state.weight is NaN"),
    (set_in("state", "weight", True), "state.weight is true"),
    (set_in("state", "gbm", "x" * (11 * 31 * 256 + 1)), "state.gbm is 87,297 characters, not "
                                                        "a LightGBM model of at most 11 trees"),
    (set_in("state", "gbm", 3), "state.gbm is 3"),
    (lambda m: m["state"].update(gbm=m["state"]["gbm"].replace("leaf_value=",
                                                                "leaf_value=nan ", 1)),
     "state.gbm holds NaN"),
    (lambda m: m["state"].update(gbm=m["state"]["gbm"].replace("leaf_value=",
                                                                "leaf_value=1e999 ", 1)),
     "state.gbm holds NaN"),
    (lambda m: m["state"].update(gbm=m["state"]["gbm"].replace("Tree=0", "Tree=00")),
     "gbm_sha256"),
])
def test_an_edited_ensemble_manifest_is_refused(saved, tmp_path, built, change, fragment):
    refused(edit(copy(saved["ensemble"], tmp_path), change), fragment)
    assert built == []


def test_the_ensemble_refuses_a_booster_beyond_its_settings(saved, tmp_path):
    folder = edit(copy(saved["ensemble"], tmp_path), set_in("settings", "gbm_rounds", 10))
    refused(folder, "LightGBM model has 11 trees over 19 features; its settings allow 10 trees")


def test_an_unreadable_booster_is_refused(saved, tmp_path):
    folder = rewrite_weights(copy(saved["ensemble"], tmp_path), lambda t: None, metadata=False)
    refused(edit(folder, set_in("state", "gbm", "not a model")), "saved ensemble is damaged")


def test_a_manifest_larger_than_the_bound_is_not_read(saved, tmp_path):
    folder = copy(saved["lstm"], tmp_path)
    with (folder / "model.json").open("r+b") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: no disk, no memory
    refused(folder, "larger than 256 MiB")


def test_a_stateless_model_refuses_state_and_weights(tmp_path):
    create("mstl").save(tmp_path / "m")
    assert load(tmp_path / "m").name == "mstl"
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"")
    refused(tmp_path / "m", "keeps no weights")
    (tmp_path / "m" / "weights.safetensors").unlink()
    edit(tmp_path / "m", set_in("state", "trend", [1.0]))
    refused(tmp_path / "m", "carries state")


def test_the_0_1_0_fixture_still_passes_every_check(built):
    model = load(SAVED_BY_0_1_0)  # its weights carry no metadata: shapes and values checked
    assert len(model.nets) == 1 and len(built) == 1 + len(model.nets[0].state_dict())
    assert model.series_scales == {}  # every series calibrated with the pooled scales
