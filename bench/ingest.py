"""Ingest benchmark: ccxt download speed from the simulator, fetch-loop overhead, DuckDB upserts.

    .venv/bin/python bench/ingest.py [--data ../shared/data] [--candles 1000000]

Prints one table. Targets (issue 2): the fetch loop adds under 10% to the time the requests
themselves take; DuckDB upserts at least 500k candles per second. The simulator runs in its own
process, as a remote exchange would, so client and server do not share a GIL.
"""

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from volcast.data.exchange import ExchangeClient, RetryPolicy
from volcast.data.formats import read_candles
from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.sync import sync_many
from volcast.simulator.server import spawned

KEY = SeriesKey("binance", "BTC/USDT", "1h")


class TimedClient(ExchangeClient):
    """Adds up the wall time spent inside exchange calls (ccxt + HTTP + rate limiter), counting
    from the first call after the markets are loaded."""

    request_s = 0.0

    async def call(self, *args: object) -> object:
        began = time.perf_counter()
        try:
            return await super().call(*args)
        finally:
            self.request_s += time.perf_counter() - began


async def timed_download(url: str, db: Path, since: int, rate_limit: bool) -> dict[str, float]:
    async with TimedClient("binance", url=url, rate_limit=rate_limit,
                           retry=RetryPolicy(retries=3)) as client:
        with CandleStore(db) as store:
            client.request_s = 0.0
            began = time.perf_counter()
            [result] = await sync_many(client, store, [KEY], since, None, lambda *_: None)
            total = time.perf_counter() - began
    return {"candles": result.added, "pages": result.pages, "total_s": total,
            "request_s": client.request_s}


def bench_fetch(data: Path, rate_limit: bool, latency_ms: float) -> dict[str, float]:
    source = read_candles(data / "binance" / "BTC_USDT-1h.csv"
                          if (data / "binance" / "BTC_USDT-1h.csv").exists()
                          else data / "binance" / "BTC_USDT-1h.csv.gz", KEY.tf_ms)
    with spawned("--data", str(data), "--latency-ms", str(latency_ms)) as (_, url), \
            tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(timed_download(url, Path(tmp) / "b.duckdb",
                                          int(source["timestamp"].iloc[0]), rate_limit))


def synthetic(n: int, data: Path) -> pd.DataFrame:
    """n hourly candles: real BTC/USDT values tiled over consecutive hours."""
    real = read_candles(sample_dir() / "binance" / "BTC_USDT-1h.csv.gz", KEY.tf_ms)
    reps = -(-n // len(real))
    frame = pd.concat([real] * reps, ignore_index=True).iloc[:n].copy()
    frame["timestamp"] = np.int64(1_500_000_000_000) + np.arange(n, dtype=np.int64) * KEY.tf_ms
    return frame


def bench_upsert(n: int, data: Path) -> dict[str, float]:
    frame = synthetic(n, data)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, CandleStore(Path(tmp) / "u.duckdb") as store:
        for label in ("new", "existing"):
            began = time.perf_counter()
            store.upsert(KEY, frame)
            figures[label] = n / (time.perf_counter() - began)
        pages = frame.iloc[: min(n, 200_000)]
        began = time.perf_counter()
        for start in range(0, len(pages), 1000):
            store.upsert(KEY, pages.iloc[start:start + 1000])
        figures["pages"] = len(pages) / (time.perf_counter() - began)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data", type=Path, default=shared if shared.is_dir() else sample_dir())
    parser.add_argument("--candles", type=int, default=1_000_000)
    args = parser.parse_args()

    table = Table(title=f"volcast ingest benchmark (data: {args.data})")
    for column in ("measure", "value", "target"):
        table.add_column(column)
    for rate_limit, latency_ms in ((False, 0), (True, 0), (True, 50)):
        f = bench_fetch(args.data, rate_limit, latency_ms)
        label = ("ccxt rate limiter on" if rate_limit else "rate limiter off") + (
            f", {latency_ms} ms latency" if latency_ms else ", loopback")
        overhead = (f["total_s"] - f["request_s"]) / f["request_s"]
        table.add_row(f"fetch through ccxt, {label}",
                      f"{f['candles'] / f['total_s']:,.0f} candles/s ({f['candles']:,} candles, "
                      f"{f['pages']} requests, {f['total_s']:.2f} s)", "")
        table.add_row(f"fetch loop overhead, {label}",
                      f"{overhead:.1%} of {f['request_s']:.2f} s in requests", "< 10%")
    u = bench_upsert(args.candles, args.data)
    table.add_row(f"DuckDB upsert {args.candles:,} new candles", f"{u['new']:,.0f} candles/s",
                  ">= 500,000/s")
    table.add_row(f"DuckDB upsert {args.candles:,} stored candles again",
                  f"{u['existing']:,.0f} candles/s", ">= 500,000/s")
    table.add_row("DuckDB upsert in 1,000-candle pages (as fetch writes)",
                  f"{u['pages']:,.0f} candles/s", "")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table.add_row("peak memory (this process)", f"{peak_mb:,.0f} MB", "")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
