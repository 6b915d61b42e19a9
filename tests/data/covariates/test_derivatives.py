"""Funding-rate and open-interest history through the real ccxt client against the simulated
Binance USD-M endpoints: pagination, faults, resume, the 30-day window, errors."""

import asyncio
import json

import numpy as np
import pytest

from volcast.data import exchange as exchange_module
from volcast.data.covariates import derivatives, table
from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore
from volcast.data.timeframe import parse_time
from volcast.simulator import SimulatorConfig, binance_futures, running

from ...conftest import FAST, HOUR
from ...test_cli import assert_one_line_error

SCOPE = "binance:BTC/USDT:USDT"
END = parse_time("2024-08-01")  # the simulator's clock: when the newest candle closes
MAY = parse_time("2024-05-01")


def expected_funding(btc, since, until=END):
    from volcast.simulator.market_data import Candles

    candles = Candles(btc["timestamp"].to_numpy(), btc[["open", "high", "low", "close",
                                                        "volume"]].to_numpy(float), None)
    times = np.arange(since, until + 1, 8 * HOUR, dtype=np.int64)
    return times, binance_futures.funding_rates(candles, times)


def run(db, url, name, since=None, timeframe=None, settings=FAST, symbol="BTC/USDT"):
    with CandleStore(db) as store:
        return asyncio.run(derivatives.fetch("binance", symbol, store, settings, name, timeframe,
                                             since, url))


def stored(db, name, scope=SCOPE):
    with CandleStore(db) as store:
        return table.read(store, name, scope)


