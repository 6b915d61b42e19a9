"""The watch-list as a plan: merged per exchange and URL, checked with one-line errors, diffed."""

import pytest

from volcast.config import WatchSettings
from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time
from volcast.errors import VolcastError
from volcast.live.watch import ExchangePlan, PlanChange, WatchedSeries, diff_plans, watch_plan

SIM = "http://127.0.0.1:8765"
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
BTC_4H = SeriesKey("binance", "BTC/USDT", "4h")
KRAKEN_BTC = SeriesKey("kraken", "BTC/USD", "1h")


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
