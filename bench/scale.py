"""Scale benchmark (issue 17): a universe of markets from the simulator, end to end.

    .venv/bin/python bench/scale.py [--markets 200] [--days 365] [--test-days 60]
        [--steps fetch total train backtest forecast] [--workers 1 2]
        [--lstm '{"epochs": 2, "stride": 24, "shards": 2}'] [--no-rate-limit]
    .venv/bin/python bench/scale.py --markets 20 --days 60     # a short run

Starts the simulator serving --markets N markets (bench/universe.py's way), then runs each
step as the volcast command a user would, each in a fresh process (its peak memory is its
own), on one temporary store:

- fetch: `volcast fetch --top N` of --days of hourly candles;
- total: `volcast totals build` (the exchange's total */USDT, then stored as one more series);
- train: `volcast train --model lstm` of every stored series (one global model, saved for each);
- backtest: `volcast backtest --model lstm --all` (every market; `--all` leaves the total out,
  `volcast totals backtest` is its backtest: one global model trained before the cutoff,
  then each market's backtest one piece of work), once per
  --workers count (0: in this process, no Ray; N: a local Ray cluster of N workers);
- forecast: `volcast predict --model lstm --all` from the newest candles, once per count too.

The LSTM's work grows with its training windows (a year of 200 markets is 1.75 M a epoch), so
--lstm bounds it (default: 2 epochs over every 24th window, each batch in 2 shards: with Ray,
two workers train it data-parallel); the table's title says what ran.
`process s` is the child's wall time, Python's start and imports included; `work s` is the
command's own, torch and volcast already imported (a Ray cluster's start is in it). `CPU s` is
the child's user + system time (and, with Ray, that of the cluster's processes, reaped at its
shutdown): on a machine other work shares, wall times are upper bounds and CPU says what the
work cost. `peak MB` is the child's (driver's) peak RSS; `Ray peak MB` the largest of the
cluster's processes (a worker holds torch and a model). Speed-up: a step's work time in
process (or with the fewest workers) over each count's.
"""

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from forecast import isolated
from rich.console import Console
from rich.table import Table
from universe import END, peak_rss_mb

from volcast.data.store import CandleStore, is_total
from volcast.data.timeframe import DAY_MS, format_time
from volcast.simulator.server import spawned

STEPS = ("fetch", "total", "train", "backtest", "forecast")
LSTM = {"epochs": 2, "stride": 24, "shards": 2}
"""What bounds the global LSTM's training at a year of 200 markets (a few minutes on 2
cores); the other settings are the model's defaults."""


