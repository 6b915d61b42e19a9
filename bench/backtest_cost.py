"""Backtest cost (issue 16's target): the protocol's backtest of the default model on BTC/USDT
hourly, one year of training before the cutoff, then two years of daily origins, in a fresh
process; prints the training and forecasting seconds and the process' peak memory.

    .venv/bin/python bench/backtest_cost.py [--data ../shared/data] [--model lstm]
        [--test-days 730] [--settings '{"epochs": 30}'] [--threads 1]

Target: at most 45 s wall and 400 MB peak RSS on two cores. Candles at or after 2024-08-01 are
never used (the file is cut there). ``wall`` is the child's, imports and reading the file
included; on a machine other work shares, ``CPU`` (user + system, both cores) says what the
run itself cost. ``imports`` is the process' size once torch and pandas are loaded, before any
candle: the floor under the peak. ``own`` is the peak of the process' anonymous memory (sampled
every 10 ms), the peak RSS without the pages of library files it maps (torch's code, shared
with every other process that loads it).
"""

import argparse
import json
import resource
import threading
import time
from pathlib import Path
from typing import Any

from forecast import isolated, load

END = 1_722_470_400_000
"""2024-08-01 00:00 UTC: the first candle never used."""


def rss_mb(field: str = "VmRSS") -> float:
    """The process' resident memory now (``RssAnon``: its anonymous part), from /proc
    (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class AnonPeak:
    """The highest ``RssAnon`` seen by a thread that looks every ``every`` seconds."""

    def __init__(self, every: float = 0.01) -> None:
        self.peak, self.every = 0.0, every
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb("RssAnon"))
            time.sleep(self.every)


def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One backtest in this (child) process: its entry point."""
    from volcast.evaluation.backtest import backtest
    from volcast.models import create
    from volcast.models.runtime import configure_process

    began = time.perf_counter()
    own = AnonPeak()
    configure_process(job["threads"])
    imports = rss_mb()
    long = load(Path(job["data"]), job["pair"])
    long = long[long["ds"] < END].reset_index(drop=True)
    result = backtest(create(job["model"], job["settings"]), long, test_days=job["test_days"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [{"model": result.model, "train_s": result.train_s, "predict_s": result.predict_s,
             "wall_s": time.perf_counter() - began, "cpu_s": usage.ru_utime + usage.ru_stime,
             "imports_mb": imports, "peak_mb": usage.ru_maxrss / 1024,
             "own_mb": own.peak,
             "origins": int(result.predictions["origin"].nunique()),
             "mae": result.scores["overall"]["mae"]}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--pair", default="BTC")
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--test-days", type=float, default=730)
    parser.add_argument("--settings", type=json.loads, default={},
                        help="model settings as JSON")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: every CPU)")
    args = parser.parse_args()
    job = {"data": str(args.data), "pair": args.pair, "model": args.model,
           "settings": args.settings, "test_days": args.test_days, "threads": args.threads}
    (row,) = isolated(run, [job])
    print(f"{args.model} on {args.pair}/USDT 1h, {row['origins']} origins: "
          f"train {row['train_s']:.1f} s, predict {row['predict_s']:.1f} s, "
          f"wall {row['wall_s']:.1f} s (CPU {row['cpu_s']:.1f} s), peak {row['peak_mb']:.0f} MB "
          f"(imports {row['imports_mb']:.0f} MB, own {row['own_mb']:.0f} MB), "
          f"MAE {row['mae']:,.1f}")


if __name__ == "__main__":
    main()
