"""The one Forecaster API every model implements (fit / predict / save / load), as darts does.

Models take and return long frames: ``fit(long)`` on one or many series, ``predict(long, h)``
forecasts the ``h`` candles after the last one of each series and returns
``unique_id, ds, q10, q50, q90`` (q10/q90 NaN for point models). A saved model is a folder with
``model.json`` (name, settings, state, training range, versions) and, for neural models,
``weights.safetensors``; never pickle.
"""

import hashlib
import json
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from volcast import __version__
from volcast.errors import VolcastError

FORECAST_COLUMNS = ["unique_id", "ds", "q10", "q50", "q90"]
MANIFEST, WEIGHTS = "model.json", "weights.safetensors"
FORMAT_VERSION = 1
EpochProgress = Callable[[int, int, float, float], None]
"""Called after each training epoch as (epoch, epochs, train loss, validation loss)."""


class ModelSettings(BaseModel):
    """Base of every model's settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def fingerprint(long: pd.DataFrame) -> str:
    """A short hash of the training data, so a model says exactly what it learned from."""
    digest = hashlib.sha256()
    for column in ("unique_id", "ds", "y"):
        digest.update(pd.util.hash_pandas_object(long[column], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def training_info(long: pd.DataFrame) -> dict[str, Any]:
    return {"series": sorted(long["unique_id"].unique().tolist()), "rows": len(long),
            "first_ds": int(long["ds"].min()), "last_ds": int(long["ds"].max()),
            "fingerprint": fingerprint(long)}


class Forecaster(ABC):
    """A forecasting model. Capabilities are class attributes, declared, never guessed."""

    name: ClassVar[str]
    Settings: ClassVar[type[ModelSettings]]
    supports_quantiles: ClassVar[bool] = False
    supports_global: ClassVar[bool] = True
    refits_per_origin: ClassVar[bool] = False
    """True when predict() re-estimates the model on the history it is given (reported)."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or self.Settings()
        self.info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        """Learn from the candles of one or many series (long frame)."""

    @abstractmethod
    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Forecast the ``horizon`` candles after each series' last candle."""

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON-able state, tensors) beyond the settings; none for stateless models."""
        return {}, {}

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        """Inverse of ``state``; a stateless model refuses state it cannot use."""
        if state or tensors:
            raise VolcastError(f"saved {self.name} model carries state this volcast cannot use")

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        state, tensors = self.state()
        manifest = {"format": "volcast-model", "format_version": FORMAT_VERSION,
                    "model": self.name, "settings": self.settings.model_dump(mode="json"),
                    "state": state, "training": self.info, "versions": versions()}
        if tensors:
            from safetensors.torch import save_file

            save_file(tensors, str(directory / WEIGHTS))
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))


def versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {"volcast": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "pandas", "statsforecast"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return found


def read_manifest(directory: Path) -> dict[str, Any]:
    """The saved model's manifest, or a one-line error saying what is wrong with the folder."""
    path = directory / MANIFEST
    if not path.is_file():
        raise VolcastError(f"{directory} is not a volcast model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VolcastError(f"{path} is damaged ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "volcast-model":
        raise VolcastError(f"{path} is not a volcast model manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise VolcastError(f"{directory} was saved by a newer volcast; upgrade to load it")
    return manifest


def empty_quantiles(forecast: pd.DataFrame) -> pd.DataFrame:
    """Point models: q10 and q90 left empty, as the protocol asks."""
    return forecast.assign(q10=np.nan, q90=np.nan)[FORECAST_COLUMNS]
