"""The exchange wrapper: the one module that imports ccxt.

ccxt's errors are translated here once: the ``NetworkError`` family and malformed responses mean
"retry with backoff", any other ``ExchangeError`` is a clear one-line failure, and so is a 404
(ccxt files it under ``ExchangeNotAvailable``, but no retry finds a path that is not there: a
wrong --exchange-url or another exchange's server). Each exchange's
page size comes from ccxt's ``features`` table, overridden where users found it wrong.
"""

import asyncio
import difflib
import re
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from volcast.data.retry import RetryPolicy
from volcast.data.store import refuse_total
from volcast.data.timeframe import timeframe_ms
from volcast.errors import FetchFailed, VolcastError, one_line

__all__ = ["ExchangeClient", "Refused", "RetryPolicy", "check_exchange_id", "list_markets"]

RETRYABLE = (ccxt.NetworkError, ccxt.BadResponse)
_NOT_FOUND = re.compile(r"\S+ [A-Z]+ \S+ 404 ")
"""ccxt's message for an HTTP status it files as an error: 'id METHOD url CODE reason body'."""
DEFAULT_PAGE_LIMIT = 500
PAGE_LIMIT_OVERRIDES = {"okx": 100}
"""Candles per call where ccxt's ``features`` overstates what history requests return."""
DERIVATIVES_PAGE = {"binance": {"funding": 1000, "open_interest": 500}}
"""Rows per funding-rate / open-interest history call where the exchange allows more than
DEFAULT_DERIVATIVES_PAGE (ccxt's ``features`` does not say)."""
DEFAULT_DERIVATIVES_PAGE = 100
OPEN_INTEREST_DAYS = {"binance": 30}
"""Exchanges whose open-interest history reaches back only this many days from now (Binance
refuses an older startTime)."""
RECENT_ONLY = {"kraken": 720}
"""Exchanges whose OHLCV answers only their newest N candles whatever ``since`` asks: that an
answer starts later than asked says nothing about the candles before that window."""


class Refused(VolcastError):
    """The exchange answered a call with an error that retrying cannot mend (an unknown or
    delisted market, a parameter it rejects): one line naming the call."""


def _strict_class(exchange_id: str) -> type:
    """ccxt hands a truncated JSON body to the parser as a string, which can read as an empty
    page; this subclass raises BadResponse instead, so the page is retried, not lost."""
    base = getattr(ccxt_async, exchange_id)

    def parse_json(self: Any, body: str) -> Any:
        parsed = base.parse_json(self, body)
        if parsed is None and base.is_json_encoded_object(body):
            raise ccxt.BadResponse(f"{self.id}: malformed JSON response ({len(body)} bytes)")
        return parsed

    return type(f"Strict{base.__name__}", (base,), {"parse_json": parse_json})


