"""The one Forecaster API every model implements (fit / predict / save / load), as darts does.

Models take and return long frames: ``fit(long)`` on one or many series, ``predict(long, h)``
forecasts the ``h`` candles after the last one of each series and returns
``unique_id, ds, q10, q50, q90`` (q10/q90 NaN for point models). What a model can do is declared
on its class (``needs_fitting``, ``supports_quantiles``, ``max_horizon``, ...), never inferred
from its name; ``tests/models/test_conformance.py`` checks every declaration against behaviour.
A saved model is a folder with ``model.json`` (name, settings, state, training range, versions)
and, for neural models, ``weights.safetensors``; never pickle.
"""

import hashlib
import json
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from volcast import __version__
from volcast.data.frames import step_ms
from volcast.errors import VolcastError

FORECAST_COLUMNS = ["unique_id", "ds", "q10", "q50", "q90"]
MANIFEST, WEIGHTS = "model.json", "weights.safetensors"
FORMAT_VERSION = 1
METADATA_KEY = "volcast"
"""The weights file's metadata entry: JSON of ``Forecaster.weights_metadata`` (see folder.py)."""
EpochProgress = Callable[[int, int, float, float], None]
"""Called by ``fit`` after each training epoch as (epoch, total, train loss, validation loss).

Over one ``fit`` (every phase and every member together):
- ``epoch`` counts the epochs run so far: 1, 2, 3, ..., never skipping or repeating one;
- ``total`` is the most epochs this fit can take, those done included: it starts at the
  settings' maximum and only shrinks, when early stopping settles a phase's length (and with it
  the refit's), so ``1 <= epoch <= total``, ``epoch / total`` never decreases, and the last call
  has ``epoch == total``: a progress bar must take ``total`` from every call, not the first;
- the validation loss is the epoch's own, or in a phase that holds nothing out (the LSTM's
  refit) the loss of the early-stopping epoch it repeats.

A progress may also end the fit: see ``StoppableProgress``.
"""


class StoppableProgress(Protocol):
    """An ``EpochProgress`` with ``should_stop()``, which ``fit`` asks before every batch it
    runs (training or validation; for the ensemble's booster, every boosting round). Once it
    returns True, ``fit`` raises ``FitStopped`` before running another: a request to stop
    takes effect within one batch, not at the end of an epoch. The model keeps what it had
    before that fit (a fit's results are only stored when it ends). A plain function (no
    ``should_stop``) never stops a fit. It must be cheap: it is called thousands of times."""

    def __call__(self, epoch: int, total: int, train_loss: float, val_loss: float) -> None: ...

    def should_stop(self) -> bool: ...


class FitStopped(Exception):
    """Raised by ``fit`` when its progress' ``should_stop()`` returned True."""


def stop_check(progress: EpochProgress | None) -> Callable[[], None]:
    """What a fit calls before each batch: raises ``FitStopped`` once ``progress`` asks."""
    should_stop = getattr(progress, "should_stop", None)

    def check() -> None:
        if should_stop is not None and should_stop():
            raise FitStopped
    return check


