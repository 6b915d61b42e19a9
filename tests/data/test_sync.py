"""The real ccxt client against the simulator: pagination, faults, resume, closure, errors."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiohttp import web

from volcast.config import FetchSettings
from volcast.data import exchange as exchange_module
from volcast.data.formats import read_candles
from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.sync import empty_stretches, fetch, plan_ranges
from volcast.data.timeframe import format_time, parse_time
from volcast.errors import FetchFailed, VolcastError
from volcast.simulator import SimulatorConfig, running, server
from volcast.simulator.server import build_app

from ..conftest import FAST, HOUR

BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
START = parse_time("2022-08-01")


def download(db, url, keys=(BTC,), settings=FAST, **kwargs):
    with CandleStore(db) as store:
        return asyncio.run(fetch("binance", list(keys), store, settings, url=url, **kwargs))


def stored(db, key=BTC):
    with CandleStore(db) as store:
        return store.read(key)


def test_two_years_at_a_ten_percent_fault_rate_equal_the_source(db, btc):
    config = SimulatorConfig(sample_dir(), fail_rate=0.10, seed=7, retry_after_s=0, stall_s=1.5)
    with running(config) as sim:
        [result] = download(db, sim.url, since=START)
    assert sum(v for k, v in sim.stats.items() if k.startswith("fault:")) > 0
    assert result.error is None
    assert result.added == len(btc) == 17543
    pd.testing.assert_frame_equal(stored(db), btc)
    assert (result.gaps, result.missing) == (1, 1)  # Binance's outage of 2023-03-24


@pytest.mark.parametrize("fault", ["429", "418", "500", "502", "503", "stall", "truncated"])
def test_each_fault_kind_is_retried_without_losing_a_candle(db, btc, fault):
    config = SimulatorConfig(sample_dir(), fail_rate=0.4, seed=3, faults=(fault,),
                             retry_after_s=0, stall_s=1.5)
    with running(config) as sim:
        [result] = download(db, sim.url, since=START, until=START + 3000 * HOUR)
    assert sim.stats[f"fault:{fault}"] > 0
    assert result.error is None
    pd.testing.assert_frame_equal(stored(db), btc.iloc[:3000])


def test_rerun_adds_nothing_and_asks_only_for_what_is_new(db, simulator, btc):
    download(db, simulator.url, since=START)
    before = simulator.stats["/api/v3/klines"]
    [again] = download(db, simulator.url)
    assert again.added == 0
    assert simulator.stats["/api/v3/klines"] - before <= 1
    pd.testing.assert_frame_equal(stored(db), btc)


@pytest.mark.parametrize("page", [1, 7, 999])
def test_page_boundaries_neither_skip_nor_duplicate(db, simulator, btc, monkeypatch, page):
    monkeypatch.setitem(exchange_module.PAGE_LIMIT_OVERRIDES, "binance", page)
    since, until = parse_time("2023-03-24"), parse_time("2023-03-25T06:00")  # spans the outage
    [result] = download(db, simulator.url, since=since, until=until)
    expected = btc[(btc["timestamp"] >= since) & (btc["timestamp"] < until)]
    pd.testing.assert_frame_equal(stored(db), expected.reset_index(drop=True))
    assert result.pages >= -(-len(expected) // page)


def test_the_open_candle_is_dropped_and_stored_once_it_closes(db, btc):
    last_open = int(btc["timestamp"].iloc[-1])
    with running(SimulatorConfig(sample_dir(), now_ms=last_open + HOUR // 2, speed=0)) as sim:
        download(db, sim.url, since=last_open - 5 * HOUR)
    assert stored(db)["timestamp"].iloc[-1] == last_open - HOUR
    with running(SimulatorConfig(sample_dir(), now_ms=last_open + HOUR, speed=0)) as sim:
        [result] = download(db, sim.url)
    assert result.added == 1
    assert stored(db)["volume"].iloc[-1] == btc["volume"].iloc[-1]  # full, not partial


def test_backfill_is_explicit_and_downloads_only_the_missing_part(db, simulator, btc):
    middle = int(btc["timestamp"].iloc[10_000])
    download(db, simulator.url, since=middle)
    [result] = download(db, simulator.url, since=START)
    assert result.added == 10_000
    pd.testing.assert_frame_equal(stored(db), btc)


def test_plan_ranges_never_covers_what_is_stored():
    assert plan_ranges(None, [], 0, 100, 10) == [(0, 100)]
    assert plan_ranges((50, 70), [], None, 100, 10) == [(80, 100)]
    assert plan_ranges((50, 70), [], 0, 100, 10) == [(0, 50), (80, 100)]
    assert plan_ranges((50, 70), [], 60, 100, 10) == [(80, 100)]
    assert plan_ranges((50, 90), [], None, 100, 10) == []
    with pytest.raises(VolcastError, match="give --since"):
        plan_ranges(None, [], None, 100, 10)


def test_plan_ranges_fills_every_hole_within_since_and_until():
    holes = [(20, 40), (60, 70)]  # stored: 10, 40..50, 70..90
    assert plan_ranges((10, 90), holes, None, 200, 10) == [(20, 40), (60, 70), (100, 200)]
    assert plan_ranges((10, 90), holes, 0, 200, 10) == [(0, 10), (20, 40), (60, 70), (100, 200)]
    assert plan_ranges((10, 90), holes, 30, 200, 10) == [(30, 40), (60, 70), (100, 200)]
    assert plan_ranges((10, 90), holes, None, 65, 10) == [(20, 40), (60, 65)]  # --until
    assert plan_ranges((10, 90), holes, 0, 200, 10, "holes") == [(20, 40), (60, 70)]
    assert plan_ranges((10, 90), holes, None, 200, 10, "tail") == [(100, 200)]
    assert plan_ranges(None, [], 0, 200, 10, "holes") == []


def test_empty_stretches_are_what_a_page_skips():
    ts = np.array([5, 30, 40, 70, 200])  # 5: before the cursor; 200: past the stop
    assert empty_stretches(ts, 10, 100, 10) == [(10, 30), (50, 70), (80, 100)]
    assert empty_stretches(np.array([10, 20]), 10, 100, 10) == []


def test_several_symbols_download_concurrently(db, simulator, btc):
    results = download(db, simulator.url, keys=(BTC, ETH), since=START, until=START + 2000 * HOUR)
    assert [r.added for r in results] == [2000, 2000]
    assert stored(db, ETH)["volume"].iloc[0] != stored(db, BTC)["volume"].iloc[0]


def test_units_come_from_the_exchanges_market(db, simulator, btc):
    with CandleStore(db) as store:  # a file imported under units the exchange contradicts
        store.upsert(BTC, btc.iloc[:10], units=("XBT", "USD"))
    download(db, simulator.url, keys=(BTC, ETH), since=START, until=START + 20 * HOUR)
    with CandleStore(db) as store:
        assert store.units(BTC) == ("BTC", "USDT")
        assert store.units(ETH) == ("ETH", "USDT")


def test_rate_limiter_and_retry_after_are_honoured(db):
    settings = FetchSettings(retries=10, backoff_s=0.01, rate_limit=True)
    config = SimulatorConfig(sample_dir(), fail_rate=0.4, seed=2, faults=("429",),
                             retry_after_s=1)
    with running(config) as sim:
        began = time.monotonic()
        [result] = download(db, sim.url, settings=settings, since=START, until=START + 4000 * HOUR)
        elapsed = time.monotonic() - began
    assert result.added == 4000
    # candle pages are requested one after another, so each of their 429s waited 1 s at least
    assert elapsed >= sim.stats["fault:429 /api/v3/klines"] * 1.0 > 0


def test_giving_up_says_how_far_it_got_and_keeps_what_was_stored(db, btc):
    settings = FetchSettings(retries=2, backoff_s=0.01, rate_limit=False)
    with running(SimulatorConfig(sample_dir())) as sim:
        download(db, sim.url, settings=settings, since=START, until=START + 1000 * HOUR)
    failing = SimulatorConfig(sample_dir(), fail_rate=1.0, faults=("503",))
    with running(failing) as sim, pytest.raises(FetchFailed, match="load markets: gave up"):
        download(db, sim.url, settings=settings)
    config = SimulatorConfig(sample_dir())
    with running(config) as sim:  # one more page arrives, then every request fails
        [result] = download(db, sim.url, settings=settings,  # (done 0: before any page)
                            progress=lambda _, __, done, ___: done and setattr(
                                config, "fail_rate", 1.0))
    assert "gave up after 2 retries" in result.error
    reached = format_time(START + 1999 * HOUR)
    assert f"stored up to {reached} UTC (1000 new this run)" in result.error
    assert "run the same command again to resume" in result.error
    assert len(stored(db)) == 2000


def test_unknown_symbol_and_timeframe_are_refused_before_any_download(db, simulator):
    before = simulator.stats["/api/v3/klines"]
    with pytest.raises(VolcastError, match="does not list symbol 'BTC/EUR'"):
        download(db, simulator.url, keys=(SeriesKey("binance", "BTC/EUR", "1h"),), since=START)
    with pytest.raises(VolcastError, match="has no timeframe '7h'; choose one of 1s, 1m"):
        download(db, simulator.url, keys=(SeriesKey("binance", "BTC/USDT", "7h"),), since=START)
    with pytest.raises(VolcastError, match="unknown exchange 'binanse'; did you mean binance"):
        asyncio.run(fetch("binanse", [BTC], None, FAST, url=simulator.url))
    assert simulator.stats["/api/v3/klines"] == before


@dataclass
class SteppedClock:
    """An exchange clock that only the test moves (never wall time), so a slow or busy
    machine sees the same candles close at the same rounds."""

    now_ms: int

    def __call__(self) -> int:
        return self.now_ms


def test_follow_appends_candles_as_they_close(db, btc, monkeypatch):
    last_open = int(btc["timestamp"].iloc[-1])
    clock = SteppedClock(last_open - 3 * HOUR)
    monkeypatch.setattr(server, "Clock", lambda start_ms, speed: clock)
    rounds = []

    def one_hour_later(results):
        rounds.append(results)
        clock.now_ms += HOUR

    settings = FAST.model_copy(update={"poll_s": 0.01})
    with running(SimulatorConfig(sample_dir())) as sim:
        download(db, sim.url, settings=settings, since=last_open - 10 * HOUR,
                 on_round=one_hour_later, follow_rounds=3)
    # closed at the start: opens -10 h .. -4 h; then one more candle closes each round
    assert [r[0].added for r in rounds] == [7, 1, 1, 1]
    assert stored(db)["timestamp"].iloc[-1] == last_open - HOUR


def outage_from_page(pages: int, over: threading.Event):
    """Wraps build_app: from the candle page after ``pages`` on, requests wait until ``over``
    is set; ``asked`` is set when the first of them arrives."""
    asked = threading.Event()

    def build(config):
        app, stats = build_app(config)

        @web.middleware
        async def hold(request, handler):
            if request.path == "/api/v3/klines" and stats[request.path] > pages:
                asked.set()
                await asyncio.get_running_loop().run_in_executor(None, over.wait)
            return await handler(request)

        app.middlewares.append(hold)
        return app, stats

    return build, asked


def test_kill_9_mid_download_then_resume_equals_the_source(db, btc, monkeypatch):
    # the child gets 6 pages, then waits on the 7th until it has been killed: however fast
    # or slow this machine, the kill lands mid-download
    over = threading.Event()
    build, asked = outage_from_page(6, over)
    monkeypatch.setattr(server, "build_app", build)
    with running(SimulatorConfig(sample_dir())) as sim:
        command = [sys.executable, "-m", "volcast.cli", "fetch", "-e", "binance", "-s",
                   "BTC/USDT", "--since", "2022-08-01", "--db", str(db), "--exchange-url",
                   sim.url]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while not asked.wait(0.05):
            assert child.poll() is None, child.stderr.read().decode()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        over.set()
        with CandleStore(db) as store:
            half = len(store.read(BTC))
        assert 0 < half < len(btc)
        resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(stored(db), btc)


KRAKEN = SeriesKey("kraken", "BTC/USD", "1h")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def kraken_btc():
    return read_candles(FIXTURES / "kraken" / "BTC_USD-1h.csv.gz", HOUR)


def test_kraken_answers_only_its_newest_720_and_the_loop_neither_spins_nor_stops_early(
        db, kraken_btc):
    last_open = int(kraken_btc["timestamp"].iloc[-1])
    clock = SimulatorConfig(FIXTURES, dialect="kraken", now_ms=last_open + HOUR // 2, speed=0)
    with running(clock) as sim:
        [result] = asyncio.run(_kraken(db, sim.url, since=int(kraken_btc["timestamp"].iloc[0])))
    window = kraken_btc[kraken_btc["timestamp"] > last_open - 720 * HOUR].iloc[:-1]  # open one
    pd.testing.assert_frame_equal(stored(db, KRAKEN), window.reset_index(drop=True))
    assert sim.stats["/0/public/OHLC"] == result.pages == 1
    assert result.first == window["timestamp"].iloc[0]  # shown as "stored from" in the summary
    with CandleStore(db) as store:  # what Kraken did not answer for is not known to be empty
        assert store.empty_ranges(KRAKEN) == []


def test_kraken_incremental_sync_picks_up_closed_candles(db, kraken_btc):
    last_open = int(kraken_btc["timestamp"].iloc[-1])
    for now in (last_open - 10 * HOUR, last_open + HOUR):
        with running(SimulatorConfig(FIXTURES, dialect="kraken", now_ms=now, speed=0)) as sim:
            [result] = asyncio.run(_kraken(db, sim.url, since=last_open - 100 * HOUR))
    assert result.added == 11
    tail = kraken_btc[kraken_btc["timestamp"] >= last_open - 100 * HOUR]
    pd.testing.assert_frame_equal(stored(db, KRAKEN), tail.reset_index(drop=True))
    with CandleStore(db) as store:
        assert store.units(KRAKEN) == ("BTC", "USD")  # ccxt's codes, not Kraken's XXBT/ZUSD


async def _kraken(db, url, since):
    with CandleStore(db) as store:
        return await fetch("kraken", [KRAKEN], store, FAST, url=url, since=since)


def test_progress_ends_on_the_results_own_figures(db, simulator, monkeypatch):
    monkeypatch.setitem(exchange_module.PAGE_LIMIT_OVERRIDES, "binance", 100)
    calls = []
    middle = START + 500 * HOUR
    download(db, simulator.url, since=middle, until=START + 1000 * HOUR)
    [result] = download(db, simulator.url, since=START, until=START + 1500 * HOUR,
                        progress=lambda *args: calls.append(args))  # backfill, then resume
    assert (result.added, result.pages) == (1000, 10)
    key, added, done, total = calls[-1]
    assert (key, added, done) == (BTC, result.added, total)
    assert total == 1000 * HOUR
    assert [c[2] for c in calls] == sorted(c[2] for c in calls)  # never goes back
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)


def test_an_up_to_date_series_reports_its_progress_done(db, simulator):
    download(db, simulator.url, since=START, until=START + 10 * HOUR)
    calls = []
    [result] = download(db, simulator.url, until=START + 10 * HOUR,
                        progress=lambda *args: calls.append(args))
    assert (result.added, result.pages) == (0, 0)
    assert calls == [(BTC, 0, 0, 0)]



def tampered_klines(page: int, index: int, field: int, value):
    """Wraps build_app: in candle page number ``page`` (1-based), row ``index`` gets ``value``
    in ``field`` (of Binance's 12), as a broken exchange or proxy might send it."""
    import json

    def build(config):
        app, stats = build_app(config)

        @web.middleware
        async def tamper(request, handler):
            response = await handler(request)
            if request.path == "/api/v3/klines" and stats[request.path] == page:
                body = json.loads(response.body)
                body[index][field] = value
                return web.json_response(body)
            return response

        app.middlewares.append(tamper)
        return app, stats

    return build


@pytest.mark.parametrize(("index", "field", "value", "message"), [
    (-1, 0, 4_102_444_800_000, "row 100: opens after the exchange's clock, 2024-08-01 00:00 UTC"),
    (49, 5, "Infinity", "row 50: price or volume is not a finite number"),
    (49, 2, "1e308", "row 50: price or volume above 1e+18"),
])
def test_a_page_with_an_impossible_candle_is_refused_and_never_stored(db, btc, monkeypatch,
                                                                       index, field, value,
                                                                       message):
    # a candle from 2100 would move the cursor past every real one: "ok" with a page stored
    monkeypatch.setitem(exchange_module.PAGE_LIMIT_OVERRIDES, "binance", 100)
    monkeypatch.setattr(server, "build_app", tampered_klines(2, index, field, value))
    with running(SimulatorConfig(sample_dir())) as sim, pytest.raises(VolcastError) as info:
        download(db, sim.url, since=START, until=START + 1000 * HOUR)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"binance BTC/USDT 1h: binance's page from 2022-08-05 04:00: {message}")
    pd.testing.assert_frame_equal(stored(db), btc.iloc[:100])  # the first page, nothing else


