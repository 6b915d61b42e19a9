"""Following a watch-list against the simulator with a fast clock (an hour candle closes every
two seconds): every close stored equal to the source, through faults, restarts, an exchange
that is down, and reloads. Nothing here measures time: each wait is for a condition, bounded
only by a generous deadline."""

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from volcast.config import FetchSettings, LiveSettings, WatchSettings
from volcast.data.formats import read_candles
from volcast.data.sample import sample_dir, sample_file
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS, parse_time
from volcast.live.follower import Callbacks, ExchangeClock, Follower, backfill_start, follow_all
from volcast.live.watch import ExchangePlan, WatchedSeries, watch_plan
from volcast.simulator import SimulatorConfig, running

from ..conftest import FAST, HOUR

JULY = parse_time("2024-07-01")
SINCE = "2024-06-30"
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
KRAKEN_BTC = SeriesKey("kraken", "BTC/USDT", "1h")
LIVE = LiveSettings(max_sleep_s=5)
DEADLINE_S = 180.0


def clocked(dialect: str = "binance", **faults: Any) -> SimulatorConfig:
    """The bundled sample (binance/ folder, for Kraken's dialect too) from 2024-07-01 at
    1800 x real time."""
    return SimulatorConfig(sample_dir(), dialect=dialect, venue="binance", now_ms=JULY,
                           speed=1800, **faults)


@pytest.fixture(scope="module")
def source() -> dict[str, pd.DataFrame]:
    return {pair: read_candles(sample_file(pair=pair), HOUR) for pair in ("BTC_USDT", "ETH_USDT")}


@dataclass
class Recorder:
    """Every callback, as (key, ...) tuples in call order."""

    candles: list[tuple[SeriesKey, int, int]] = field(default_factory=list)
    errors: list[tuple[SeriesKey, str]] = field(default_factory=list)
    oks: list[SeriesKey] = field(default_factory=list)
    opens: list[tuple[SeriesKey, int, float, int]] = field(default_factory=list)
    delays: list[tuple[SeriesKey, float]] = field(default_factory=list)
    expanded: list[tuple[str, list[SeriesKey]]] = field(default_factory=list)

    def callbacks(self) -> Callbacks:
        return Callbacks(on_candles=lambda *a: self.candles.append(a),
                         on_error=lambda *a: self.errors.append(a),
                         on_ok=self.oks.append, on_open=lambda *a: self.opens.append(a),
                         on_delay=lambda *a: self.delays.append(a),
                         on_expand=lambda *a: self.expanded.append(a))

    def added(self, key: SeriesKey) -> int:
        return sum(added for k, added, _ in self.candles if k == key)


def in_thread(main: Callable[[], Awaitable[None]]) -> None:
    """asyncio.run on a worker thread (a browser test may hold the main thread's loop)."""
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, main()).result()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        await asyncio.sleep(0.05)


def last(store: CandleStore, key: SeriesKey) -> int:
    bounds = store.bounds(key)
    return -1 if bounds is None else bounds[1]


