"""Forecasting models behind one API (``base.Forecaster``) and one registry, by name.

Models are imported lazily, so torch loads only when a torch model is used. Names:
- ``lstm``: the core, a probabilistic PyTorch LSTM (the ``lstm`` package);
- ``ensemble``: the LSTM with a LightGBM second opinion on the median (``ensemble.py``);
- ``transformer``: a probabilistic patch transformer on the LSTM's data path (the
  ``transformer`` package);
- ``mstl``: statsforecast's MSTL with intervals;
- reference points of the protocol: ``seasonal_naive_24``, ``seasonal_naive_168``,
  ``hour_of_day_median_7d``, ``hour_of_day_median_28d``, ``hour_of_week_median_4w``.

What each model can do is declared on its class (``base.Forecaster``); ask the class
(``model_class(name).needs_fitting``), never test the name. ``runtime.configure_process`` sets
the process-wide threads and allocator once at program entry.

Public: ``create``, ``load``, ``model_class``, ``MODEL_NAMES``, ``REFERENCE_MODELS`` (the names
whose class declares ``is_reference``, found on first use by importing every model's module;
none of them imports torch or LightGBM before a model is trained, run or loaded).
"""

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from volcast.config import describe
from volcast.errors import VolcastError
from volcast.models.base import Forecaster
from volcast.models.folder import read_manifest, read_weights

_REGISTRY = {
    "lstm": "volcast.models.lstm.forecaster:LSTMForecaster",
    "ensemble": "volcast.models.ensemble:EnsembleForecaster",
    "mstl": "volcast.models.mstl:MSTLForecaster",
    "seasonal_naive_24": "volcast.models.baselines:SeasonalNaive24",
    "seasonal_naive_168": "volcast.models.baselines:SeasonalNaive168",
    "hour_of_day_median_7d": "volcast.models.baselines:HourOfDayMedian7d",
    "hour_of_day_median_28d": "volcast.models.baselines:HourOfDayMedian28d",
    "hour_of_week_median_4w": "volcast.models.baselines:HourOfWeekMedian4w",
    "transformer": "volcast.models.transformer.forecaster:TransformerForecaster",
}
MODEL_NAMES = list(_REGISTRY)


def __getattr__(attribute: str) -> list[str]:
    """``REFERENCE_MODELS``, computed on first use: it imports every model's module."""
    if attribute == "REFERENCE_MODELS":
        return _reference_models()
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


@cache
def _reference_models() -> list[str]:
    return [name for name in MODEL_NAMES if model_class(name).is_reference]


def model_class(name: str) -> type[Forecaster]:
    if name not in _REGISTRY:
        raise VolcastError(f"unknown model '{name}'; choose one of {', '.join(MODEL_NAMES)}")
    module, attribute = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def create(name: str, settings: dict[str, Any] | None = None) -> Forecaster:
    """A new model from its name and settings (validated; one-line errors)."""
    cls = model_class(name)
    try:
        return cls(cls.Settings.model_validate(settings or {}))
    except ValidationError as exc:
        raise VolcastError(describe(exc, f"{name}.")) from None


def load(directory: Path) -> Forecaster:
    """A saved model, on the CPU. The folder is untrusted input: every field is checked before
    anything is allocated from it (``folder.py``), and any problem is one-line
    ``VolcastError``. Settings an older volcast saved and this one retired are dropped here (and
    only here)."""
    manifest = read_manifest(directory)
    name, settings, state = manifest["model"], manifest["settings"], manifest["state"]
    retired = model_class(name).Settings.retired
    try:
        model = create(name, {k: v for k, v in settings.items() if k not in retired})
        shapes = model.check_state(state)
    except VolcastError as exc:
        raise VolcastError(f"{directory / 'model.json'}: {exc}") from None
    tensors = read_weights(directory, shapes, model.weights_metadata(state))
    model.info = manifest["training"]
    model.restore(state, tensors)
    return model