def months(btc, *spans):
    """The sample's candles from each [start, end) pair of ISO dates."""
    parts = [btc[(btc["timestamp"] >= parse_time(a)) & (btc["timestamp"] < parse_time(b))]
             for a, b in spans]
    return pd.concat(parts, ignore_index=True)


def test_a_fetch_fills_the_holes_between_stored_candles(db, simulator, btc):
    # January and March imported: February was never downloaded ("ok", 0 requests, before)
    with CandleStore(db) as store:
        store.upsert(BTC, months(btc, ("2024-01-01", "2024-02-01"), ("2024-03-01", "2024-04-01")))
    [result] = download(db, simulator.url, since=parse_time("2024-01-01"),
                        until=parse_time("2024-04-01"))
    assert result.added == 29 * 24 and result.pages > 0
    pd.testing.assert_frame_equal(stored(db), months(btc, ("2024-01-01", "2024-04-01")))
    assert (result.gaps, result.missing) == (0, 0)


def test_without_since_a_fetch_fills_the_holes_of_the_whole_stored_range(db, simulator, btc):
    with CandleStore(db) as store:
        store.upsert(BTC, months(btc, ("2022-08-01", "2022-08-03"), ("2022-08-10", "2022-08-11")))
    [result] = download(db, simulator.url, until=parse_time("2022-08-12"))
    assert result.added == 7 * 24 + 24
    pd.testing.assert_frame_equal(stored(db), months(btc, ("2022-08-01", "2022-08-12")))


