"""Covariate ablation (issue 16): the protocol on Binance BTC/USDT and ETH/USDT hourly with each
covariate off and on, over several seeds, so that a covariate is switched on only where it
helps by more than the seeds disagree.

    .venv/bin/python bench/covariates.py [--data ../shared/data] [--model lstm]
        [--covariates fear_greed vix market_volume] [--seeds 0 1 2] [--epochs 30]

A temporary store holds the five shared Binance 1h pairs (BTC, ETH, BNB, SOL, DOGE: the other
pairs make ``market_volume``) and the shared Fear & Greed and VIX files, each value as it was
public (``data.covariates``). Per (covariate set, seed): one global model trained on BTC and ETH
before the protocol's cutoff (the last 60 days of the files), then tested on each pair. The
table gives the MAE (mean over seeds, and the seeds' spread max - min) and the [q10, q90]
coverage; the verdict per covariate compares its mean MAE with the baseline's on both pairs:
"helps" only when it is lower on both by more than the larger of the two runs' seed spreads.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from volcast.data.covariates import covariate_columns
from volcast.data.covariates.files import read_file
from volcast.data.covariates.table import write
from volcast.data.formats import read_candles
from volcast.data.store import CandleStore, SeriesKey
from volcast.evaluation.backtest import backtest
from volcast.models import create
from volcast.models.runtime import configure_process
from volcast.workspace.sources import read_stored

TESTED = ["BTC", "ETH"]
MARKET = ["BNB", "SOL", "DOGE"]
"""Stored beside the tested pairs: the rest of the market that ``market_volume`` sums."""
SOURCES = {"fear_greed": "fear_greed.csv", "vix": "vix.csv"}


def key(pair: str) -> SeriesKey:
    return SeriesKey("binance", f"{pair}/USDT", "1h")


def build_store(path: Path, data: Path) -> CandleStore:
    """Candles of every pair and the daily covariates, in one store file."""
    store = CandleStore(path)
    for pair in TESTED + MARKET:
        store.upsert(key(pair), read_candles(data / "binance" / f"{pair}_USDT-1h.csv"))
    write(store, [read_file(data / "exogenous" / name, source)
                  for source, name in SOURCES.items()])
    return store


def run(frames: dict[str, pd.DataFrame], model_name: str, covariates: list[str], seed: int,
        epochs: int) -> list[dict[str, object]]:
    """One global model on the tested pairs, then the protocol's test of each."""
    model = create(model_name, {"covariates": covariates, "seed": seed, "epochs": epochs})
    rows = []
    for number, pair in enumerate(TESTED):
        extra = pd.concat([frames[p] for p in TESTED if p != pair], ignore_index=True)
        result = backtest(model, frames[pair], extra=extra if number == 0 else None,
                          fit=number == 0)
        overall = result.scores["overall"]
        rows.append({"pair": pair, "covariates": "+".join(covariates) or "none", "seed": seed,
                     "mae": overall["mae"], "coverage": overall.get("coverage", np.nan),
                     "train_s": result.train_s})
    return rows


def verdicts(table: pd.DataFrame) -> dict[str, str]:
    """Per covariate set: helps (lower mean MAE on both pairs by more than the seed spread),
    hurts (higher on both by more than it) or no clear effect."""
    stats = table.groupby(["covariates", "pair"])["mae"].agg(["mean", "min", "max"])
    stats["spread"] = stats["max"] - stats["min"]
    found = {}
    for name in table["covariates"].unique():
        if name == "none":
            continue
        gains = [(stats.loc[("none", p), "mean"] - stats.loc[(name, p), "mean"],
                  max(stats.loc[("none", p), "spread"], stats.loc[(name, p), "spread"]))
                 for p in TESTED]
        if all(gain > spread for gain, spread in gains):
            found[name] = "helps"
        elif all(-gain > spread for gain, spread in gains):
            found[name] = "hurts"
        else:
            found[name] = "no clear effect"
    return found


def report(console: Console, table: pd.DataFrame, model: str, wall: float) -> None:
    summary = table.groupby(["covariates", "pair"]).agg(
        mae=("mae", "mean"), low=("mae", "min"), high=("mae", "max"),
        coverage=("coverage", "mean"), train_s=("train_s", "mean")).reset_index()
    out = Table(title=f"{model}: protocol MAE with and without covariates "
                      f"({table['seed'].nunique()} seeds, {wall / 60:.1f} min)")
    for column in ("covariates", "pair", "MAE mean", "seed spread", "vs none", "coverage",
                   "train s"):
        out.add_column(column, justify="left" if column in ("covariates", "pair") else "right")
    base = summary[summary["covariates"] == "none"].set_index("pair")["mae"]
    for row in summary.itertuples():
        change = 100 * (row.mae / base[row.pair] - 1)
        out.add_row(row.covariates, row.pair, f"{row.mae:.2f}", f"{row.high - row.low:.2f}",
                    f"{change:+.1f}%", f"{row.coverage:.3f}",
                    f"{row.train_s:.0f}" if row.train_s else "(one model)")
    console.print(out)
    for name, verdict in verdicts(table).items():
        console.print(f"{name}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--covariates", nargs="+",
                        default=["fear_greed", "vix", "market_volume"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--csv", type=Path, help="also write every run's row here")
    args = parser.parse_args()
    configure_process()
    console = Console()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "bench.duckdb", args.data)
        long = read_stored(store, [key(p) for p in TESTED])
        long = covariate_columns(store, args.covariates, long)
        frames = {p: long[long["unique_id"] == f"binance:{p}/USDT:1h"].reset_index(drop=True)
                  for p in TESTED}
    sets = [[], *[[name] for name in args.covariates]]
    rows = []
    with Progress(console=console) as progress:
        task = progress.add_task("runs", total=len(sets) * len(args.seeds))
        for covariates in sets:
            for seed in args.seeds:
                rows += run(frames, args.model, covariates, seed, args.epochs)
                progress.advance(task)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    report(console, table, args.model, time.perf_counter() - began)


if __name__ == "__main__":
    main()
