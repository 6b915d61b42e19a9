"""Forecast benchmark: the protocol on the shared Binance BTC/USDT and ETH/USDT hourly files, for
the LSTM, the ensemble, the transformer, MSTL and every reference model (issue 7's targets).

    .venv/bin/python bench/forecast.py [--data ../shared/data] [--lstm '{"epochs": 30}']
    .venv/bin/python bench/forecast.py --test-days 365 --pairs BTC ETH BNB SOL DOGE
        # the longer evaluation (issue 16): 365 daily origins ending 2024-07-31, one global
        # model over the five pairs

Each model runs in its own process, so its peak memory is its own. The LSTM is one global
model trained once on the training part (before the common cutoff) of every pair named by
--pairs and --also, then tested on each of --pairs without retraining.
"""

import argparse
import json
import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from volcast.data.formats import read_candles
from volcast.data.frames import to_long
from volcast.evaluation.backtest import BacktestResult, backtest
from volcast.models import REFERENCE_MODELS, create
from volcast.models.runtime import configure_process


def load(data: Path, pair: str) -> pd.DataFrame:
    return to_long(read_candles(data / "binance" / f"{pair}_USDT-1h.csv"), f"{pair}/USDT")


def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One model on every tested pair, in this (child) process: its entry point."""
    data, pairs, also = Path(job["data"]), job["pairs"], job["also"]
    longs = {p: load(data, p) for p in dict.fromkeys(pairs + also)}
    model = create(job["model"], job["settings"])
    if model.needs_fitting:  # not for the others: importing torch would inflate their peak
        configure_process()
    rows = []
    for number, pair in enumerate(pairs):
        trains_here = number == 0 or not job["global"]
        extra = None
        if job["global"] and trains_here:
            extra = pd.concat([v for k, v in longs.items() if k != pair], ignore_index=True)
        rows.append(row(pair, backtest(model, longs[pair], extra=extra, fit=trains_here,
                                       test_days=job["test_days"])))
    return with_peak(rows)


def row(pair: str, result: BacktestResult) -> dict[str, Any]:
    """One table row: the protocol's scores and the cost of one model on one pair."""
    origins = result.predictions["origin"].nunique()
    return {"pair": pair, "model": result.model, "scores": result.scores,
            "train_s": result.train_s, "predict_ms": 1000 * result.predict_s / origins}


def with_peak(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [r | {"peak_mb": peak} for r in rows]


def isolated(run_job: Callable[[dict[str, Any]], list[dict[str, Any]]],
             jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each job in a fresh process, so each model's peak memory is its own."""
    rows = []
    context = mp.get_context("spawn")
    for job in jobs:
        with context.Pool(1) as pool:
            rows += pool.apply(run_job, (job,))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--pairs", nargs="+", default=["BTC", "ETH"])
    parser.add_argument("--also", nargs="*", default=[],
                        help="pairs the global LSTM also learns from (never tested)")
    parser.add_argument("--lstm", type=json.loads, default={}, help="LSTM settings as JSON")
    parser.add_argument("--transformer", type=json.loads, default={},
                        help="transformer settings as JSON")
    parser.add_argument("--models", nargs="+",
                        default=["lstm", "ensemble", "transformer", "mstl", *REFERENCE_MODELS])
    parser.add_argument("--test-days", type=float, default=60,
                        help="the protocol's test period before the files' end")
    parser.add_argument("--json", type=Path, help="also write all figures here")
    args = parser.parse_args()

    settings = {"lstm": args.lstm, "ensemble": args.lstm, "transformer": args.transformer}
    jobs = [{"data": str(args.data), "pairs": args.pairs, "also": args.also if m in settings
             else [], "model": m, "settings": settings.get(m, {}), "global": m in settings,
             "test_days": args.test_days} for m in args.models]
    began = time.perf_counter()
    rows = isolated(run, jobs)
    print_table(rows, settings, args.test_days, time.perf_counter() - began)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def print_table(rows: list[dict[str, Any]], settings: dict[str, dict[str, Any]],
                test_days: float, wall: float) -> None:
    table = Table(title=f"forecast benchmark, protocol (H=24, last {test_days:g} days); "
                        f"settings {json.dumps(settings)}; {wall:.0f} s in all")
    for column in ("pair", "model", "MAE", "vs best ref", "MASE", "sMAPE %", "MAE log1p",
                   "pinball", "coverage", "MAE step 1/6/12/24", "train s", "ms/forecast",
                   "peak MB"):
        table.add_column(column, justify="left" if column in ("pair", "model") else "right")
    for pair in dict.fromkeys(r["pair"] for r in rows):
        mine = sorted((r for r in rows if r["pair"] == pair),
                      key=lambda r: r["scores"]["overall"]["mae"])
        best = min((r["scores"]["overall"]["mae"] for r in mine
                    if r["model"] in REFERENCE_MODELS), default=float("nan"))
        for r in mine:
            s = r["scores"]
            o = s["overall"]
            steps = "/".join(f"{s[f'step_{k}']['mae']:,.0f}" for k in (1, 6, 12, 24))
            gap = "-" if best != best else f"{o['mae'] / best - 1:+.1%}"  # NaN: no reference
            table.add_row(pair, r["model"], f"{o['mae']:,.1f}", gap,
                          f"{o['mase']:.3f}", f"{o['smape']:.1f}", f"{o['mae_log1p']:.4f}",
                          "-" if o["pinball"] != o["pinball"] else f"{o['pinball']:,.1f}",
                          "-" if o["coverage"] != o["coverage"] else f"{o['coverage']:.3f}",
                          steps, f"{r['train_s']:.1f}", f"{r['predict_ms']:.1f}",
                          f"{r['peak_mb']:,.0f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
