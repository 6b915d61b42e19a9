"""The protocol's scores of a predictions frame (origin, timestamp, step, y_true, y_pred,
q10, q90): MAE, RMSE, sMAPE %, MASE, MAE of log1p, mean pinball loss and [q10, q90] coverage,
overall and at steps 1, 6, 12 and 24. Rows without an actual value are never scored."""

import numpy as np
import pandas as pd

STEPS = (1, 6, 12, 24)
QUANTILE_COLUMNS = {"q10": 0.1, "y_pred": 0.5, "q90": 0.9}


def naive_scale(train: pd.DataFrame, step: int, lag: int = 24) -> float:
    """In-sample MAE of the 24-step seasonal naive forecast over the training candles
    (pairs whose both ends are in the file)."""
    y = train.set_index("ds")["y"]
    back = y.reindex(y.index - lag * step).to_numpy()
    errors = np.abs(y.to_numpy() - back)
    return float(np.nanmean(errors))


def _pinball(y: np.ndarray, pred: np.ndarray, q: float) -> np.ndarray:
    diff = y - pred
    return np.maximum(q * diff, (q - 1) * diff)


def _scores(rows: pd.DataFrame, scale: float) -> dict[str, float]:
    y, pred = rows["y_true"].to_numpy(float), rows["y_pred"].to_numpy(float)
    error = np.abs(y - pred)
    denominator = np.abs(y) + np.abs(pred)
    smape = np.where(denominator > 0, 2 * error / np.where(denominator > 0, denominator, 1), 0)
    out = {"n": float(len(rows)), "mae": float(error.mean()),
           "rmse": float(np.sqrt(((y - pred) ** 2).mean())), "smape": float(100 * smape.mean()),
           "mase": float(error.mean() / scale) if scale > 0 else float("nan"),
           # a negative volume forecast (raw-scale models can make one) counts as 0 here
           "mae_log1p": float(np.abs(np.log1p(y) - np.log1p(pred.clip(min=0))).mean()),
           "pinball": float("nan"), "coverage": float("nan")}
    if rows["q10"].notna().all() and rows["q90"].notna().all() and len(rows):
        out["pinball"] = float(np.mean([_pinball(y, rows[c].to_numpy(float), q).mean()
                                        for c, q in QUANTILE_COLUMNS.items()]))
        inside = (y >= rows["q10"].to_numpy(float)) & (y <= rows["q90"].to_numpy(float))
        out["coverage"] = float(inside.mean())
    return out


def score(predictions: pd.DataFrame, scale: float) -> dict[str, dict[str, float]]:
    """{"overall": {...}, "step_1": {...}, ...} over the rows that have an actual value."""
    scored = predictions[predictions["y_true"].notna()]
    result = {"overall": _scores(scored, scale)}
    for step in STEPS:
        at = scored[scored["step"] == step]
        if len(at):
            result[f"step_{step}"] = _scores(at, scale)
    return result
