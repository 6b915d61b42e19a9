"""An exchange's universe against the simulator's synthetic markets: the top N by 24 h quote
volume through ccxt's tickers, delisted and halted markets named and never fetched, a market
the exchange refuses skipped without stopping the others."""

import json
import re
import urllib.request

import pytest
from aiohttp import web

from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore
from volcast.data.timeframe import DAY_MS, format_time
from volcast.data.universe import Universe, named, quote_volume, rank
from volcast.errors import VolcastError
from volcast.simulator import SimulatorConfig, running, server
from volcast.simulator.server import build_app

from ..conftest import HOUR

NOW = 1722466800000 + HOUR  # when the sample's newest candle closes: 2024-08-01 00:00
MARKETS = SimulatorConfig(sample_dir(), markets=30, delisted=0.1, halted=0.1, seed=7,
                          now_ms=NOW, speed=0.0)
"""30 markets (28 synthetic: 3 delisted, 3 halted) on a stopped clock: the 24 h window is
exactly the 24 newest hourly candles."""


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def top_from_candles(url: str, n: int) -> tuple[list[str], set[str], set[str]]:
    """The top n trading USDT markets by the quote volume of their candles of the 24 h before
    the clock (each candle's volume x its typical price), read from klines, not tickers; and
    the delisted and halted ones."""
    info = get(f"{url}/api/v3/exchangeInfo")["symbols"]
    volumes, delisted = {}, set()
    for market in info:
        symbol = f"{market['baseAsset']}/{market['quoteAsset']}"
        if market["status"] != "TRADING":
            delisted.add(symbol)
            continue
        rows = get(f"{url}/api/v3/klines?symbol={market['symbol']}&interval=1h&limit=24")
        volumes[symbol] = sum(float(r[5]) * (float(r[2]) + float(r[3]) + float(r[4])) / 3
                              for r in rows if r[0] >= NOW - DAY_MS)
    ranked = sorted((s for s in volumes if volumes[s] > 0), key=lambda s: -volumes[s])
    return ranked[:n], delisted, {s for s, v in volumes.items() if v == 0}


def test_top_n_by_quote_volume_is_what_the_candles_say_and_delisted_are_named(cli, db):
    with running(MARKETS) as sim:
        want, delisted, halted = top_from_candles(sim.url, 10)
        result = cli("fetch", "-e", "binance", "--top", "10", "--quote", "usdt", "-t", "1h",
                     "--since", format_time(NOW - 3 * DAY_MS), "--db", db, "--exchange-url",
                     sim.url)
    assert result.code == 0, result.err
    assert (len(delisted), len(halted)) == (3, 3)
    with CandleStore(db) as store:
        listing = store.series()
    assert set(listing["symbol"]) == set(want)
    assert (listing["rows"] == 72).all()
    line = next(row for row in result.out.splitlines() if row.startswith("binance top 10"))
    assert "10 chosen of 30 spot markets quoted in USDT" in line
    assert set(re.search(r"not trading \(delisted\): ([^;]+)", line)[1].split(", ")) == delisted
    assert set(re.search(r"no volume in 24 h \(halted\): ([^;]+)", line)[1].split(", ")) == halted
    assert "fetch summary: 10 series" in result.out
    assert re.search(r"10 series\s*│\s*720\s*│\s*ok", result.out)


def refusing(symbol: str):
    """Wraps build_app: klines of ``symbol`` answer Binance's -1121 Invalid symbol, as for a
    market removed after the tickers were read."""
    def build(config):
        app, stats = build_app(config)

        @web.middleware
        async def refuse(request, handler):
            if request.path == "/api/v3/klines" and request.query.get("symbol") == symbol:
                stats["refused"] += 1
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            return await handler(request)

        app.middlewares.append(refuse)
        return app, stats

    return build


