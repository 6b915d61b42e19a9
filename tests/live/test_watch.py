"""The watch-list as a plan: merged per exchange and URL, checked with one-line errors, diffed."""

import asyncio
import json

import pytest

from volcast.config import WatchSettings, load_settings
from volcast.data.exchange import ExchangeClient
from volcast.data.sample import sample_dir
from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time
from volcast.data.universe import Universe, select
from volcast.errors import VolcastError
from volcast.live.watch import (
    ExchangePlan,
    PlanChange,
    WatchedSeries,
    WatchedUniverse,
    diff_plans,
    expand,
    watch_plan,
)
from volcast.simulator import SimulatorConfig, running

SIM = "http://127.0.0.1:8765"
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
BTC_4H = SeriesKey("binance", "BTC/USDT", "4h")
KRAKEN_BTC = SeriesKey("kraken", "BTC/USD", "1h")
NOW = parse_time("2024-08-01")


def watch(exchange: str = "binance", symbols: tuple[str, ...] = ("BTC/USDT",),
          **extra: object) -> WatchSettings:
    return WatchSettings(exchange=exchange, symbols=list(symbols), **extra)


def test_one_plan_per_exchange_and_url_each_series_once_from_the_earliest_start():
    plans = watch_plan([
        watch(symbols=("BTC/USDT", "ETH/USDT"), timeframes=["1h", "4h"], url=SIM),
        watch("kraken", ("BTC/USD",), since="2024-07-01T06:00Z"),
        watch(symbols=("ETH/USDT",), since="2024-06-01", url=SIM),
        watch(symbols=("ETH/USDT",), since="2024-06-15", url=SIM),
    ])
    assert plans == [
        ExchangePlan("binance", SIM, (
            WatchedSeries(BTC), WatchedSeries(BTC_4H),
            WatchedSeries(ETH, parse_time("2024-06-01")),
            WatchedSeries(SeriesKey("binance", "ETH/USDT", "4h")))),
        ExchangePlan("kraken", None, (
            WatchedSeries(KRAKEN_BTC, parse_time("2024-07-01T06:00")),)),
    ]
    assert plans[0].ident == ("binance", SIM)
    assert plans[1].keys == [KRAKEN_BTC]


def test_the_same_exchange_at_two_urls_is_two_plans():
    plans = watch_plan([watch(url=SIM), watch(symbols=("ETH/USDT",))])
    assert [plan.ident for plan in plans] == [("binance", SIM), ("binance", None)]


def test_one_series_from_two_urls_is_refused():
    with pytest.raises(VolcastError, match=r"^\[\[watch\]\] table 2 \(binance\): binance "
                                           r"BTC/USDT 1h is already watched at another url"):
        watch_plan([watch(url=SIM), watch()])


@pytest.mark.parametrize(("entry", "message"), [
    (watch(since="yesterday"),
     r"^\[\[watch\]\] table 2 \(binance\): since: bad date 'yesterday': use ISO 8601"),
    (watch(symbols=("BTCUSDT",)),
     r"^\[\[watch\]\] table 2 \(binance\): symbol 'BTCUSDT' must be written as ccxt does"),
    (watch(timeframes=["1M"]),
     r"^\[\[watch\]\] table 2 \(binance\): unsupported timeframe '1M'"),
    (watch("binanse"),
     r"^\[\[watch\]\] table 2 \(binanse\): unknown exchange 'binanse'; did you mean binance"),
])
def test_a_bad_entry_is_one_line_naming_its_table(entry, message):
    with pytest.raises(VolcastError, match=message) as caught:
        watch_plan([watch("kraken", ("BTC/USD",)), entry])
    assert "\n" not in str(caught.value)


def test_diff_names_what_each_exchange_gains_and_loses():
    old = watch_plan([watch(symbols=("BTC/USDT", "ETH/USDT")), watch("kraken", ("BTC/USD",))])
    new = watch_plan([watch(symbols=("ETH/USDT",), timeframes=["1h", "4h"]),
                      watch("okx", ("BTC/USDT",))])
    assert diff_plans(old, new) == [
        PlanChange("binance", None, (SeriesKey("binance", "ETH/USDT", "4h"),), (BTC,)),
        PlanChange("kraken", None, (), (KRAKEN_BTC,)),
        PlanChange("okx", None, (SeriesKey("okx", "BTC/USDT", "1h"),), ()),
    ]
    assert diff_plans(new, new) == []


def test_a_top_entry_is_a_universe_the_follower_expands_after_the_named_series():
    plans = watch_plan([watch(top=3, quote="usdt", timeframes=["1h", "4h"], url=SIM),
                        watch(symbols=("ETH/USDT",), since="2024-06-01", url=SIM)])
    assert plans == [ExchangePlan("binance", SIM, (
        WatchedSeries(BTC), WatchedSeries(BTC_4H), WatchedSeries(ETH, parse_time("2024-06-01"))),
        (WatchedUniverse(Universe(3, "USDT"), ("1h", "4h")),))]
    with running(SimulatorConfig(sample_dir(), markets=12, delisted=0.2, halted=0.2, seed=3,
                                 now_ms=NOW, speed=0.0)) as sim:

        async def expanded():
            async with ExchangeClient("binance", url=sim.url, rate_limit=False) as client:
                return (await expand(plans[0], client),
                        await select(client, Universe(3, "USDT")))

        (series, [chosen]), direct = asyncio.run(expanded())
    assert chosen == direct and len(chosen.symbols) == 3 and chosen.delisted
    top = [SeriesKey("binance", symbol, tf) for symbol in chosen.symbols for tf in ("1h", "4h")]
    assert [w.key for w in series] == list(dict.fromkeys([BTC, BTC_4H, ETH, *top]))
    assert series[2].since == parse_time("2024-06-01")  # the named start wins for a series


@pytest.mark.parametrize(("table", "message"), [
    ({"top": 5}, "top and quote go together"),
    ({"quote": "USDT", "symbols": ["BTC/USDT"]}, "top and quote go together"),
    ({}, "give symbols, or top and quote"),
    ({"top": 0, "quote": "USDT"}, "watch.0.top"),
])
def test_a_top_entry_needs_its_quote_and_something_to_watch(tmp_path, table, message):
    config = tmp_path / "volcast.toml"
    config.write_text('[[watch]]\nexchange = "binance"\n' + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in table.items()))
    with pytest.raises(VolcastError, match=message):
        load_settings(config)