def _redirect(urls: Any, base_url: str) -> Any:
    """Point every REST URL of ccxt's ``urls['api']`` at base_url, keeping each path."""
    if isinstance(urls, dict):
        return {name: _redirect(value, base_url) for name, value in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        parts = urlsplit(urls)
        return base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    return urls


def check_exchange_id(exchange_id: str) -> None:
    """Refuse names ccxt does not know, so 'Binance' and 'binance' never become two series."""
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise VolcastError(f"unknown exchange '{exchange_id}'{hint} (ccxt knows "
                           f"{len(ccxt.exchanges)}, e.g. binance, kraken, okx, coinbase)")


class ExchangeClient:
    """An async ccxt exchange with markets loaded, validation and retried calls."""

    def __init__(self, exchange_id: str, *, url: str | None = None, timeout_ms: int = 10_000,
                 retry: RetryPolicy | None = None, rate_limit: bool = True) -> None:
        check_exchange_id(exchange_id)
        self.id = exchange_id
        self.retry = retry or RetryPolicy()
        self._ex = _strict_class(exchange_id)({"enableRateLimit": rate_limit,
                                               "timeout": timeout_ms})
        if not self._ex.has.get("fetchOHLCV"):
            raise VolcastError(f"exchange '{exchange_id}' offers no candles (fetchOHLCV) in ccxt")
        if url:
            self._ex.urls["api"] = _redirect(self._ex.urls["api"], url)

    async def __aenter__(self) -> "ExchangeClient":
        try:
            await self.call("load markets", self._ex.load_markets)
        except BaseException:
            await self._ex.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._ex.close()

    async def call(self, what: str, fn: Any, *args: Any) -> Any:
        """Run one ccxt call, retrying network faults; other exchange errors fail clearly."""
        for attempt in range(self.retry.retries + 1):
            try:
                return await fn(*args)
            except RETRYABLE as exc:
                if isinstance(exc, ccxt.ExchangeNotAvailable) and _NOT_FOUND.match(str(exc)):
                    raise Refused(f"{self.id} {what}: {one_line(str(exc))} (no such path: is "
                                  f"the address a server of {self.id}'s API?)") from None
                if attempt == self.retry.retries:
                    raise FetchFailed(f"{self.id} {what}: gave up after {attempt} retries "
                                      f"({type(exc).__name__}: {one_line(str(exc))})") from None
                await asyncio.sleep(self.retry.delay(attempt, self._retry_after()))
            except ccxt.BaseError as exc:
                raise Refused(f"{self.id} {what}: {one_line(str(exc))}") from None
        raise AssertionError("unreachable")

    def _retry_after(self) -> float | None:
        headers = self._ex.last_response_headers or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def check(self, symbol: str, timeframe: str) -> None:
        """Refuse a symbol or timeframe the exchange does not list, before anything downloads;
        an exchange's total (``*/USDT``) is built from the stored markets, never fetched."""
        refuse_total(self.id, symbol, timeframe, "fetched")
        if symbol not in self._ex.markets:
            raise VolcastError(f"{self.id} does not list symbol '{symbol}'{self._hint(symbol)}")
        known = list(self._ex.timeframes or {})
        if known and timeframe not in known:
            raise VolcastError(f"{self.id} has no timeframe '{timeframe}'; choose one of "
                               f"{', '.join(known)}")
        timeframe_ms(timeframe)

    def _hint(self, symbol: str) -> str:
        """Close matches (case aside), and what the exchange lists or how to see it."""
        listed = list(self._ex.symbols or [])
        by_upper = {s.upper(): s for s in listed}
        close = [by_upper[s] for s in difflib.get_close_matches(symbol.upper(), by_upper, n=5)]
        if len(listed) > 10:
            return ((f"; did you mean {', '.join(close)}?" if close else "")
                    + f" (`volcast symbols -e {self.id}` lists all {len(listed):,})")
        if close:
            return f"; did you mean {', '.join(close)}?"
        return f"; it lists {', '.join(listed) or 'nothing'}"

    def markets(self) -> list[dict[str, Any]]:
        """What the exchange lists: symbol, base, quote, settle (derivatives), type, active."""
        return [{"symbol": m["symbol"], "base": m["base"], "quote": m["quote"],
                 "settle": m.get("settle"), "type": m["type"], "active": m.get("active")}
                for m in sorted(self._ex.markets.values(), key=lambda m: m["symbol"])]

    def active(self, symbol: str) -> bool:
        """Whether the exchange lists the market as trading; ccxt's ``active`` is None where
        an exchange does not say, and that counts as trading."""
        market = self._ex.markets.get(symbol)
        return market is not None and market.get("active") is not False

    async def tickers(self) -> dict[str, dict[str, Any]]:
        """Every market's 24 h ticker (ccxt's ``fetch_tickers``: one request on Binance and
        Kraken), by symbol."""
        if not self._ex.has.get("fetchTickers"):
            raise VolcastError(f"{self.id} offers no tickers of all its markets in ccxt "
                               "(fetchTickers), so no top markets by volume")
        return dict(await self.call("24 h tickers", self._ex.fetch_tickers))

    def units(self, symbol: str) -> tuple[str, str]:
        """(base, quote) of a market as the exchange reports it: volume is counted in base,
        prices in quote (for a perpetual such as BTC/USDT:USDT too; settle aside)."""
        market = self._ex.markets[symbol]
        return str(market["base"]), str(market["quote"])

    def page_limit(self, symbol: str) -> int:
        """Most candles one fetchOHLCV call returns for this market."""
        if self.id in PAGE_LIMIT_OVERRIDES:
            return PAGE_LIMIT_OVERRIDES[self.id]
        market = self._ex.markets[symbol]
        features = self._ex.features or {}
        section = features.get(market["type"]) or {}
        if market["type"] != "spot":
            section = section.get("linear" if market.get("linear") else "inverse") or {}
        return int((section.get("fetchOHLCV") or {}).get("limit") or DEFAULT_PAGE_LIMIT)

    def oldest_answered(self, tf_ms: int, now: int) -> int | None:
        """The oldest open time the exchange answers candle requests for (None: any), so the
        sync loop never takes "not answered" for "no candles"."""
        window = RECENT_ONLY.get(self.id)
        return None if window is None else now - window * tf_ms

    async def server_time(self) -> int:
        """The exchange's clock in ms: candle closure is judged by it, not by ours."""
        if self._ex.has.get("fetchTime"):
            return int(await self.call("fetch time", self._ex.fetch_time))
        return int(time.time() * 1000)

    def perpetual(self, symbol: str, perpetual: str) -> str:
        """``perpetual`` (the perpetual of ``symbol`` the user named) if the exchange lists it
        as a swap; one line naming the perpetuals it lists otherwise."""
        market = self._ex.markets.get(perpetual)
        if market is not None and market.get("swap"):
            return perpetual
        listed = sorted(s for s, m in self._ex.markets.items() if m.get("swap"))
        shown = ", ".join(listed[:5]) + (f" ... ({len(listed):,})" if len(listed) > 5 else "")
        raise VolcastError(f"{self.id} lists no perpetual {perpetual} for {symbol}; its "
                           f"perpetuals: {shown or 'none'}")

    def derivatives_page(self, what: str) -> int:
        """Rows one funding ("funding") or open-interest ("open_interest") history call
        returns at most."""
        return DERIVATIVES_PAGE.get(self.id, {}).get(what, DEFAULT_DERIVATIVES_PAGE)

    def _offers(self, method: str, what: str) -> None:
        if not self._ex.has.get(method):
            raise VolcastError(f"{self.id} offers no {what} history in ccxt ({method})")

    async def fetch_funding(self, symbol: str, since: int, limit: int
                            ) -> list[tuple[int, float]]:
        """One page of (funding time ms, rate) from ``since`` on."""
        self._offers("fetchFundingRateHistory", "funding rate")
        rows = await self.call(f"{symbol} funding rates", self._ex.fetch_funding_rate_history,
                               symbol, since, limit)
        return [(row["timestamp"], row["fundingRate"]) for row in rows
                if row.get("timestamp") is not None]

    async def fetch_open_interest(self, symbol: str, timeframe: str, since: int, limit: int
                                  ) -> list[tuple[int, float]]:
        """One page of (period time ms, open interest in base units or contracts) from
        ``since`` on."""
        self._offers("fetchOpenInterestHistory", "open interest")
        rows = await self.call(f"{symbol} {timeframe} open interest",
                               self._ex.fetch_open_interest_history, symbol, timeframe, since,
                               limit)
        return [(row["timestamp"], row["openInterestAmount"]) for row in rows
                if row.get("timestamp") is not None]

    def oldest_open_interest(self, now: int) -> int | None:
        """The oldest time the exchange answers open-interest history for (None: any)."""
        days = OPEN_INTEREST_DAYS.get(self.id)
        return None if days is None else now - days * 86_400_000

    async def fetch_candles(self, symbol: str, timeframe: str, since: int, limit: int
                            ) -> list[list[float]]:
        """One page of [open time ms, open, high, low, close, volume] rows from ``since`` on."""
        rows = await self.call(f"{symbol} {timeframe} candles", self._ex.fetch_ohlcv,
                               symbol, timeframe, since, limit)
        return [row for row in rows if row[0] is not None and row[5] is not None]


async def list_markets(exchange_id: str, *, url: str | None = None, timeout_ms: int = 10_000,
                       retry: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """Every market an exchange lists (``ExchangeClient.markets``)."""
    async with ExchangeClient(exchange_id, url=url, timeout_ms=timeout_ms, retry=retry) as client:
        return client.markets()