def test_a_refused_market_is_skipped_once_and_the_others_are_fetched(cli, db, monkeypatch):
    with running(MARKETS) as sim:
        want, _, _ = top_from_candles(sim.url, 4)
    monkeypatch.setattr(server, "build_app", refusing(want[0].replace("/", "")))
    args = ("fetch", "-e", "binance", "--since", format_time(NOW - DAY_MS), "--db", db,
            "--exchange-url")
    with running(MARKETS) as sim:
        result = cli(*args, sim.url, "--top", "4", "--quote", "USDT")
        assert result.code == 0, result.err
        assert sim.stats["refused"] == 1  # not retried
        named_one = cli(*args, sim.url, "-s", want[0], "-s", want[1])
    assert re.search(rf"binance {re.escape(want[0])} 1h\s*│\s*0\s*│\s*skipped, not retried: "
                     r"binance", result.out)
    assert "Invalid symbol" in result.out
    with CandleStore(db) as store:
        assert set(store.series()["symbol"]) == set(want[1:])
    # a market named with -s is the user's own: its refusal fails the command, in one line
    assert named_one.code == 2
    assert named_one.err.startswith(f"error: binance {want[0]} 1h: binance {want[0]} 1h "
                                    "candles: binance")
    assert len(named_one.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--top", "5", "-s", "BTC/USDT", "--quote", "USDT"],
     "--top 5 picks the markets itself: give --top or --symbol (BTC/USDT), not both"),
    (["--top", "5", "--quote", "USDT", "ETH/USDT"],
     "--top 5 picks the markets itself: give --top or --symbol (ETH/USDT), not both"),
    (["--top", "5"], "--top 5 needs --quote (e.g. --quote USDT)"),
    (["-s", "BTC/USDT", "--quote", "USDT"], "--quote USDT goes with --top N"),
    ([], "nothing to fetch: give --symbol (-s BTC/USDT) or --top N --quote USDT"),
])
def test_top_with_symbols_or_without_quote_is_refused_in_one_line(cli, db, args, message):
    result = cli("fetch", "-e", "binance", *args, "--db", db)
    assert result.code == 2
    assert result.err.startswith(f"error: {message}")
    assert len(result.err.strip().splitlines()) == 1
    assert not db.exists()


def test_ranking_takes_spot_markets_of_the_quote_that_trade_ties_by_symbol():
    markets = [
        {"symbol": "A/USDT", "type": "spot", "quote": "USDT", "active": True},
        {"symbol": "B/USDT", "type": "spot", "quote": "USDT", "active": None},  # not said
        {"symbol": "C/USDT", "type": "spot", "quote": "USDT", "active": True},
        {"symbol": "D/USDT", "type": "spot", "quote": "USDT", "active": False},
        {"symbol": "E/USDT", "type": "spot", "quote": "USDT", "active": True},
        {"symbol": "A/USDT:USDT", "type": "swap", "quote": "USDT", "active": True},
        {"symbol": "A/BTC", "type": "spot", "quote": "BTC", "active": True}]
    tickers = {"A/USDT": {"quoteVolume": 5.0}, "B/USDT": {"baseVolume": 2.0, "vwap": 2.0},
               "C/USDT": {"quoteVolume": 5.0}, "D/USDT": {"quoteVolume": 99.0},
               "E/USDT": {"quoteVolume": 0.0}, "A/USDT:USDT": {"quoteVolume": 1e9},
               "A/BTC": {"quoteVolume": 1e9}}
    chosen = rank("x", markets, tickers, Universe(2, "usdt"))
    assert chosen.symbols == ("A/USDT", "C/USDT")
    assert (chosen.listed, chosen.delisted, chosen.halted) == (5, ("D/USDT",), ("E/USDT",))
    assert rank("x", markets, tickers, Universe(9, "USDT")).symbols == (
        "A/USDT", "C/USDT", "B/USDT")
    assert quote_volume({"quoteVolume": float("nan")}) == 0.0
    assert named(f"S{i}" for i in range(10)) == "S0, S1, S2, S3, S4, S5, S6, S7 ... (10 in all)"
    with pytest.raises(VolcastError, match=r"^x lists no spot markets quoted in EUR"):
        rank("x", markets, tickers, Universe(2, "EUR"))
