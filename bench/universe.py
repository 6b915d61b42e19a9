"""Universe benchmark: `volcast fetch --top N` of every market the simulator serves.

    .venv/bin/python bench/universe.py [--markets 200] [--days 30] [--no-rate-limit]

Starts the simulator with --markets N (the bundled sample's two pairs, then synthetic markets
derived from them: shifted in time and scaled, see volcast.simulator.market_data) in its own
process, as a remote exchange would be, and times `volcast fetch -e binance --top N --quote
USDT -t 1h --since (end - days)` into a fresh store, in a process of its own too. Prints one
table: wall time, candles stored, candles/s, peak RSS of the fetch and of the simulator.
With ccxt's rate limiter on (as volcast runs) Binance's 50 ms between requests bounds the
speed; --no-rate-limit shows what the loop itself does.
"""

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from volcast.data.store import CandleStore
from volcast.data.timeframe import DAY_MS, format_time, parse_time
from volcast.simulator.server import spawned

END = parse_time("2024-08-01")
"""When the bundled sample's newest candle closes: the simulator's clock starts there."""


def peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory (Linux's VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024


def run(markets: int, days: int, rate_limit: bool) -> dict[str, str]:
    with spawned("--markets", str(markets)) as (simulator, url), \
            tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "universe.duckdb"
        config = Path(tmp) / "fetch.toml"
        config.write_text(f"[fetch]\nrate_limit = {str(rate_limit).lower()}\n")
        began = time.perf_counter()
        fetched = subprocess.run(
            [sys.executable, "-m", "volcast.cli", "fetch", "-e", "binance", "--top",
             str(markets), "--quote", "USDT", "-t", "1h", "--since",
             format_time(END - days * DAY_MS), "--exchange-url", url, "--db", str(db),
             "--config", str(config)], capture_output=True, text=True)
        wall = time.perf_counter() - began
        if fetched.returncode != 0:
            raise RuntimeError(f"fetch failed ({fetched.returncode}): {fetched.stderr}")
        fetch_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with CandleStore(db, read_only=True) as store:
            listing = store.series()
        chosen = next(line for line in fetched.stdout.splitlines()
                      if line.startswith("binance top"))
        simulator_rss = peak_rss_mb(simulator.pid)
    candles = int(listing["rows"].sum())
    return {"markets served": f"{markets:,}", "series fetched": f"{len(listing):,}",
            "days of 1h candles": f"{days}", "candles stored": f"{candles:,}",
            "wall time (fetch process)": f"{wall:.1f} s",
            "candles/s": f"{candles / wall:,.0f}",
            "peak RSS, fetch process": f"{fetch_rss:.0f} MB",
            "peak RSS, simulator": f"{simulator_rss:.0f} MB",
            "rate limiter": "on (50 ms)" if rate_limit else "off", "universe": chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args()
    figures = run(args.markets, args.days, not args.no_rate_limit)
    table = Table(title=f"volcast fetch --top {args.markets} (bench/universe.py)")
    table.add_column("measure")
    table.add_column("value", overflow="fold")
    for name, value in figures.items():
        table.add_row(name, value)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
