"""Totals benchmark: what keeping an exchange's total current costs `volcast serve` at a close.

    .venv/bin/python bench/totals.py [--markets 200] [--days 365]

Fills a fresh store with ``--markets`` hourly USDT markets over ``--days``: the bundled
sample's two real pairs, then SYNTHETIC markets derived from them (shifted in time and
scaled, as the exchange simulator serves them: volcast.simulator.market_data), each without
its newest candle. Then times `totals.build` as serve calls it: whole (the first build of a
run, or `volcast totals build`), from what changed when nothing did, after one close of every
market, and after an exchange revised one market's older candle (whole again). Prints one
table: wall s, candles written, and the process' peak RSS.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from volcast.data import totals
from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS
from volcast.simulator.market_data import MarketData


def markets(count: int, days: int) -> dict[str, pd.DataFrame]:
    """``count`` markets' hourly candles of the last ``days`` days of the bundled sample."""
    data = MarketData(sample_dir() / "binance")
    end = data.end_ms()
    data.derive(count, seed=0, delisted=0.0, halted=0.0, start_ms=end)
    frames = {}
    for base, quote in data.pairs:
        rows = data.candles(base, quote, "1h")
        assert rows is not None
        lo = int((rows.ts < end - days * DAY_MS).sum())
        values, _ = rows.block(lo, len(rows.ts))
        frames[f"{base}/{quote}"] = pd.DataFrame(
            values, columns=["open", "high", "low", "close", "volume"]).assign(
            timestamp=rows.ts[lo:]).iloc[:, [5, 0, 1, 2, 3, 4]]
    return frames


def timed(label: str, store: CandleStore, known: totals.Settled | None,
          rows: list[dict[str, str]]) -> totals.Built:
    began = time.perf_counter()
    built = totals.build(store, "binance", "USDT", "1h", known)
    rows.append({"step": label, "wall s": f"{time.perf_counter() - began:.2f}",
                 "written": f"{built.written:,}", "markets": str(len(built.markets))})
    return built


def run(count: int, days: int) -> list[dict[str, str]]:
    frames = markets(count, days)
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as folder, CandleStore(Path(folder) / "t.duckdb") as store:
        for symbol, frame in frames.items():
            store.upsert(SeriesKey("binance", symbol, "1h"), frame.iloc[:-1],
                         units=tuple(symbol.split("/")))
        built = timed("whole (first build)", store, None, rows)
        built = timed("whole again (nothing new)", store, None, rows)
        built = timed("from what changed: nothing", store, built.settled, rows)
        for symbol, frame in frames.items():
            store.upsert(SeriesKey("binance", symbol, "1h"), frame.iloc[-1:],
                         units=tuple(symbol.split("/")))
        built = timed("from what changed: a close of every market", store, built.settled, rows)
        symbol, frame = next(iter(frames.items()))
        store.upsert(SeriesKey("binance", symbol, "1h"),
                     frame.iloc[[len(frame) // 2]].assign(volume=lambda f: f["volume"] * 2),
                     units=tuple(symbol.split("/")))
        timed("from what changed: an older candle revised", store, built.settled, rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    rows = run(args.markets, args.days)
    table = Table(title=f"totals.build: {args.markets} markets x {args.days} days of 1h candles")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in rows:
        table.add_row(*row.values())
    console = Console()
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
