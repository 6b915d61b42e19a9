"""Backtest results on disk: the protocol's predictions CSV and a ``.scores.json`` beside it,
written by ``volcast backtest`` and read back by the plots and the report."""

import contextlib
import json
from pathlib import Path

import pandas as pd

from volcast.errors import VolcastError
from volcast.evaluation.backtest import PREDICTION_COLUMNS, BacktestResult


def scores_path(path: Path) -> Path:
    return path.with_suffix(".scores.json")


def write_predictions(result: BacktestResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    result.predictions.to_csv(path, index=False)
    scores_path(path).write_text(json.dumps(
        {"model": result.model, "scores": result.scores, "train_s": result.train_s,
         "predict_s": result.predict_s, "peak_rss_mb": result.peak_rss_mb,
         "cutoff": result.cutoff, "refits_per_origin": result.refits_per_origin,
         "trained_on": result.forecaster.info.get("series")}, indent=2))


def read_predictions(path: Path) -> tuple[str, pd.DataFrame]:
    """(model name, predictions). The name comes from the scores file beside the CSV, else from
    the file name (``preds.lstm.csv`` -> ``lstm``)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise VolcastError(f"cannot read predictions {path}: {error}") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame]
    if missing or frame.empty:
        raise VolcastError(f"{path} is not a backtest predictions file (needs the columns "
                           f"{', '.join(PREDICTION_COLUMNS)} and at least one row)")
    name = path.name.split(".")[-2] if path.name.count(".") >= 2 else path.stem
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # no scores file
        name = str(json.loads(scores_path(path).read_text())["model"])
    return name, frame[PREDICTION_COLUMNS]