@pytest.mark.parametrize("page", [7, 91, 1000])
def test_funding_pages_equal_the_source_at_a_ten_percent_fault_rate(db, btc, monkeypatch, page):
    monkeypatch.setitem(exchange_module.DERIVATIVES_PAGE, "binance", {"funding": page})
    config = SimulatorConfig(sample_dir(), fail_rate=0.1, seed=4, retry_after_s=0, stall_s=1.5,
                             now_ms=END, speed=0)
    with running(config) as sim:
        done = run(db, sim.url, derivatives.FUNDING, since=MAY)
    times, rates = expected_funding(btc, MAY)
    assert (done.added, done.first, done.last) == (len(times), MAY, END)
    assert done.pages == -(-len(times) // page)  # the last page reaches the clock: no more
    assert sum(v for k, v in sim.stats.items() if k.startswith("fault:") and " " not in k) > 0
    got = stored(db, derivatives.FUNDING)
    assert got["ts"].tolist() == times.tolist()
    np.testing.assert_allclose(got["value"], rates)
    assert (got["published_ms"] == got["ts"]).all()


def test_a_rerun_resumes_after_the_newest_stored_value(db, btc):
    with running(SimulatorConfig(sample_dir(), now_ms=END - 10 * 24 * HOUR, speed=0)) as sim:
        first = run(db, sim.url, derivatives.FUNDING, since=MAY)
    with running(SimulatorConfig(sample_dir())) as sim:
        second = run(db, sim.url, derivatives.FUNDING)
        third = run(db, sim.url, derivatives.FUNDING)
    assert second.added == 30 and (third.added, third.pages) == (0, 1)
    assert first.added + second.added == len(expected_funding(btc, MAY)[0])
    assert stored(db, derivatives.FUNDING)["ts"].is_monotonic_increasing


def test_giving_up_keeps_what_was_stored_and_says_how_to_resume(cli, db, btc):
    config = SimulatorConfig(sample_dir(), fail_rate=0.3, seed=11, faults=("503",),
                             retry_after_s=0)
    with running(config) as sim:
        base = ["covariates", "fetch", "funding", "-e", "binance", "-s", "BTC/USDT", "--db", db,
                "--exchange-url", sim.url, "--retries", "0"]
        results = [cli(*base, "--since", "2022-09-01")]
        while results[-1].code == 1 and len(results) < 20:
            results.append(cli(*base))
    assert results[0].code == 1
    assert_one_line_error(results[0], "gave up after 0 retries", "run the same command again to "
                          "resume", code=1)
    assert results[-1].code == 0, results[-1].err
    times, rates = expected_funding(btc, parse_time("2022-09-01"))
    assert stored(db, derivatives.FUNDING)["ts"].tolist() == times.tolist()
    np.testing.assert_allclose(stored(db, derivatives.FUNDING)["value"], rates)


def test_open_interest_of_the_last_30_days_public_when_its_period_ends(db, btc):
    with running(SimulatorConfig(sample_dir(), now_ms=END, speed=0)) as sim:
        done = run(db, sim.url, derivatives.OPEN_INTEREST, since=MAY, timeframe="1h")
        again = run(db, sim.url, derivatives.OPEN_INTEREST, timeframe="1h")
        with pytest.raises(Exception, match="stored at 60 minutes a period, not 4h"):
            run(db, sim.url, derivatives.OPEN_INTEREST, timeframe="4h")
    got = stored(db, derivatives.OPEN_INTEREST)
    assert (done.first, done.last) == (END - 30 * 24 * HOUR, END - HOUR)  # the window, closed
    assert done.added == 720 and again.added == 0
    assert (got["published_ms"] == got["ts"] + HOUR).all()
    hour = btc.set_index("timestamp")
    day_before = hour.loc[END - 25 * HOUR:END - 2 * HOUR, "volume"]  # closed by 23:00
    assert got["value"].iloc[-1] == pytest.approx(10 * day_before.mean(), abs=1e-3)


def test_perpetual_and_input_errors_are_one_line(cli, db, simulator):
    url = ["--exchange-url", simulator.url]
    cases = [
        (["funding", "-e", "binance", "-s", "SOL/USDT", *url],
         "binance lists no perpetual SOL/USDT:USDT for SOL/USDT; its perpetuals: BTC/USDT:USDT, "
         "ETH/USDT:USDT"),
        (["funding", "-e", "binance", "-s", "BTC/USDT", *url],
         "nothing stored of funding_rate for binance:BTC/USDT:USDT yet: give --since"),
        (["funding", "-e", "binance", "-s", "BTC/USDT", "--since", "2100-01-01", *url],
         "--since 2100-01-01 is in the future"),
        (["open_interest", "-e", "binance", "-s", "BTC/USDT", "-t", "1m", "--since",
          "2024-07-30", *url], "1m"),
        (["funding", "-e", "Binance", "-s", "BTC/USDT"], "unknown exchange 'Binance'"),
        (["funding", "-e", "binance", "-s", "BTCUSDT"], "symbol 'BTCUSDT' must be written"),
    ]
    for args, fragment in cases:
        assert_one_line_error(cli("covariates", "fetch", *args, "--db", db), fragment)
    with CandleStore(db) as store:
        assert table.listing(store).empty


def test_a_bad_value_stops_the_download_with_one_line(cli, db, monkeypatch):
    def broken(candles, times):
        rates = np.full(len(times), 0.0001)
        rates[len(rates) // 2] = np.nan
        return rates

    monkeypatch.setattr(binance_futures, "funding_rates", broken)
    with running(SimulatorConfig(sample_dir())) as sim:
        result = cli("covariates", "fetch", "funding", "-e", "binance", "-s", "ETH/USDT", "--since",
                     "2024-07-20", "--db", db, "--exchange-url", sim.url)
    assert_one_line_error(result, "binance funding_rate of ETH/USDT:USDT: row 19: value is not a "
                          "finite number")
    assert stored(db, derivatives.FUNDING, "binance:ETH/USDT:USDT").empty


def test_the_cli_says_what_it_stored(cli, db, simulator):
    result = cli("covariates", "fetch", "open_interest", "-e", "binance", "-s", "ETH/USDT", "-t",
                 "4h", "--since", "2024-07-25", "--db", db, "--exchange-url", simulator.url)
    assert result.code == 0, result.err
    assert "open_interest of binance:ETH/USDT:USDT: 42 new (1 pages); stored 2024-07-25 00:00 .. "\
           "2024-07-31 20:00 UTC" in result.out
    listed = cli("covariates", "list", "--db", db, "--format", "json").out
    assert [r["scope"] for r in json.loads(listed)] == ["binance:ETH/USDT:USDT"]
