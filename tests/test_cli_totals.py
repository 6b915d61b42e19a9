"""`volcast totals` end to end: markets fetched from the simulator's synthetic universe, their
total built and listed as a stored series (CLI and dashboard API), backtested with forecasts
that add up; a total is never fetched, and a lone market is not a total."""

import re

import pytest
from fastapi.testclient import TestClient

from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS, format_time
from volcast.simulator import SimulatorConfig, running
from volcast.web.app import create_app
from volcast.workspace import Workspace

from .test_cli import assert_one_line_error

NOW = 1722466800000 + 3_600_000  # when the sample's newest candle closes: 2024-08-01 00:00
UNIVERSE = SimulatorConfig(sample_dir(), markets=5, delisted=0.0, halted=0.0, seed=3,
                           now_ms=NOW, speed=0.0)
"""BTC/USDT, ETH/USDT and three synthetic USDT markets on a stopped clock."""


@pytest.fixture(scope="module")
def universe():
    with running(UNIVERSE) as sim:
        yield sim


@pytest.fixture
def fetched(cli, db, universe):
    """The top 4 USDT markets' last 16 days, fetched through ccxt."""
    result = cli("fetch", "-e", "binance", "--top", "4", "--quote", "USDT", "-t", "1h",
                 "--since", format_time(NOW - 16 * DAY_MS), "--db", db, "--exchange-url",
                 universe.url)
    assert result.code == 0, result.err
    return db


def test_build_list_and_serve_the_total_then_a_rebuild_writes_nothing(cli, fetched, tmp_path):
    built = cli("totals", "build", "-e", "binance", "--quote", "usdt", "--db", fetched)
    assert built.code == 0, built.err
    assert re.search(r"binance \*/USDT 1h: sum of 4 markets, 384 candles .*; 384 written, "
                     r"0 removed", built.out), built.out
    again = cli("totals", "build", "-e", "binance", "--quote", "USDT", "--db", fetched)
    assert "; 0 written, 0 removed" in again.out
    listing = cli("data", "list", "--db", fetched)
    assert re.search(r"binance \*/USDT 1h\s*│\s*USDT\s*│\s*USDT\s*│\s*384", listing.out)
    with CandleStore(fetched) as store:
        space = Workspace(store, tmp_path / "models")
        with TestClient(create_app(space)) as client:
            series = {s["symbol"]: s for s in client.get("/api/series").json()}
            candles = client.get("/api/candles", params={
                "exchange": "binance", "symbol": "*/USDT", "timeframe": "1h"}).json()
    assert series["*/USDT"]["base"] == "USDT" and len(series) == 5
    assert candles["volume_unit"] == "USDT" and len(candles["candles"]) == 384


def test_the_protocols_backtest_runs_on_the_total_and_its_markets(cli, fetched):
    result = cli("totals", "backtest", "-e", "binance", "--quote", "USDT", "--model",
                 "hour_of_day_median_7d", "--test-days", "3", "--validation-days", "4",
                 "--method", "mint_shrink", "--db", fetched)
    assert result.code == 0, result.err
    assert "direct vs reconciled (mint_shrink)" in result.out
    assert re.search(r"\*/USDT\s*│\s*[\d,]+\s*│\s*[\d,]+\s*│\s*[-+]\d+\.\d\d%", result.out)
    assert "bottom_up" in result.out and "mint_shrink (chosen)" in result.out
    assert re.search(r"^mint_shrink: the total's MAE \d+\.\d\d% (below|ABOVE)", result.out,
                     re.MULTILINE)
    stored = cli("totals", "build", "-e", "binance", "--quote", "USDT", "--db", fetched)
    assert stored.code == 0
    direct = cli("backtest", "--model", "seasonal_naive_24", "-e", "binance", "-s", "*/USDT",
                 "--test-days", "3", "--db", fetched)
    assert direct.code == 0, direct.err
    assert "MAE (USDT)" in direct.out


def test_a_total_is_built_not_fetched(cli, fetched, universe):
    result = cli("fetch", "-e", "binance", "-s", "*/USDT", "-t", "1h", "--since",
                 format_time(NOW - DAY_MS), "--db", fetched, "--exchange-url", universe.url)
    assert_one_line_error(result, "'*/USDT' is the total of binance's stored markets",
                          "volcast totals build -e binance --quote USDT -t 1h")


def test_a_lone_market_and_a_bad_method_are_one_line(cli, fetched):
    with CandleStore(fetched) as store:
        for symbol in store.symbols("binance", "1h")[1:]:
            store.delete(SeriesKey("binance", symbol, "1h"))
    assert_one_line_error(cli("totals", "backtest", "-e", "binance", "--quote", "USDT",
                              "--model", "seasonal_naive_24", "--db", fetched),
                          "1 stored spot market(s) quoted in USDT", "at least 2")
    assert_one_line_error(cli("totals", "backtest", "-e", "binance", "--quote", "USDT",
                              "--model", "mstl", "--method", "magic", "--db", fetched),
                          "unknown reconciliation method 'magic'")
