"""The offline main job on the bundled sample (README's first command).

Imports one sample file, starts the local exchange simulator on the sample folder, downloads a
second series from it through the real ccxt client, and prints what the store holds. Running it
again adds nothing: both paths are idempotent.
"""

import asyncio
from pathlib import Path

from rich.console import Console

from volcast.config import FetchSettings
from volcast.data.formats import read_candles
from volcast.data.sample import SAMPLE_SINCE, sample_dir, sample_file
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.sync import fetch
from volcast.data.timeframe import parse_time
from volcast.simulator import SimulatorConfig, running
from volcast.ui import fetch_progress, results_table, series_table


def run_demo(db: Path, console: Console) -> None:
    imported = SeriesKey("binance", "ETH/USDT", "1h")
    fetched = SeriesKey("binance", "BTC/USDT", "1h")
    with CandleStore(db) as store:
        frame = read_candles(sample_file(pair="ETH_USDT"), imported.tf_ms)
        added = store.upsert(imported, frame)
        console.print(f"1. imported {sample_file(pair='ETH_USDT').name}: {len(frame)} candles, "
                      f"{added} new", soft_wrap=True)
        with running(SimulatorConfig(sample_dir())) as sim:
            console.print(f"2. simulated Binance at {sim.url}; downloading {fetched} via ccxt",
                          soft_wrap=True)
            with fetch_progress(console) as progress:
                results = asyncio.run(fetch(fetched.exchange, [fetched], store, FetchSettings(),
                                            since=parse_time(SAMPLE_SINCE), url=sim.url,
                                            progress=progress))
        console.print(results_table(results))
        console.print("3. the store now holds:")
        console.print(series_table(store.series()))
    console.print(f"database: {db.resolve()}", soft_wrap=True)
