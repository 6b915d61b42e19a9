"""The simulator's synthetic markets: derived from the real files (shifted, scaled, seeded,
sharing their arrays), some delisted or halted, and 24 h tickers in Binance's and Kraken's
dialects that ccxt's fetch_tickers reads."""

import asyncio
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from volcast.data.exchange import ExchangeClient
from volcast.data.sample import sample_dir
from volcast.data.timeframe import DAY_MS
from volcast.data.universe import Universe, select
from volcast.errors import VolcastError
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.market_data import DELISTED, HALTED, TRADING, MarketData, Synthetic

H = 3_600_000
NOW = 1722466800000 + H  # when the sample's newest candle closes


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def derived(markets: int = 12, seed: int = 3, **shares: float) -> MarketData:
    data = MarketData(sample_dir() / "binance")
    data.derive(markets, seed, shares.get("delisted", 0.2), shares.get("halted", 0.2), NOW)
    return data


def test_a_synthetic_market_is_its_source_shifted_by_whole_weeks_and_scaled_sharing_arrays():
    data = derived()
    assert len(data.pairs) == 12 and data.pairs[:2] == [("BTC", "USDT"), ("ETH", "USDT")]
    assert [base for base, _ in data.pairs[2:]] == [f"XA{i:02d}" for i in range(1, 11)]
    pair = next(p for p in data.derived if data.status(*p) == TRADING)
    how = data.derived[pair]
    source = data.source(*how.source, "1h")
    rows = data.candles(*pair, "1h")
    assert isinstance(rows, Synthetic)
    assert rows.source is source and np.shares_memory(rows.ts, source.ts)  # never copied
    assert how.shift_ms % (7 * DAY_MS) == 0 and how.shift_ms > 0
    shift = how.shift_ms // H
    values, _ = rows.block(100, 103)
    want = source.ohlcv[100 + shift:103 + shift] * ([how.price] * 4
                                                    + [how.quote_volume / how.price])
    np.testing.assert_allclose(values, want)
    last, _ = rows.block(len(rows.ts) - 1, len(rows.ts))  # rolled round at the end
    np.testing.assert_allclose(last[0, 3], source.ohlcv[shift - 1, 3] * how.price)
    assert data.candles(*pair, "4h") is None  # its source has no 4h file either


def test_the_seed_decides_every_synthetic_market_and_the_shares_their_fates():
    assert derived().derived == derived().derived
    assert derived().derived != derived(seed=4).derived
    fates = [how.status for how in derived(markets=102, delisted=0.05, halted=0.1)
             .derived.values()]
    assert (fates.count(DELISTED), fates.count(HALTED), fates.count(TRADING)) == (5, 10, 85)
    for how in derived().derived.values():
        ended = how.status != TRADING
        assert (how.end_ms is not None) == ended
        assert not ended or NOW - 60 * DAY_MS <= how.end_ms <= NOW - DAY_MS


@pytest.mark.parametrize(("config", "message"), [
    (dict(markets=1), "--markets 1 is fewer than the 2 markets of the data folder"),
    (dict(markets=0), "--markets must be between 1 and 10,000, not 0"),
    (dict(markets=9, delisted=0.7, halted=0.4), "add up to more than every synthetic market"),
    (dict(markets=9, halted=1.5), "--halted must be a share between 0 and 1, not 1.5"),
])
def test_impossible_universes_are_refused_in_one_line(config, message):
    with pytest.raises(VolcastError, match=message), \
            running(SimulatorConfig(sample_dir(), **config)):
        pass


def test_delisted_markets_break_and_halted_ones_trade_without_candles():
    with running(SimulatorConfig(sample_dir(), markets=12, delisted=0.2, halted=0.2, seed=3,
                                 now_ms=NOW, speed=0.0)) as sim:
        data = derived()
        _, info = get(f"{sim.url}/api/v3/exchangeInfo")
        status = {s["baseAsset"]: s["status"] for s in info["symbols"]}
        for (base, _), how in data.derived.items():
            assert status[base] == ("BREAK" if how.status == DELISTED else "TRADING")
            _, rows = get(f"{sim.url}/api/v3/klines?symbol={base}USDT&interval=1h")
            if how.end_ms is None:
                assert rows[-1][0] == NOW - H
            else:
                assert rows[-1][0] < how.end_ms <= rows[-1][0] + H
                _, ticker = get(f"{sim.url}/api/v3/ticker/24hr?symbol={base}USDT")
                assert (ticker["volume"], ticker["quoteVolume"], ticker["count"]) == (
                    "0.0", "0.0", 0)


def test_tickers_are_the_candles_of_the_24_hours_before_the_clock():
    with running(SimulatorConfig(sample_dir(), markets=6, now_ms=NOW - H // 2,
                                 speed=0.0)) as sim:
        _, ticker = get(f"{sim.url}/api/v3/ticker/24hr?symbol=BTCUSDT")
        _, rows = get(f"{sim.url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=25")
        _, listed = get(f'{sim.url}/api/v3/ticker/24hr?symbols=["ETHUSDT","XA01USDT"]')
        _, every = get(f"{sim.url}/api/v3/ticker/24hr")
        assert get(f"{sim.url}/api/v3/ticker/24hr?symbol=NOPEUSDT") == (
            400, {"code": -1121, "msg": "Invalid symbol."})
    window = rows[1:]  # 23 closed candles and the open one, its volume half served
    assert rows[-1][0] == NOW - H and float(rows[-1][5]) > 0
    volume = sum(float(r[5]) for r in window)
    quote = sum(float(r[5]) * (float(r[2]) + float(r[3]) + float(r[4])) / 3 for r in window)
    assert float(ticker["volume"]) == pytest.approx(volume, rel=1e-12)
    assert float(ticker["quoteVolume"]) == pytest.approx(quote, rel=1e-12)
    assert (ticker["openPrice"], ticker["lastPrice"]) == (window[0][1], window[-1][4])
    assert [t["symbol"] for t in listed] == ["ETHUSDT", "XA01USDT"]
    assert len(every) == 6


def universe_on(dialect: str) -> tuple[tuple[str, ...], dict[str, float]]:
    config = SimulatorConfig(sample_dir(), dialect=dialect, venue="binance", markets=12,
                             delisted=0.2, halted=0.2, seed=3, now_ms=NOW, speed=0.0)

    async def chosen():
        async with ExchangeClient(dialect, url=sim.url, rate_limit=False) as client:
            return await select(client, Universe(5, "USDT"))

    with running(config) as sim:
        selection = asyncio.run(chosen())
    return selection.symbols, dict(selection.quote_volumes)


def test_ccxt_reads_the_same_universe_from_binances_and_krakens_tickers():
    binance, kraken = universe_on("binance"), universe_on("kraken")
    assert binance[0] == kraken[0] and len(binance[0]) == 5
    for symbol, volume in binance[1].items():
        assert kraken[1][symbol] == pytest.approx(volume, rel=1e-9)
