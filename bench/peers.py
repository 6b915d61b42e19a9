"""What a user would pick instead of volcast, under the same protocol and scorer (issue 7):
neuralforecast's LSTM and NHITS (MQLoss 80%, robust scaler, 1000 steps), statsforecast's MSTL,
and mlforecast with LightGBM (L1 on log1p volume, lags, rolling means, calendar features,
conformal 80% intervals).

    .venv/bin/pip install -r bench/requirements-peers.txt    # bench only
    .venv/bin/python bench/peers.py [--data ../shared/data] [--peers lgbm nf_lstm ...]

Each peer is wrapped as a volcast Forecaster, so volcast's own backtest (the protocol's origins
and rows) and scorer judge it; each runs in its own process for its own peak memory. Peers are
trained on each tested pair alone, as their quick-start guides do.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from forecast import isolated, load, print_table, row, with_peak
from forecast import run as run_ours

from volcast.data.frames import on_grid, split_series, step_ms
from volcast.evaluation.backtest import backtest
from volcast.models import REFERENCE_MODELS
from volcast.models.base import FORECAST_COLUMNS, Forecaster, ModelSettings

H, SEASON, LEVEL = 24, 24, 80


def nixtla_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Our long frame on its grid (gaps interpolated) with datetime ds, as Nixtla tools want."""
    parts = []
    for uid, series in split_series(long).items():
        grid = on_grid(series, step_ms(series["ds"]))
        parts.append(pd.DataFrame({"unique_id": uid, "ds": pd.to_datetime(grid["ds"], unit="ms"),
                                   "y": grid["y"].astype(float)}))
    return pd.concat(parts, ignore_index=True)


def back_to_ours(frame: pd.DataFrame, median: str, low: str, high: str) -> pd.DataFrame:
    out = pd.DataFrame({"unique_id": frame["unique_id"].to_numpy(),
                        "ds": frame["ds"].astype("datetime64[ms]").astype("int64").to_numpy(),
                        "q10": frame[low].to_numpy(), "q50": frame[median].to_numpy(),
                        "q90": frame[high].to_numpy()})
    return out[FORECAST_COLUMNS]


class Peer(Forecaster):
    Settings = ModelSettings
    supports_quantiles = True

    def save(self, directory: Path) -> None:
        raise NotImplementedError("peers are benchmarked, not saved")


class NeuralPeer(Peer):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.name, self.kind = f"neuralforecast_{kind.lower()}", kind

    def fit(self, long: pd.DataFrame, progress: Any = None) -> None:
        import logging

        from neuralforecast import NeuralForecast
        from neuralforecast.losses.pytorch import MQLoss
        from neuralforecast.models import LSTM, NHITS

        logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
        cls = {"LSTM": LSTM, "NHITS": NHITS}[self.kind]
        model = cls(h=H, input_size=7 * SEASON, loss=MQLoss(level=[LEVEL]), scaler_type="robust",
                    max_steps=1000, random_seed=0, enable_progress_bar=False,
                    enable_model_summary=False, logger=False)
        self.nf = NeuralForecast(models=[model], freq="h")
        self.nf.fit(nixtla_frame(long))

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        out = self.nf.predict(df=nixtla_frame(long)).reset_index()
        return back_to_ours(out, f"{self.kind}-median", f"{self.kind}-lo-{LEVEL}",
                            f"{self.kind}-hi-{LEVEL}")


class MSTLPeer(Peer):
    name = "statsforecast_mstl"
    refits_per_origin = True

    def fit(self, long: pd.DataFrame, progress: Any = None) -> None:
        """statsforecast refits MSTL on the history it is given at every origin (forward)."""

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        from statsforecast import StatsForecast
        from statsforecast.models import MSTL

        frame = nixtla_frame(long).groupby("unique_id").tail(56 * SEASON)
        sf = StatsForecast(models=[MSTL(season_length=[SEASON, 7 * SEASON])], freq="h")
        out = sf.forecast(df=frame, h=horizon, level=[LEVEL]).reset_index()
        return back_to_ours(out, "MSTL", f"MSTL-lo-{LEVEL}", f"MSTL-hi-{LEVEL}")


class LightGBMPeer(Peer):
    name = "mlforecast_lightgbm"

    def fit(self, long: pd.DataFrame, progress: Any = None) -> None:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import GlobalSklearnTransformer
        from mlforecast.utils import PredictionIntervals
        from sklearn.preprocessing import FunctionTransformer

        self.mlf = MLForecast(
            models={"lgbm": lgb.LGBMRegressor(objective="l1", random_state=0, verbosity=-1)},
            freq="h", lags=[1, 2, 3, 6, 12, 23, 24, 25, 48, 72, 167, 168],
            lag_transforms={1: [RollingMean(window_size=24), RollingMean(window_size=168)]},
            date_features=["hour", "dayofweek"],
            target_transforms=[GlobalSklearnTransformer(
                FunctionTransformer(func=np.log1p, inverse_func=np.expm1))])
        self.mlf.fit(nixtla_frame(long), prediction_intervals=PredictionIntervals(
            n_windows=3, h=H))

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        out = self.mlf.predict(h=horizon, new_df=nixtla_frame(long), level=[LEVEL])
        return back_to_ours(out, "lgbm", f"lgbm-lo-{LEVEL}", f"lgbm-hi-{LEVEL}")


PEERS = {"nf_lstm": lambda: NeuralPeer("LSTM"), "nf_nhits": lambda: NeuralPeer("NHITS"),
         "sf_mstl": MSTLPeer, "lgbm": LightGBMPeer}


def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    return with_peak([row(pair, backtest(PEERS[job["peer"]](), load(Path(job["data"]), pair),
                                         test_days=job["test_days"]))
                      for pair in job["pairs"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--pairs", nargs="+", default=["BTC", "ETH"])
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--test-days", type=float, default=60,
                        help="the protocol's test period before the files' end")
    parser.add_argument("--json", type=Path, help="also write all figures here")
    args = parser.parse_args()
    began = time.perf_counter()
    rows = isolated(run, [{"data": str(args.data), "pairs": args.pairs, "peer": p,
                           "test_days": args.test_days} for p in args.peers])
    rows += isolated(run_ours, [{"data": str(args.data), "pairs": args.pairs, "also": [],
                                 "model": name, "settings": {}, "global": False,
                                 "test_days": args.test_days}
                                for name in REFERENCE_MODELS])  # the 'vs best ref' column
    print_table(rows, {}, args.test_days, time.perf_counter() - began)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