def command(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One volcast command in this (child) process: its entry point. Its output goes to
    ``job["log"]``; its cost comes back. A Ray cluster of ``job["workers"]`` is started
    first, on a clock of its own (the command then uses it)."""
    import pandas  # noqa: F401  (imported before the clock starts: `work s` is the command's)
    import torch  # noqa: F401

    from volcast.cli import app
    from volcast.workspace.executor import connect

    with open(job["log"], "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    began = time.perf_counter()
    ray = connect(None, job["workers"]) if job["workers"] else None
    started = time.perf_counter()
    code = app(args=job["args"], prog_name="volcast", standalone_mode=False)
    work = time.perf_counter() - started
    cluster_peak = max((peak_mb(pid) for pid in descendants(os.getpid())), default=0.0)
    if ray is not None:
        ray.shutdown()  # reaps the cluster: its processes' CPU counts below
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [{"code": code or 0, "work_s": work, "ray_start_s": started - began,
             "cpu_s": own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime,
             "peak_mb": own.ru_maxrss / 1024, "ray_peak_mb": cluster_peak}]


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (a Ray cluster's: GCS, raylet, workers), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # ppid is the field after the name, which may hold spaces: split after ')'
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    found, frontier = [], [root]
    while frontier:
        below = [pid for pid, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def peak_mb(pid: int) -> float:
    """A process' peak RSS (``universe.peak_rss_mb``); 0 for one that ended meanwhile."""
    try:
        return peak_rss_mb(pid)
    except (OSError, TypeError):
        return 0.0


def measured(name: str, workers: int | None, series: int, args: list[str],
             folder: Path) -> dict[str, Any]:
    """One step's figures: ``args`` run as a volcast command in a fresh process."""
    log = folder / f"{name}-{workers}.log"
    began = time.perf_counter()
    (row,) = isolated(command, [{"args": args, "log": str(log), "workers": workers}])
    if row["code"]:
        raise RuntimeError(f"{name} failed ({row['code']}): {log.read_text()[-2000:]}")
    row |= {"step": name, "workers": workers, "series": series,
            "process_s": time.perf_counter() - began}
    print(json.dumps(row), flush=True)  # a run cut short keeps the steps it finished
    return row


def ray_flags(workers: int) -> list[str]:
    return ["--ray-workers", str(workers)] if workers else ["--no-ray"]


def stored_symbols(db: Path) -> list[str]:
    with CandleStore(db, read_only=True) as store:
        return list(store.series()["symbol"])


def shared_training_s(models: Path) -> float:
    """How long the backtest's global model trained (each series' stored scores say it)."""
    scores = next(models.glob("binance/*/1h/lstm/backtest.scores.json"))
    return json.loads(scores.read_text())["train_s"]


def run(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """Every step asked for, in order, on one store in ``folder``."""
    db, models, config = folder / "scale.duckdb", folder / "models", folder / "scale.toml"
    config.write_text(f"[fetch]\nrate_limit = {str(not args.no_rate_limit).lower()}\n\n"
                      "[model.lstm]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                                 for key, value in args.lstm.items()))
    store = ["--db", str(db)]
    where = ["-e", "binance", *store, "--models", str(models), "--config", str(config)]
    rows = []
    if "fetch" in args.steps:
        with spawned("--markets", str(args.markets)) as (_, url):
            rows.append(measured("fetch", None, args.markets, [
                "fetch", "-e", "binance", "--top", str(args.markets), "--quote", "USDT",
                "-t", "1h", "--since", format_time(END - args.days * DAY_MS),
                "--exchange-url", url, *store, "--config", str(config)], folder))
        rows[-1]["series"] = len(stored_symbols(db))  # markets with candles in --days
    if "total" in args.steps:
        rows.append(measured("total", None, len(stored_symbols(db)),
                             ["totals", "build", "-e", "binance", "--quote", "USDT", *store],
                             folder))
    symbols = stored_symbols(db)
    if "train" in args.steps:
        chosen = [flag for symbol in symbols for flag in ("-s", symbol)]
        rows.append(measured("train", None, len(symbols),
                             ["train", "--model", "lstm", *where, *chosen], folder))
    markets = [symbol for symbol in symbols if not is_total(symbol)]  # what --all chooses
    for workers in args.workers:
        if "backtest" in args.steps:
            rows.append(measured("backtest", workers, len(markets), [
                "backtest", "--model", "lstm", "--all", "--test-days", str(args.test_days),
                *where, *ray_flags(workers)], folder))
            rows[-1]["train_s"] = shared_training_s(models)
        if "forecast" in args.steps:
            rows.append(measured("forecast", workers, len(markets), [
                "predict", "--model", "lstm", "--all", "--format", "csv", *where,
                *ray_flags(workers)], folder))
    return rows


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> None:
    table = Table(title=f"bench/scale.py: {args.markets} markets x {args.days} days of 1h "
                        f"candles, backtest of the last {args.test_days:g} days; LSTM "
                        f"{json.dumps(args.lstm)}; {os.cpu_count()} CPUs; {wall:.0f} s in all")
    for column in ("step", "workers", "series", "process s", "Ray start s", "work s",
                   "of which training s", "CPU s", "peak MB", "Ray peak MB", "work ms/series",
                   "CPU ms/series", "speed-up", "speed-up after training"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in rows:
        training = row.get("train_s")
        table.add_row(row["step"], workers_name(row["workers"]), f"{row['series']:,}",
                      f"{row['process_s']:.1f}",
                      f"{row['ray_start_s']:.1f}" if row["workers"] else "-",
                      f"{row['work_s']:.1f}", "-" if training is None else f"{training:.1f}",
                      f"{row['cpu_s']:.1f}", f"{row['peak_mb']:,.0f}",
                      f"{row['ray_peak_mb']:,.0f}" if row["workers"] else "-",
                      f"{1000 * row['work_s'] / row['series']:,.0f}",
                      f"{1000 * row['cpu_s'] / row['series']:,.0f}", speed_up(row, rows, False),
                      "-" if training is None else speed_up(row, rows, True))
    Console(width=160).print(table)


def workers_name(workers: int | None) -> str:
    return "-" if workers is None else "in process" if workers == 0 else f"Ray x{workers}"


def speed_up(row: dict[str, Any], rows: list[dict[str, Any]], after_training: bool) -> str:
    """The step's work time with the first --workers count over this one's (less, with
    ``after_training``, the shared model's training: the part the workers do not share)."""
    if row["workers"] is None:
        return "-"
    first = next(r for r in rows if r["step"] == row["step"])
    less = (lambda r: r["train_s"]) if after_training else (lambda r: 0.0)
    return f"{(first['work_s'] - less(first)) / (row['work_s'] - less(row)):.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--test-days", type=float, default=60, help="the backtest's test period")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="steps to run (a step needs the ones before it)")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2],
                        help="Ray workers of the backtest and forecast steps (0: no Ray)")
    parser.add_argument("--lstm", type=json.loads, default=LSTM,
                        help="the LSTM's settings as JSON ([model.lstm])")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="fetch without ccxt's rate limiter (50 ms between requests)")
    parser.add_argument("--keep", type=Path, help="use (and keep) this folder for the store, "
                        "models and logs, instead of a temporary one")
    args = parser.parse_args()
    began = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        rows = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="volcast-scale-") as folder:
            rows = run(args, Path(folder))
    print_table(rows, args, time.perf_counter() - began)


if __name__ == "__main__":
    main()
