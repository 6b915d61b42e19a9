"""Where trained models and stored backtests live, so that every entry point finds what any
other one made: ``MODELS/EXCHANGE/SYMBOL/TIMEFRAME/MODEL/`` holds a trained model
(``model.json`` + ``weights.safetensors``: the serving version) and its latest backtest
(``backtest.csv`` + ``backtest.scores.json``); symbols are written with ``/`` and ``:`` as
``_``. ``MODEL/versions/NNNN/`` keeps the last versions of the model (``versions.py``).

A global model trained on several series is saved once per series it learned from: each folder
is complete on its own (a copy is a few hundred kB), so deleting one series' folder never
breaks another's.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from volcast.data.store import SeriesKey
from volcast.errors import NotFound
from volcast.evaluation.backtest import BacktestResult
from volcast.evaluation.predictions import read_predictions, scores_path, write_predictions
from volcast.models.base import MANIFEST, Forecaster
from volcast.workspace.sources import series_id
from volcast.workspace.versions import ModelVersion, Validation, Versions, next_number, now_ms

BACKTEST = "backtest.csv"


def models_path(db: Path, option: Path | None) -> Path:
    """--models, else ``models/`` beside the database: one store, one set of models."""
    return option if option is not None else db.parent / "models"


@dataclass(frozen=True)
class Layout:
    root: Path

    def folder(self, key: SeriesKey, model: str) -> Path:
        safe = key.symbol.replace("/", "_").replace(":", "_")
        return self.root / key.exchange / safe / key.timeframe / model

    def _series_dir(self, key: SeriesKey) -> Path:
        return self.folder(key, "_").parent

    def trained(self, key: SeriesKey) -> list[str]:
        """Names of the models trained for this series (folders with a model.json)."""
        base = self._series_dir(key)
        return sorted(p.parent.name for p in base.glob(f"*/{MANIFEST}")) if base.exists() else []

    def version(self, key: SeriesKey, model: str) -> int | None:
        """The trained model's version (its manifest's mtime); None: not trained."""
        manifest = self.folder(key, model) / MANIFEST
        return manifest.stat().st_mtime_ns if manifest.exists() else None

    def versions(self, key: SeriesKey, model: str) -> Versions:
        """The versions of ``model`` kept for this series (``versions.py``)."""
        return Versions(self.folder(key, model))

    def save_model(self, keys: list[SeriesKey], forecaster: Forecaster) -> list[Path]:
        """The model into the folder of every series it learned from, as a new version that
        serves there (the previous ones kept), beside the series' stored backtest (kept)."""
        self.keep(keys, forecaster)
        return [self.folder(key, forecaster.name) for key in keys]

    def keep(self, keys: list[SeriesKey], forecaster: Forecaster, promote: bool = True,
             score: float | None = None, validation: Validation | None = None) -> int:
        """Keep the model as one new version in every series' folder, under one number past
        every kept one, and with ``promote`` make it the serving model there; returns the
        number. Each version is written aside and renamed into place, and the files at the top
        are replaced manifest last, so a reader never loads new weights under an old
        manifest's version."""
        kept = [self.versions(key, forecaster.name) for key in keys]
        for versions in kept:
            versions.adopt()
        record = ModelVersion(number=next_number(kept), model=forecaster.name,
                              trained_at=now_ms(), series=[series_id(key) for key in keys],
                              promoted=promote, score=score, validation=validation)
        numbers = []
        for versions in kept:
            added = versions.add(forecaster.save, record)
            if promote:
                versions.serve(added.number)
            versions.prune()
            numbers.append(added.number)
        return max(numbers)

    def rollback(self, key: SeriesKey, model: str, to: int | None = None) -> ModelVersion:
        """Version ``to`` (default: the one that served before the serving one) serves this
        series again; its kept files are copied back to the top, as a save would write them."""
        versions = self.versions(key, model)
        what = f"{model} for {key}"
        if not versions.numbers():
            raise NotFound(f"no kept versions of {what}; models trained since volcast keeps "
                           "versions are listed by `volcast models list`")
        chosen = versions.previous(what) if to is None else versions.find(to, what)
        versions.serve(chosen.number)
        return chosen

    def save_backtest(self, key: SeriesKey, result: BacktestResult) -> Path:
        path = self.folder(key, result.model) / BACKTEST
        write_predictions(result, path)
        return path

    def backtests(self, key: SeriesKey, model: str | None = None
                  ) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
        """(model, predictions, scores file) of every stored backtest of this series."""
        base = self._series_dir(key)
        found = []
        for path in sorted(base.glob(f"*/{BACKTEST}")) if base.exists() else []:
            if model is None or path.parent.name == model:
                name, frame = read_predictions(path)
                found.append((name, frame, json.loads(scores_path(path).read_text())))
        return found
