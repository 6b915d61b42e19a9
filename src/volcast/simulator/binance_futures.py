"""Binance's USD-M futures market data, as ccxt's funding-rate and open-interest history calls
ask for it: ``/fapi/v1/exchangeInfo`` (a linear perpetual for each USDT pair of the folder's
own files; synthetic markets have none), ``/fapi/v1/fundingRate`` and
``/futures/data/openInterestHist``, with Binance's parameter rules.

The values are SYNTHETIC: shared/data holds no derivatives history, so they are derived,
deterministically, from the pair's spot hourly candles, only so that downloads can be tested
offline; they say nothing about real funding or open interest.
- funding rate, every 8 hours (00:00, 08:00, 16:00 UTC): 0.0001 + 0.05 x the log return of
  the 8 hours before, clipped to +-0.003;
- open interest at each period's start T: 10 x the mean base volume of the 24 hourly candles
  closed by T (``sumOpenInterest``), times the last close (``sumOpenInterestValue``).
Like Binance, open-interest history reaches back 30 days from the exchange's clock only.
"""

from collections.abc import Callable

import numpy as np
from aiohttp import web

from volcast.data.timeframe import DAY_MS, timeframe_ms
from volcast.simulator.market_data import Candles, MarketData

HOUR_MS = 3_600_000
FUNDING_EVERY_MS = 8 * HOUR_MS
FUNDING_LIMIT = (100, 1000)
"""(default, most) rows of one fundingRate answer."""
OPEN_INTEREST_LIMIT = (30, 500)
OPEN_INTEREST_DAYS = 30
PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
SETTLED_IN = ("USDT", "USDC")
"""Quote currencies of Binance's USD-M perpetuals."""


def _error(code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=400)


def _perpetual_info(base: str, quote: str) -> dict[str, object]:
    return {
        "symbol": base + quote, "pair": base + quote, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "baseAsset": base, "quoteAsset": quote, "marginAsset": quote, "pricePrecision": 2,
        "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "4529764",
             "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"}],
        "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC"]}


def _closed_by(candles: Candles, times: np.ndarray, back: int = 0) -> np.ndarray:
    """Index of the newest hourly candle closed by each time, ``back`` candles earlier (at
    least the first)."""
    return np.maximum(np.searchsorted(candles.ts + HOUR_MS, times, "right") - 1 - back, 0)


def funding_rates(candles: Candles, times: np.ndarray) -> np.ndarray:
    close = candles.ohlcv[:, 3]
    change = np.log(close[_closed_by(candles, times)] / close[_closed_by(candles, times, 8)])
    return np.round(np.clip(0.0001 + 0.05 * change, -0.003, 0.003), 8)


def open_interest(candles: Candles, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sumOpenInterest, sumOpenInterestValue) at each time."""
    last = _closed_by(candles, times)
    volume = np.concatenate([[0.0], np.cumsum(candles.ohlcv[:, 4])])
    first = np.maximum(last - 23, 0)
    amount = np.round(10 * (volume[last + 1] - volume[first]) / (last + 1 - first), 3)
    return amount, np.round(amount * candles.ohlcv[last, 3], 8)


def _window(query: dict[str, str], limits: tuple[int, int], now: int, step: int, first: int,
            oldest: int | None = None) -> tuple[np.ndarray, None] | tuple[None, web.Response]:
    """The grid times (multiples of ``step`` from ``first``) an answer holds, as Binance picks
    them: from startTime (at most ``limit``), else the newest ``limit`` up to endTime or now;
    a startTime before ``oldest`` is refused."""
    try:
        limit = int(query.get("limit", limits[0]))
        start = int(query["startTime"]) if "startTime" in query else None
        end = min(int(query.get("endTime", now)), now)
    except ValueError:
        return None, _error(-1100, "Illegal characters found in a parameter.")
    if not 1 <= limit <= limits[1]:
        return None, _error(-1130, "Data sent for parameter 'limit' is not valid.")
    if start is not None and oldest is not None and start < oldest:
        return None, _error(-1130, "Data sent for parameter 'startTime' is not valid.")
    origin = -(-first // step) * step
    hi = end // step * step
    lo = max(origin, -(-start // step) * step if start is not None
             else hi - (limit - 1) * step)
    return np.arange(lo, hi + 1, step, dtype=np.int64)[:limit], None


class BinanceFutures:
    """The USD-M routes over the spot hourly candles of one venue."""

    def __init__(self, data: MarketData, now: Callable[[], int]) -> None:
        self.data, self.now = data, now
        self.perpetuals = {base + quote: (base, quote) for base, quote in data.file_pairs
                           if quote in SETTLED_IN and data.source(base, quote, "1h") is not None}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/fapi/v1/exchangeInfo", self.exchange_info),
                web.get("/fapi/v1/fundingRate", self.funding_rate),
                web.get("/futures/data/openInterestHist", self.open_interest_hist)]

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({"timezone": "UTC", "serverTime": self.now(), "assets": [],
                                  "symbols": [_perpetual_info(*p)
                                              for p in self.perpetuals.values()]})

    def _candles(self, symbol: str | None) -> Candles | None:
        pair = self.perpetuals.get(symbol or "")
        return None if pair is None else self.data.source(*pair, "1h")

    async def funding_rate(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        candles = self._candles(symbol)
        if candles is None:
            return _error(-1121, "Invalid symbol.")
        times, refused = _window(dict(request.query), FUNDING_LIMIT, self.now(),
                                 FUNDING_EVERY_MS, int(candles.ts[0]) + 9 * HOUR_MS)
        if refused is not None:
            return refused
        return web.json_response([
            {"symbol": symbol, "fundingTime": int(t), "fundingRate": f"{r:.8f}",
             "markPrice": f"{float(candles.ohlcv[i, 3]):.8f}"}
            for t, r, i in zip(times, funding_rates(candles, times),
                               _closed_by(candles, times), strict=True)])

    async def open_interest_hist(self, request: web.Request) -> web.Response:
        query = request.query
        candles = self._candles(query.get("symbol"))
        if candles is None:
            return _error(-1121, "Invalid symbol.")
        if query.get("period") not in PERIODS:
            return _error(-1130, "Data sent for parameter 'period' is not valid.")
        now = self.now()
        oldest = now - OPEN_INTEREST_DAYS * DAY_MS
        times, refused = _window(dict(query), OPEN_INTEREST_LIMIT, now,
                                 timeframe_ms(query["period"]), max(int(candles.ts[0]), oldest),
                                 oldest)
        if refused is not None:
            return refused
        amount, value = open_interest(candles, times)
        return web.json_response([
            {"symbol": query["symbol"], "sumOpenInterest": f"{a:.3f}",
             "sumOpenInterestValue": f"{v:.8f}", "timestamp": int(t)}
            for t, a, v in zip(times, amount, value, strict=True)])
