"""Binance's public market-data REST dialect: ping, time, exchangeInfo and klines (spot), with
Binance's parameter rules and error bodies; USD-M perpetuals (``binance_futures.py``): their
funding and open interest are synthetic, and their klines are the spot pair's (shared/data
holds no futures candles). COIN-M futures exchangeInfo answers with no symbols."""

import json
from collections.abc import Callable

import numpy as np
from aiohttp import web

from volcast.data.timeframe import timeframe_ms
from volcast.simulator.binance_futures import BinanceFutures
from volcast.simulator.market_data import MarketData

INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
             "3d", "1w", "1M"]
DEFAULT_LIMIT, MAX_LIMIT = 500, 1000


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _symbol_info(base: str, quote: str) -> dict[str, object]:
    return {
        "symbol": base + quote, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True,
        "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000000.00000000",
             "tickSize": "0.00000001"},
            {"filterType": "LOT_SIZE", "minQty": "0.00000001", "maxQty": "9000000.00000000",
             "stepSize": "0.00000001"},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
    }


def _number(value: float) -> str:
    return repr(float(value))


class BinanceDialect:
    """Routes for one venue's data, answering as api.binance.com would."""

    def __init__(self, data: MarketData, now: Callable[[], int]) -> None:
        self.data = data
        self.now = now
        self.symbols = {base + quote: (base, quote) for base, quote in data.pairs}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/ping", self.ping),
            web.get("/api/v3/time", self.time),
            web.get("/api/v3/exchangeInfo", self.exchange_info),
            web.get("/api/v3/klines", self.klines),
            web.get("/fapi/v1/klines", self.klines),
            web.get("/dapi/v1/exchangeInfo", self.no_symbols),
            *BinanceFutures(self.data, self.now).routes(),
        ]

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now()})

    async def no_symbols(self, request: web.Request) -> web.Response:
        return web.json_response({"timezone": "UTC", "serverTime": self.now(), "symbols": []})

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted = list(self.symbols)
        if "symbol" in request.query:
            wanted = [request.query["symbol"]]
        elif "symbols" in request.query:
            wanted = json.loads(request.query["symbols"])
        unknown = [s for s in wanted if s not in self.symbols]
        if unknown:
            return _error(400, -1121, "Invalid symbol.")
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [_symbol_info(*self.symbols[s]) for s in wanted],
        })

    async def klines(self, request: web.Request) -> web.Response:
        query = request.query
        symbol, interval = query.get("symbol"), query.get("interval")
        if symbol is None or interval is None:
            return _error(400, -1102, "Mandatory parameter was not sent, was empty/null, or "
                                      "malformed.")
        if symbol not in self.symbols:
            return _error(400, -1121, "Invalid symbol.")
        if interval not in INTERVALS:
            return _error(400, -1120, "Invalid interval.")
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            return _error(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        candles = self.data.candles(*self.symbols[symbol], interval)
        if candles is None:
            return web.json_response([])
        now = self.now()
        hi = int(np.searchsorted(candles.ts, min(now, end if end is not None else now), "right"))
        if start is not None:
            lo = int(np.searchsorted(candles.ts, start, "left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        tf_ms = timeframe_ms(interval)
        return web.json_response([
            [t, *map(_number, (o, h, low, c, v)), t + tf_ms - 1, "0", n, "0", "0", "0"]
            for t, o, h, low, c, v, n in candles.served(lo, hi, tf_ms, now)])
