"""Kraken's public market-data REST dialect: Time, Assets, AssetPairs, OHLC and Ticker.

Kraken's OHLC endpoint is the awkward one users meet: whatever ``since`` asks for, it answers
only from the newest 720 candles (the one in progress included), times in seconds. The
simulator keeps that rule so the sync loop is tested against an exchange that ignores history.
A delisted market is listed with status ``cancel_only`` (ccxt: ``active`` false). The Ticker's
"today" figures are the last 24 h's, as are its 24 h ones.
"""

from collections.abc import Callable
from email.utils import formatdate

import numpy as np
from aiohttp import web

from volcast.simulator.market_data import DELISTED, DayStats, MarketData

WINDOW = 720
INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d",
             10080: "1w", 21600: "15d"}
_LEGACY = {"BTC": "XXBT", "ETH": "XETH", "DOGE": "XXDG", "LTC": "XLTC", "XRP": "XXRP",
           "USD": "ZUSD", "EUR": "ZEUR", "GBP": "ZGBP", "JPY": "ZJPY", "CAD": "ZCAD"}
_ALTNAMES = {"BTC": "XBT", "DOGE": "XDG"}


def asset_id(code: str) -> str:
    return _LEGACY.get(code, code)


def altname(code: str) -> str:
    return _ALTNAMES.get(code, code)


def pair_id(base: str, quote: str) -> str:
    """Kraken's pair ids: legacy X/Z asset ids joined for old pairs (XXBTZUSD), else altnames
    (XBTUSDT)."""
    if base in _LEGACY and quote in _LEGACY:
        return asset_id(base) + asset_id(quote)
    return altname(base) + altname(quote)


def _ok(result: object) -> web.Response:
    return web.json_response({"error": [], "result": result})


def _fail(message: str) -> web.Response:
    return web.json_response({"error": [message]})


def _ticker(day: DayStats) -> dict[str, object]:
    """One pair's Ticker entry; ccxt reads the quote volume as v[1] x p[1] (the 24 h VWAP)."""
    last, vwap = repr(day.last), repr(day.quote_volume / day.volume if day.volume else 0.0)
    volume = repr(day.volume)
    return {"a": [last, "1", "1.000"], "b": [last, "1", "1.000"], "c": [last, "0.0"],
            "v": [volume, volume], "p": [vwap, vwap], "t": [day.trades, day.trades],
            "l": [repr(day.low)] * 2, "h": [repr(day.high)] * 2, "o": repr(day.open)}


class KrakenDialect:
    """Routes answering as api.kraken.com's public endpoints would."""

    def __init__(self, data: MarketData, now: Callable[[], int]) -> None:
        self.data = data
        self.now = now
        self.pairs = {pair_id(b, q): (b, q) for b, q in data.pairs}
        self.pairs.update({altname(b) + altname(q): (b, q) for b, q in data.pairs})

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/0/public/Time", self.time), web.get("/0/public/Assets", self.assets),
                web.get("/0/public/AssetPairs", self.asset_pairs),
                web.get("/0/public/OHLC", self.ohlc), web.get("/0/public/Ticker", self.ticker)]

    async def time(self, request: web.Request) -> web.Response:
        seconds = self.now() // 1000
        return _ok({"unixtime": seconds, "rfc1123": formatdate(seconds, usegmt=True)})

    async def assets(self, request: web.Request) -> web.Response:
        codes = sorted({c for pair in self.data.pairs for c in pair})
        return _ok({asset_id(c): {"aclass": "currency", "altname": altname(c), "decimals": 10,
                                  "display_decimals": 5, "status": "enabled"} for c in codes})

    async def asset_pairs(self, request: web.Request) -> web.Response:
        return _ok({pair_id(b, q): {
            "altname": altname(b) + altname(q), "wsname": f"{altname(b)}/{altname(q)}",
            "aclass_base": "currency", "base": asset_id(b), "aclass_quote": "currency",
            "quote": asset_id(q), "lot": "unit", "cost_decimals": 5, "pair_decimals": 2,
            "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
            "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]], "fee_volume_currency": "ZUSD",
            "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001", "costmin": "0.5",
            "tick_size": "0.01",
            "status": "cancel_only" if self.data.status(b, q) == DELISTED else "online"}
            for b, q in self.data.pairs})

    async def ticker(self, request: web.Request) -> web.Response:
        """24 h statistics of the pairs asked for (``pair``: comma-separated), all without."""
        asked = request.query.get("pair")
        wanted = asked.split(",") if asked else [pair_id(b, q) for b, q in self.data.pairs]
        if any(pair not in self.pairs for pair in wanted):
            return _fail("EQuery:Unknown asset pair")
        now = self.now()
        return _ok({pair_id(*self.pairs[p]): _ticker(self.data.day_stats(*self.pairs[p], now))
                    for p in wanted})

    async def ohlc(self, request: web.Request) -> web.Response:
        pair = request.query.get("pair")
        if pair not in self.pairs:
            return _fail("EQuery:Unknown asset pair")
        try:
            interval = int(request.query.get("interval", "1"))
            since_s = int(float(request.query.get("since", "0")))
        except ValueError:
            return _fail("EGeneral:Invalid arguments")
        if interval not in INTERVALS:
            return _fail("EGeneral:Invalid arguments")
        base, quote = self.pairs[pair]
        candles = self.data.candles(base, quote, INTERVALS[interval])
        tf_ms = interval * 60_000
        now = self.now()
        rows: list[list[object]] = []
        if candles is not None:
            window_start = (now // tf_ms - WINDOW + 1) * tf_ms  # the newest 720 slots only
            lo = int(np.searchsorted(candles.ts, max(window_start, since_s * 1000 + 1), "left"))
            hi = int(np.searchsorted(candles.ts, now, "right"))
            rows = [[t // 1000, *(repr(x) for x in (o, h, low, c, (h + low + c) / 3, v)), n]
                    for t, o, h, low, c, v, n in candles.served(lo, hi, tf_ms, now)]
        last = rows[-1][0] if rows else since_s
        return _ok({pair_id(base, quote): rows, "last": last})
