"""The live service in-process over the simulator on a fast clock: candles follow the closes,
forecasts refresh from the newest candle, rules fire once per episode and reach a webhook,
the views the dashboard reads hold every watched series."""

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from volcast.config import AlertRule, LiveSettings, Settings, WatchSettings
from volcast.data.sample import sample_dir
from volcast.data.store import SeriesKey
from volcast.errors import VolcastError
from volcast.live.service import Service
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.receiver import receiving
from volcast.workspace import Workspace

from ..conftest import FAST

JULY = int(datetime(2024, 7, 1, tzinfo=UTC).timestamp() * 1000)
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
DEADLINE_S = 180.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def settings(url: str, hook: str, **rules: AlertRule) -> Settings:
    watch = WatchSettings(exchange="binance", symbols=["BTC/USDT", "ETH/USDT"], url=url,
                          since="2024-06-03")
    return Settings(watch=[watch], fetch=FAST, live=LiveSettings(max_sleep_s=2, nowcast=False),
                    alert=[AlertRule(name="capacity", series="binance:BTC/USDT:1h",
                                     kind="q90_above", threshold=1e-6, horizon=3, webhook=hook),
                           AlertRule(name="total", series="binance", kind="q90_above",
                                     unit="quote", aggregate="sum", threshold=1e15, horizon=24),
                           AlertRule(name="stale", series="binance:ETH/USDT:1h", kind="stale",
                                     threshold=3)])


@pytest.fixture
def live(db) -> Iterator[tuple[Service, object, str]]:
    config = SimulatorConfig(sample_dir(), now_ms=JULY, speed=1800)
    with running(config) as sim, receiving() as hook, Workspace.open(
            db, settings=settings(sim.url, hook.url)) as space:
        service = Service(space)
        service.start()
        try:
            yield service, hook, sim.url
        finally:
            service.stop()


def newest(service: Service, key: SeriesKey) -> int:
    bounds = service.space.store.bounds(key)
    return -1 if bounds is None else bounds[1]


def test_the_service_follows_forecasts_and_alerts(live):
    service, hook, _ = live
    until(lambda: newest(service, BTC) >= JULY, "the backfill")
    first = newest(service, BTC)
    until(lambda: newest(service, BTC) >= first + 3 * BTC.tf_ms, "three closes")
    until(lambda: hook.accepted >= 1, "the webhook")
    events = [json.loads(body) for body in hook.bodies]
    assert [(e["rule"], e["state"]) for e in events] == [("capacity", "firing")]  # one episode
    view = service.live()
    cards = {card["id"]: card for card in view["series"]}
    assert set(cards) == {"binance:BTC/USDT:1h", "binance:ETH/USDT:1h"}
    btc = cards["binance:BTC/USDT:1h"]
    assert btc["unit"] == "BTC" and btc["firing"] == ["capacity"]
    assert btc["forecast"]["ds"][0] == btc["last_candle"] + BTC.tf_ms  # from the newest candle
    assert btc["history"]["ds"][-1] == btc["last_candle"]
    assert not btc["stale"]  # measured on the exchange's clock, not ours (2026)
    logged = service.alerts()
    assert logged[0]["rule"] == "capacity" and logged[0]["delivered_at_ms"] is not None
    assert service.acknowledge(logged[0]["id"])["acked_at_ms"] is not None
    health = service.health()
    assert health["watching"] == 2 and health["stale"] == [] and health["failing"] == []


def test_rules_made_through_the_api_survive_a_restart_and_bad_ones_are_one_line(live, db):
    service, _, _ = live
    rule = AlertRule(name="eth-peak", series="binance:ETH/USDT:1h", kind="q90_above",
                     threshold=1e12)
    assert service.add_rule(rule)["source"] == "api"
    with pytest.raises(VolcastError, match="not in the watch-list"):
        service.add_rule(rule.model_copy(update={"name": "x", "series": "kraken:BTC/USD:1h"}))
    with pytest.raises(VolcastError, match="comes from the config file"):
        service.delete_rule("capacity")
    names = {r["name"]: r["source"] for r in service.rules()}
    assert names == {"capacity": "config", "total": "config", "stale": "config",
                     "eth-peak": "api"}
    again = Service(service.space)  # a restart reads API-made rules back from the store
    assert {r["name"] for r in again.rules()} == set(names)
    watch = service.space.settings.watch[0].model_copy(update={"symbols": ["BTC/USDT"]})
    service.space.settings = service.space.settings.model_copy(update={
        "watch": [watch], "alert": service.space.settings.alert[:2]})
    narrower = Service(service.space)  # ETH no longer watched: it starts, without eth-peak
    assert {r["name"] for r in narrower.rules()} == {"capacity", "total"}
    assert service.delete_rule("eth-peak") == {"deleted": "eth-peak"}


def test_top_markets_join_the_watched_series_and_a_delisted_one_fails_with_its_reason(db):
    config = SimulatorConfig(sample_dir(), now_ms=JULY, speed=1800, markets=10, delisted=0.25,
                             halted=0.0, seed=5)
    with running(config) as sim:
        info = json.load(urllib.request.urlopen(f"{sim.url}/api/v3/exchangeInfo", timeout=5))
        gone = next(f"{s['baseAsset']}/{s['quoteAsset']}" for s in info["symbols"]
                    if s["status"] == "BREAK")
        watch = WatchSettings(exchange="binance", symbols=[gone], top=2, quote="USDT",
                              url=sim.url, since="2024-06-29")
        chosen = Settings(watch=[watch], fetch=FAST,
                          live=LiveSettings(max_sleep_s=2, nowcast=False))
        with Workspace.open(db, settings=chosen) as space:
            service = Service(space)
            assert service.health()["watching"] == 1  # the top markets are chosen on opening
            service.start()
            try:
                until(lambda: service.health()["watching"] == 3 and all(
                    card["last_candle"] for card in service.live()["series"][1:]),
                    "the top two are chosen and followed")
                health = service.health()
            finally:
                service.stop()
    ident = f"binance:{gone}:1h"
    assert health["failing"] == [ident]
    assert health["errors"] == {ident: f"binance {gone} 1h: binance lists {gone} as not "
                                       "trading (delisted?); what it has is stored; asked "
                                       "again in 60 min"}


def test_a_stored_exchange_total_follows_its_markets_closes(live):
    """Once `volcast totals build` made binance's */USDT, the service keeps it current: at
    each close it takes in the markets' new candles, each the sum of their quote volumes."""
    from volcast.data import totals
    from volcast.data.frames import quote_volume, to_long

    service, _, _ = live
    store = service.space.store
    until(lambda: min(newest(service, BTC), newest(service, ETH)) >= JULY, "the backfill")
    built = totals.build(store, "binance", "USDT", "1h")
    total = SeriesKey("binance", "*/USDT", "1h")
    until(lambda: newest(service, total) >= built.last + 2 * BTC.tf_ms, "two closes")
    at = newest(service, total)
    summed = sum(float(quote_volume(to_long(store.read(key, at, at + key.tf_ms), "x"))["y"]
                       .iloc[0]) for key in (BTC, ETH))
    assert float(store.read(total, at)["volume"].iloc[0]) == pytest.approx(summed, rel=1e-12)