def exchange_now(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/v3/time", timeout=5) as answer:
        return int(json.load(answer)["serverTime"])


def assert_stored_equal_source(store: CandleStore, key: SeriesKey, source: pd.DataFrame,
                               first: int) -> pd.DataFrame:
    """Every candle from ``first`` to the newest stored, each once, equal to the source."""
    stored = store.read(key)
    want = source[(source["timestamp"] >= first)
                  & (source["timestamp"] <= stored["timestamp"].iloc[-1])]
    assert stored["timestamp"].is_unique
    pd.testing.assert_frame_equal(stored, want.reset_index(drop=True))
    return stored


def assert_reported(record: Recorder, key: SeriesKey, stored: pd.DataFrame,
                    restarted: bool = False) -> None:
    """on_candles counted every stored candle once, newest open times rising. A page written
    while the follower was being stopped is stored but not reported (its sync never ended):
    the newest report may stop short of the store, and after a follower restarted (a reload)
    such a page may lie before later reports."""
    newest = [n for k, _, n in record.candles if k == key]
    assert newest == sorted(set(newest))
    upto = (stored["timestamp"] <= newest[-1]).sum()
    assert record.added(key) <= upto if restarted else record.added(key) == upto


def plan(url: str, *symbols: str, exchange: str = "binance",
         since: str | None = SINCE) -> ExchangePlan:
    [one] = watch_plan([WatchSettings(exchange=exchange, symbols=list(symbols), since=since,
                                      url=url)])
    return one


async def follow(plans: list[ExchangePlan], store: CandleStore, record: Recorder,
                 condition: Callable[[], bool], what: str, settings: FetchSettings = FAST,
                 reloads: asyncio.Queue | None = None,
                 meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
    """follow_all until ``condition`` holds (after ``meanwhile``, when given), then stop."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(follow_all(plans, store, settings, LIVE, record.callbacks(),
                                            stop, reloads))
    if meanwhile is not None:
        await meanwhile()
    await until(condition, what)
    stop.set()
    await task


@pytest.mark.parametrize("fail_rate", [0.0, 0.3])
def test_two_exchanges_store_each_close_once_equal_to_the_source(db, source, fail_rate):
    faults = {"fail_rate": fail_rate, "seed": 5, "retry_after_s": 0, "stall_s": 0.2}
    target = JULY + 2 * HOUR  # three closes after the clock's start
    record = Recorder()
    with running(clocked(**faults)) as binance, running(clocked("kraken", **faults)) as kraken, \
            CandleStore(db) as store:
        plans = [plan(binance.url, "BTC/USDT", "ETH/USDT"),
                 plan(kraken.url, "BTC/USDT", exchange="kraken", since=None)]
        keys = (BTC, ETH, KRAKEN_BTC)
        in_thread(lambda: follow(plans, store, record, lambda: all(
            last(store, key) >= target for key in keys), "three closes of each are stored"))
        for key, pair, first in ((BTC, "BTC_USDT", parse_time(SINCE)),
                                 (ETH, "ETH_USDT", parse_time(SINCE)),
                                 (KRAKEN_BTC, "BTC_USDT", store.bounds(KRAKEN_BTC)[0])):
            stored = assert_stored_equal_source(store, key, source[pair], first)
            assert_reported(record, key, stored)
        # Kraken had no since: its backfill started one day before the exchange's clock
        first, newest = store.bounds(KRAKEN_BTC)
        assert JULY - DAY_MS <= first <= newest - DAY_MS + 3 * HOUR
    assert set(record.oks) == set(keys)
    faulted = sum(v for k, v in binance.stats.items() if k.startswith("fault:"))
    assert (faulted > 0) == (fail_rate > 0)
    if fail_rate == 0:
        assert record.errors == []
    # a delay for each candle stored as it closed, none for the backfill's (its first batch)
    for key in keys:
        delays = [seconds for k, seconds in record.delays if k == key]
        backfill = next(added for k, added, _ in record.candles if k == key)
        assert 1 <= len(delays) <= record.added(key) - backfill
        assert len(delays) == record.added(key) - backfill or fail_rate > 0
        assert all(0 <= seconds < math.inf for seconds in delays)
    # each minute of the exchange's clock, the open candle so far: part of its final volume
    assert {key for key, *_ in record.opens} == set(keys)
    for key, open_ms, volume, now in record.opens:
        final = source[key.symbol.replace("/", "_")].set_index("timestamp")["volume"][open_ms]
        assert open_ms % HOUR == 0 and open_ms <= now
        assert 0 <= volume <= final * (1 + 1e-9)


def test_a_restart_fills_the_gap_exactly(db, source):
    record, again = Recorder(), Recorder()
    with running(clocked()) as sim, CandleStore(db) as store:
        plans = [plan(sim.url, "BTC/USDT")]
        in_thread(lambda: follow(plans, store, record, lambda: last(store, BTC) >= JULY + HOUR,
                                 "two closes are stored"))
        stopped = last(store, BTC)
        before = store.read(BTC)
        gap_end = stopped + 3 * HOUR

        async def clock_runs_on() -> None:
            await until(lambda: exchange_now(sim.url) >= gap_end + HOUR, "three more closes")
        in_thread(clock_runs_on)
        assert last(store, BTC) == stopped  # nothing followed while stopped
        in_thread(lambda: follow(plans, store, again, lambda: any(
            newest >= gap_end for _, _, newest in again.candles), "the gap is reported"))
        stored = assert_stored_equal_source(store, BTC, source["BTC_USDT"], parse_time(SINCE))
    assert_reported(record, BTC, before)
    assert again.added(BTC) == len(stored) - len(before)
    first_after = again.candles[0]
    assert first_after[1] >= 3 and first_after[2] >= gap_end  # the whole gap in one backfill


CHILD = """
import asyncio, sys
from pathlib import Path
from volcast.config import FetchSettings, LiveSettings, WatchSettings
from volcast.data.store import CandleStore
from volcast.live.follower import Callbacks, follow_all
from volcast.live.watch import watch_plan

db, url, since = sys.argv[1:]
plans = watch_plan([WatchSettings(exchange="binance", symbols=["BTC/USDT"], since=since,
                                  url=url)])
fast = FetchSettings(retries=12, backoff_s=0.01, backoff_max_s=0.2, timeout_ms=1000,
                     rate_limit=False)
asyncio.run(follow_all(plans, CandleStore(Path(db)), fast, LiveSettings(max_sleep_s=5),
                       Callbacks(), asyncio.Event()))
"""
"""Follows BTC/USDT on the simulator at ``url`` into ``db`` until killed."""


def test_kill_9_then_a_restart_fills_the_gap_without_duplicates(db, source):
    record = Recorder()
    with running(clocked()) as sim, CandleStore(db) as store:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), sim.url, SINCE],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        async def killed_after_two_closes() -> None:
            def stored_or_died() -> bool:
                assert child.poll() is None, child.stderr.read().decode()
                return last(store, BTC) >= JULY + HOUR
            await until(stored_or_died, "the child stores two closes")
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            killed_at = last(store, BTC)
            await until(lambda: exchange_now(sim.url) >= killed_at + 4 * HOUR,
                        "three more closes")
            assert last(store, BTC) == killed_at
        in_thread(killed_after_two_closes)
        killed_at = last(store, BTC)
        in_thread(lambda: follow([plan(sim.url, "BTC/USDT")], store, record, lambda: any(
            newest >= killed_at + 3 * HOUR for _, _, newest in record.candles),
            "the gap is reported"))
        assert_stored_equal_source(store, BTC, source["BTC_USDT"], parse_time(SINCE))
    assert record.candles[0][1] >= 3  # the gap, in the first sync after the restart


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_exchange_down_at_start_is_reported_and_retried_until_it_answers(db, source):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    record = Recorder()
    settings = FetchSettings(retries=1, backoff_s=0.01, backoff_max_s=0.05, timeout_ms=500,
                             rate_limit=False)
    config = clocked()
    with CandleStore(db) as store, ThreadPoolExecutor(1) as worker:
        context = running(config, port)
        started = []

        async def exchange_comes_up() -> None:
            await until(lambda: len(record.errors) >= 3, "three failed tries are reported")
            assert store.bounds(BTC) is None
            started.append(await asyncio.to_thread(worker.submit(context.__enter__).result))

        try:
            in_thread(lambda: follow([plan(url, "BTC/USDT")], store, record,
                                     lambda: last(store, BTC) >= JULY + HOUR,
                                     "candles are stored once the exchange answers",
                                     settings, meanwhile=exchange_comes_up))
        finally:
            if started:
                worker.submit(context.__exit__, None, None, None).result()
        stored = assert_stored_equal_source(store, BTC, source["BTC_USDT"], parse_time(SINCE))
    assert_reported(record, BTC, stored)
    assert all(key == BTC and message.startswith("binance load markets: gave up")
               for key, message in record.errors[:3])


def test_an_unreachable_exchange_never_ends_the_follower(db):
    record = Recorder()
    settings = FetchSettings(retries=0, backoff_s=0.01, backoff_max_s=0.05, timeout_ms=500,
                             rate_limit=False)
    unreachable = plan(f"http://127.0.0.1:{free_port()}", "BTC/USDT", "ETH/USDT")

    async def main() -> None:
        stop = asyncio.Event()
        with CandleStore(db) as store:
            follower = Follower(unreachable, store, settings, LIVE, record.callbacks())
            task = asyncio.ensure_future(follower.run(stop))
            await until(lambda: len(record.errors) >= 6, "three rounds of errors")
            stop.set()
            await task  # returns: no exception
            assert store.bounds(BTC) is None

    in_thread(main)
    assert {key for key, _ in record.errors} == {BTC, ETH}
    assert record.candles == [] and record.oks == []


def test_reload_backfills_an_added_series_and_stops_a_removed_one_keeping_its_candles(
        db, source):
    record = Recorder()
    with running(clocked()) as sim, CandleStore(db) as store:
        reloads: asyncio.Queue = asyncio.Queue()
        seen: dict[str, int] = {}

        async def reload_twice() -> None:
            await until(lambda: last(store, BTC) >= JULY, "BTC follows")
            reloads.put_nowait([plan(sim.url, "BTC/USDT", "ETH/USDT")])
            await until(lambda: last(store, ETH) >= last(store, BTC) >= JULY + HOUR,
                        "ETH is backfilled and follows")
            reloads.put_nowait([plan(sim.url, "ETH/USDT")])
            eth = last(store, ETH)
            await until(lambda: last(store, ETH) >= eth + 2 * HOUR, "ETH follows on")
            seen["btc"], seen["eth"] = last(store, BTC), last(store, ETH)

        in_thread(lambda: follow([plan(sim.url, "BTC/USDT")], store, record,
                                 lambda: last(store, ETH) >= seen["eth"] + 2 * HOUR,
                                 "ETH follows on without BTC", reloads=reloads,
                                 meanwhile=reload_twice))
        assert last(store, BTC) == seen["btc"]  # no longer followed, still stored
        for key, pair in ((BTC, "BTC_USDT"), (ETH, "ETH_USDT")):
            stored = assert_stored_equal_source(store, key, source[pair], parse_time(SINCE))
            assert_reported(record, key, stored, restarted=True)


def test_top_markets_are_followed_and_a_delisted_one_is_reported_not_hammered(db):
    config = clocked(markets=10, delisted=0.25, halted=0.0, seed=5)
    with running(config) as sim, CandleStore(db) as store:
        info = json.load(urllib.request.urlopen(f"{sim.url}/api/v3/exchangeInfo", timeout=5))
        status = {f"{s['baseAsset']}/{s['quoteAsset']}": s["status"] for s in info["symbols"]}
        gone = SeriesKey("binance", next(s for s, v in status.items() if v == "BREAK"), "1h")
        [watched] = watch_plan([WatchSettings(exchange="binance", symbols=[gone.symbol], top=3,
                                              quote="USDT", since=SINCE, url=sim.url)])
        record = Recorder()

        def followed() -> bool:
            keys = record.expanded[0][1][1:] if record.expanded else []
            return bool(keys) and all(last(store, key) >= JULY + 6 * HOUR for key in keys)

        in_thread(lambda: follow([watched], store, record, followed, "the top 3 follow"))
    [(exchange, keys)] = record.expanded
    assert exchange == "binance" and keys[0] == gone and len(keys) == 4
    assert all(status[key.symbol] == "TRADING" for key in keys[1:])
    [message] = [text for key, text in record.errors if key == gone]  # once, not again
    assert message == (f"{gone}: binance lists {gone.symbol} as not trading (delisted?); what "
                       "it has is stored; asked again in 60 min")
    assert not [error for error in record.errors if error[0] != gone]


def test_a_new_series_starts_one_day_back_on_an_open_time_and_a_stored_one_resumes():
    watched = WatchedSeries(BTC)
    now = JULY + 25 * 60_000
    assert backfill_start(watched, stored=False, exchange_ms=now) == JULY - DAY_MS + HOUR
    assert backfill_start(watched, stored=True, exchange_ms=now) is None
    dated = WatchedSeries(BTC, JULY - 90 * 60_000)
    assert backfill_start(dated, stored=True, exchange_ms=now) == JULY - HOUR


def test_the_exchange_clock_learns_its_rate_from_samples_and_clamps_it():
    local = [100.0]
    clock = ExchangeClock(lambda: local[0])
    clock.observe(JULY)
    assert (clock.rate, clock.settled) == (1.0, False)
    local[0] += 4.0
    clock.observe(JULY + 4 * 1800 * 1000)
    assert clock.settled and clock.rate == pytest.approx(1800)
    assert clock.seconds_until(JULY + 4 * 1800 * 1000 + HOUR) == pytest.approx(2.0)
    local[0] += 4.0
    clock.observe(JULY - DAY_MS)  # the exchange's clock went back: it stands still
    assert clock.rate == 0.0 and clock.seconds_until(JULY + DAY_MS) == float("inf")
