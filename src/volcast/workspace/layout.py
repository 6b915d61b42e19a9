"""Where trained models and stored backtests live, so that every entry point finds what any
other one made: ``MODELS/EXCHANGE/SYMBOL/TIMEFRAME/MODEL/`` holds a trained model
(``model.json`` + ``weights.safetensors``) and its latest backtest (``backtest.csv`` +
``backtest.scores.json``); symbols are written with ``/`` and ``:`` as ``_``.

A global model trained on several series is saved once per series it learned from: each folder
is complete on its own (a copy is a few hundred kB), so deleting one series' folder never
breaks another's.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from volcast.data.store import SeriesKey
from volcast.evaluation.backtest import BacktestResult
from volcast.evaluation.predictions import read_predictions, scores_path, write_predictions
from volcast.models.base import MANIFEST, WEIGHTS, Forecaster

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

    def save_model(self, keys: list[SeriesKey], forecaster: Forecaster) -> list[Path]:
        """The model into the folder of every series it learned from, beside the series'
        stored backtest (kept). Written aside, then each file renamed into place, the manifest
        last, so a reader never loads new weights under an old manifest's version."""
        folders = []
        for key in keys:
            folder = self.folder(key, forecaster.name)
            staging = folder.with_name(f".{folder.name}.saving")
            shutil.rmtree(staging, ignore_errors=True)
            forecaster.save(staging)
            folder.mkdir(parents=True, exist_ok=True)
            if not (staging / WEIGHTS).exists():  # a model without weights leaves none
                (folder / WEIGHTS).unlink(missing_ok=True)
            for name in (WEIGHTS, MANIFEST):
                if (staging / name).exists():
                    (staging / name).replace(folder / name)
            shutil.rmtree(staging)
            folders.append(folder)
        return folders

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
