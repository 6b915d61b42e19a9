"""Binance's public market-data REST dialect: ping, time, exchangeInfo, klines and 24 h tickers
(spot), with Binance's parameter rules and error bodies; USD-M perpetuals
(``binance_futures.py``): their funding and open interest are synthetic, and their klines are
the spot pair's (shared/data holds no futures candles). COIN-M futures exchangeInfo answers
with no symbols. A delisted market is listed with status BREAK (ccxt: ``active`` false), as
Binance lists its delisted pairs."""

import json
from collections.abc import Callable

import numpy as np
from aiohttp import web

from volcast.data.timeframe import timeframe_ms
from volcast.simulator.binance_futures import BinanceFutures
from volcast.simulator.market_data import DELISTED, DayStats, MarketData

INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
             "3d", "1w", "1M"]
DEFAULT_LIMIT, MAX_LIMIT = 500, 1000


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _symbol_info(base: str, quote: str, status: str) -> dict[str, object]:
    return {
        "symbol": base + quote, "status": "BREAK" if status == DELISTED else "TRADING",
        "baseAsset": base, "baseAssetPrecision": 8,
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


def _ticker(symbol: str, day: DayStats, now: int) -> dict[str, object]:
    """One market's /api/v3/ticker/24hr answer, as ccxt's binance parses it (spot: it has
    ``bidQty``); the book is the last price, Binance's ids -1 when nothing traded."""
    change = day.last - day.open
    return {
        "symbol": symbol, "priceChange": _number(change),
        "priceChangePercent": f"{100 * change / day.open if day.open else 0.0:.3f}",
        "weightedAvgPrice": _number(day.quote_volume / day.volume if day.volume else 0.0),
        "prevClosePrice": _number(day.open), "lastPrice": _number(day.last), "lastQty": "0.0",
        "bidPrice": _number(day.last), "bidQty": "1.0", "askPrice": _number(day.last),
        "askQty": "1.0", "openPrice": _number(day.open), "highPrice": _number(day.high),
        "lowPrice": _number(day.low), "volume": _number(day.volume),
        "quoteVolume": _number(day.quote_volume), "openTime": now - 86_400_000,
        "closeTime": now, "firstId": 0 if day.trades else -1,
        "lastId": day.trades - 1 if day.trades else -1, "count": day.trades}


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
            web.get("/api/v3/ticker/24hr", self.ticker_24hr),
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

    def _wanted(self, request: web.Request) -> list[str] | web.Response:
        """The ``symbol`` or ``symbols`` (a JSON list) asked for, every one without either;
        Binance's error when one is unknown."""
        wanted = list(self.symbols)
        try:
            if "symbol" in request.query:
                wanted = [request.query["symbol"]]
            elif "symbols" in request.query:
                wanted = [str(s) for s in json.loads(request.query["symbols"])]
        except (ValueError, TypeError):
            return _error(400, -1100, "Illegal characters found in parameter 'symbols'.")
        if any(s not in self.symbols for s in wanted):
            return _error(400, -1121, "Invalid symbol.")
        return wanted

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted = self._wanted(request)
        if isinstance(wanted, web.Response):
            return wanted
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [_symbol_info(*self.symbols[s], self.data.status(*self.symbols[s]))
                        for s in wanted],
        })

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """24 h statistics from the candles of the 24 h before the exchange's clock (one
        object for ``symbol``, a list otherwise)."""
        wanted = self._wanted(request)
        if isinstance(wanted, web.Response):
            return wanted
        now = self.now()
        tickers = [_ticker(s, self.data.day_stats(*self.symbols[s], now), now) for s in wanted]
        return web.json_response(tickers[0] if "symbol" in request.query else tickers)

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