def test_what_the_exchange_lacks_is_confirmed_and_never_asked_for_again(db, simulator, btc):
    outage = parse_time("2023-03-24T13:00")  # Binance has no candle then
    since, until = outage - 100 * HOUR, outage + 100 * HOUR
    with CandleStore(db) as store:  # stored around it, by an import: nobody asked yet
        store.upsert(BTC, btc[(btc["timestamp"] >= since) & (btc["timestamp"] < until)])
        assert store.gaps(BTC)[["missing", "confirmed"]].values.tolist() == [[1, 0]]
    asked = simulator.stats["/api/v3/klines"]
    [result] = download(db, simulator.url, until=until, scope="holes")
    assert (result.added, result.pages) == (0, 1)
    with CandleStore(db) as store:
        assert store.empty_ranges(BTC) == [(outage, outage + HOUR)]
        assert store.gaps(BTC)[["missing", "confirmed"]].values.tolist() == [[1, 1]]
    [again] = download(db, simulator.url, since=since, until=until)
    assert again.pages == 0
    assert simulator.stats["/api/v3/klines"] - asked == 1


def test_a_full_download_confirms_the_outages_it_passes(db, simulator):
    since, until = parse_time("2023-03-20"), parse_time("2023-03-28")
    download(db, simulator.url, since=since, until=until)
    with CandleStore(db) as store:
        assert store.gaps(BTC)[["missing", "confirmed"]].values.tolist() == [[1, 1]]
    [again] = download(db, simulator.url, until=until)
    assert (again.added, again.pages) == (0, 0)


def test_before_a_listing_the_exchange_confirms_it_has_nothing(db, simulator, btc):
    download(db, simulator.url, since=parse_time("2022-07-01"), until=START + 10 * HOUR)
    with CandleStore(db) as store:
        assert store.empty_ranges(BTC) == [(parse_time("2022-07-01"), START)]
    [again] = download(db, simulator.url, since=parse_time("2022-07-01"), until=START + 10 * HOUR)
    assert again.pages == 0


def test_repair_needs_something_stored(db, simulator):
    with pytest.raises(VolcastError, match="nothing stored for binance BTC/USDT 1h, so no holes"):
        download(db, simulator.url, since=START, scope="holes")