class ModelSettings(BaseModel):
    """Base of every model's settings: unknown keys are errors, not silently ignored, and so
    are NaN and infinite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    retired: ClassVar[frozenset[str]] = frozenset()
    """Settings older versions saved that this one no longer has: ``models.load`` drops them
    from a saved model's settings (and only there), so old folders keep loading."""


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
    needs_fitting: ClassVar[bool] = True
    """True when the model learns in ``fit`` and cannot ``predict`` before it (or a load);
    False when every forecast is computed from the history it is given (fit does nothing)."""
    is_reference: ClassVar[bool] = False
    """True for the reference points of shared/bench/PROTOCOL.md, the floor every learned model
    must beat: backtests add them for comparison and report against the best of them."""
    supports_quantiles: ClassVar[bool] = False
    """True when q10 < q50 < q90 are forecast; False: a point forecast, q10 and q90 NaN."""
    supports_global: ClassVar[bool] = True
    """True when ``fit`` accepts many series at once (one model learns from all of them);
    False: such a model refuses a frame with more than one series."""
    refits_per_origin: ClassVar[bool] = False
    """True when predict() re-estimates the model on the history it is given, so its forecasts
    depend on that history alone, never on what fit saw (reported by backtests)."""
    supports_exogenous: ClassVar[bool] = False
    """True when named extra columns of the long frame (known drivers) are inputs; False: any
    column beyond the candle's is ignored."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or self.Settings()
        self.info: dict[str, Any] = {}

    @property
    def horizon(self) -> int | None:
        """The number of candles the model was built to forecast (its settings' horizon), or
        None when it has none (callers then use the protocol's 24)."""
        return None

    @property
    def is_fitted(self) -> bool:
        """Whether predict() can run: always for models that need no fitting."""
        return not self.needs_fitting

    @property
    def learns_once(self) -> bool:
        """Trained once for many series at a time (a global model that learns): what a
        backtest of many series fits once and shares, where other models go series by
        series."""
        return self.needs_fitting and self.supports_global

    @property
    def shards(self) -> int:
        """Parts of each training batch that a fit can spread over ranks, data-parallel
        (``models.parallel``); 1: none, it trains in one process."""
        return 1

    def max_horizon(self, step_ms: int) -> int | None:
        """The most candles one predict() can forecast on a timeframe of ``step_ms``
        milliseconds; None: no limit. By default the horizon the model was built for."""
        return self.horizon

    def reach(self, step_ms: int) -> int | None:
        """The newest candles before an origin that a forecast from it reads, on a timeframe
        of ``step_ms``; None: every one (the default). A batch forecast reads only these from
        the store, so it must be exact: a forecast from them equals one from the whole
        series."""
        return None

    def check_request(self, long: pd.DataFrame, horizon: int) -> None:
        """Refuse, in one line, a forecast the model cannot make: not trained yet, or further
        ahead than ``max_horizon`` on some series' timeframe. Every predict() calls it first."""
        if not self.is_fitted:
            raise VolcastError(f"the {self.name} model has not been trained; fit it or load a "
                               "trained one")
        if horizon < 1:
            raise VolcastError(f"the horizon must be at least 1 candle, not {horizon}")
        for uid, ds in long.groupby("unique_id", sort=False)["ds"]:
            most = self.max_horizon(step_ms(ds.sort_values()))
            if most is not None and horizon > most:
                raise VolcastError(f"{self.name} forecasts at most {most} candles ahead on the "
                                   f"timeframe of {uid}, not {horizon}")

    @abstractmethod
    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        """Learn from the candles of one or many series (long frame)."""

    @abstractmethod
    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Forecast the ``horizon`` candles after each series' last candle."""

    def predict_origins(self, long: pd.DataFrame, origins: list[int], horizon: int
                        ) -> pd.DataFrame | None:
        """Optional, for backtests: the ``horizon`` candles from each origin of one series at
        once, each forecast exactly as ``predict`` would make it from the candles before that
        origin alone (``origin`` column first, then ``predict``'s). ``long`` holds the candles
        before the last origin. None (the default): the model has no faster way, and a backtest
        calls ``predict`` once per origin."""
        return None

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON-able state, tensors) beyond the settings; none for stateless models."""
        return {}, {}

    def check_state(self, state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """Check a saved state (an untrusted model.json's) against the settings and sane bounds,
        allocating nothing, and say which float32 tensors of which shapes it needs; one-line
        ``VolcastError`` otherwise. ``models.load`` calls it before reading any weights. A
        stateless model refuses any state."""
        if state:
            raise VolcastError(f"saved {self.name} model carries state this volcast cannot use")
        return {}

    def weights_metadata(self, state: dict[str, Any]) -> dict[str, Any]:
        """What of the manifest the weights depend on beyond their shapes (JSON): written into
        the weights file when saving, compared with the manifest when loading, so that a
        model.json edited apart from its weights is refused."""
        return {}

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        """Inverse of ``state``, given a state that passed ``check_state`` and its tensors."""
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

            save_file(tensors, str(directory / WEIGHTS),
                      metadata={METADATA_KEY: json.dumps(self.weights_metadata(state))})
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


def empty_quantiles(forecast: pd.DataFrame) -> pd.DataFrame:
    """Point models: q10 and q90 left empty, as the protocol asks."""
    return forecast.assign(q10=np.nan, q90=np.nan)[FORECAST_COLUMNS]
