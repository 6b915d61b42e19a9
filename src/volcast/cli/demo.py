"""The offline main job on the bundled sample (README's first command), through the same
workspace every other command and the dashboard use, so what it makes is found by them.

1. import one sample file into the store; 2. download a second series through the real ccxt
client from the local exchange simulator; 3. backtest the LSTM (one global model that also
learns from the imported pair) against MSTL and the reference models under the protocol, and
keep it and its backtest for `volcast serve`, `overview` and `predict --model lstm`;
4. forecast the next 24 hours with q10/q50/q90; 5. write the HTML report beside the database.
Steps 1-2 are idempotent: running the demo again adds no candles.
"""

from pathlib import Path

from rich.console import Console

from volcast.cli.ui import (
    backtest_progress,
    fetch_progress,
    forecast_table,
    results_table,
    scores_table,
    series_table,
)
from volcast.data.formats import read_candles
from volcast.data.sample import SAMPLE_SINCE, sample_dir, sample_file
from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time
from volcast.evaluation.compare import verdicts
from volcast.simulator import SimulatorConfig, running
from volcast.viz.report import write_report
from volcast.workspace import Workspace
from volcast.workspace.flows import versus


def run_demo(db: Path, console: Console, epochs: int = 30) -> None:
    imported = SeriesKey("binance", "ETH/USDT", "1h")
    fetched = SeriesKey("binance", "BTC/USDT", "1h")
    with Workspace.open(db) as space:
        frame = read_candles(sample_file(pair="ETH_USDT"), imported.tf_ms)
        added = space.store.upsert(imported, frame)
        console.print(f"1. imported {sample_file(pair='ETH_USDT').name}: {len(frame)} candles, "
                      f"{added} new", soft_wrap=True)
        with running(SimulatorConfig(sample_dir())) as sim:
            console.print(f"2. simulated Binance at {sim.url}; downloading {fetched} via ccxt",
                          soft_wrap=True)
            space.exchange_url = sim.url
            with fetch_progress(console) as progress:
                results = space.fetch([fetched], parse_time(SAMPLE_SINCE), progress)
        console.print(results_table(results))
        console.print(series_table(space.store.series()))
        console.print(f"3. backtest on {fetched} (last 60 days, 24-hour forecasts every 24 "
                      f"hours); the LSTM is one global model that also learns from {imported}",
                      soft_wrap=True)
        with backtest_progress(console) as progress:
            backtests = space.backtest(fetched, versus("lstm"), {"lstm": {"epochs": epochs}},
                                       progress)
        console.print(scores_table(backtests, space.unit_name(fetched)))
        for line in verdicts(backtests):
            console.print(line, soft_wrap=True)
        space.layout.save_model(space.learns_with(fetched), backtests[0].forecaster)
        console.print("4. the next 24 hours from the latest candle (LSTM trained before the "
                      "test period; capacity is planned on q90):", soft_wrap=True)
        inputs = space.report_inputs(fetched, "lstm", backtests)
        console.print(forecast_table(inputs.forecast, "lstm"))
        report = write_report([inputs], db.parent / "report.html")
    console.print(f"5. report (opens offline in any browser): {report.resolve()}",
                  soft_wrap=True)
    console.print(f"database: {db.resolve()}; next: `volcast serve --db {db}` (the dashboard "
                  f"shows this model and backtest) or `volcast overview --db {db} --model lstm`",
                  soft_wrap=True)
