"""Forecasting models behind one API (``base.Forecaster``) and one registry, by name.

Models are imported lazily, so torch loads only when a torch model is used. Names:
- ``lstm``: the core, a probabilistic PyTorch LSTM (``lstm.py`` network, ``train.py`` loop);
- ``ensemble``: the LSTM with a LightGBM second opinion on the median (``ensemble.py``);
- ``mstl``: statsforecast's MSTL with intervals;
- reference points of the protocol: ``seasonal_naive_24``, ``seasonal_naive_168``,
  ``hour_of_day_median_7d``, ``hour_of_day_median_28d``, ``hour_of_week_median_4w``.

Public: ``create``, ``load``, ``model_class``, ``MODEL_NAMES``, ``REFERENCE_MODELS``.
"""

import importlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from volcast.config import describe
from volcast.errors import VolcastError
from volcast.models.base import Forecaster, read_manifest

_REGISTRY = {
    "lstm": "volcast.models.lstm:LSTMForecaster",
    "ensemble": "volcast.models.ensemble:EnsembleForecaster",
    "mstl": "volcast.models.mstl:MSTLForecaster",
    "seasonal_naive_24": "volcast.models.baselines:SeasonalNaive24",
    "seasonal_naive_168": "volcast.models.baselines:SeasonalNaive168",
    "hour_of_day_median_7d": "volcast.models.baselines:HourOfDayMedian7d",
    "hour_of_day_median_28d": "volcast.models.baselines:HourOfDayMedian28d",
    "hour_of_week_median_4w": "volcast.models.baselines:HourOfWeekMedian4w",
}
MODEL_NAMES = list(_REGISTRY)
REFERENCE_MODELS = ["seasonal_naive_24", "seasonal_naive_168", "hour_of_day_median_7d",
                    "hour_of_day_median_28d", "hour_of_week_median_4w"]


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
    """A saved model, on the CPU unless CUDA is asked for; damaged folders fail clearly."""
    manifest = read_manifest(directory)
    model = create(manifest.get("model", "?"), manifest.get("settings"))
    tensors: dict[str, Any] = {}
    if (directory / "weights.safetensors").exists():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(directory / "weights.safetensors"), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise VolcastError(f"{directory}: damaged weights ({exc})") from None
    model.info = manifest.get("training", {})
    model.restore(manifest.get("state", {}), tensors)
    return model
