"""Perpetual-market covariates through ccxt: funding-rate history (``funding_rate``, public at
its funding time) and open-interest history (``open_interest``, public when its period ends),
stored under the perpetual's scope (``binance:BTC/USDT:USDT``).

The same guarantees as candles (``sync.py``): pages follow the newest time each page returned,
never the wall clock, and stop when the exchange has nothing newer; each page is validated and
written in its own transaction as it arrives, so an interrupted run keeps what it stored and
the next run (without --since) asks only for what is newer than the newest stored value; ccxt's
network faults are retried by ``ExchangeClient.call`` with the [fetch] backoff.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from volcast.config import FetchSettings
from volcast.data.covariates import publication, table
from volcast.data.covariates.catalog import market_scope, perpetual
from volcast.data.exchange import ExchangeClient, RetryPolicy
from volcast.data.store import CandleStore
from volcast.data.timeframe import format_time, timeframe_ms
from volcast.errors import FetchFailed, VolcastError

FUNDING, OPEN_INTEREST = "funding_rate", "open_interest"
Page = Callable[[int], Awaitable[list[tuple[int, float]]]]


@dataclass
class Fetched:
    """What one run stored for one series: ``added`` new values over ``pages`` calls; the
    series' first and last stored times after it."""

    name: str
    scope: str
    added: int = 0
    pages: int = 0
    first: int | None = None
    last: int | None = None


@dataclass(frozen=True)
class Plan:
    """One series to download: ``fetch_page(cursor)`` asks from ``cursor`` on; values dated
    in [start, stop) on a grid of ``step_ms`` are kept, each public by ``rule``."""

    name: str
    scope: str
    source: str
    fetch_page: Page
    rule: Callable[[np.ndarray], np.ndarray]
    step_ms: int
    start: int
    stop: int


def _write(store: CandleStore, plan: Plan, rows: list[tuple[int, float]]) -> int:
    ts = np.array([t for t, _ in rows], dtype=float)
    values = np.array([np.nan if v is None else v for _, v in rows], dtype=float)
    return table.write(store, [table.batch(
        plan.name, plan.scope, plan.source, ts, values, plan.rule,
        f"{plan.source} {plan.name} of {plan.scope.partition(':')[2]}")]).new


async def _page_through(store: CandleStore, plan: Plan, done: Fetched) -> None:
    """Ask page after page from ``plan.start``, advancing past the newest time each returned."""
    cursor = plan.start
    while cursor < plan.stop:
        rows = await plan.fetch_page(cursor)
        done.pages += 1
        keep = sorted({t: (t, v) for t, v in rows if cursor <= t < plan.stop}.values())
        if keep:
            done.added += _write(store, plan, keep)
        newest = max((t for t, _ in rows), default=None)
        if newest is None or newest < cursor:
            break
        cursor = newest + plan.step_ms


def _start(store: CandleStore, name: str, scope: str, since: int | None,
           step_ms: int, oldest: int | None) -> int:
    """--since, else just after the newest stored value; never before what the exchange
    answers for (``oldest``, on the period grid)."""
    last = table.newest(store, name, scope)
    if since is None and last is None:
        raise VolcastError(f"nothing stored of {name} for {scope} yet: give --since to start")
    start = since if since is not None else last + step_ms
    if oldest is not None and start < oldest:
        start = -(-oldest // step_ms) * step_ms
    return start


async def _plan(client: ExchangeClient, store: CandleStore, name: str, symbol: str,
                timeframe: str | None, since: int | None) -> Plan:
    market = client.perpetual(symbol, perpetual(symbol))
    scope = market_scope(client.id, market)
    now = await client.server_time()
    if name == FUNDING:
        limit = client.derivatives_page("funding")
        return Plan(name, scope, client.id,
                    lambda cursor: client.fetch_funding(market, cursor, limit),
                    publication.funding, 1, _start(store, name, scope, since, 1, None), now + 1)
    period = timeframe_ms(timeframe or "1h")
    limit = client.derivatives_page("open_interest")
    return Plan(name, scope, client.id,
                lambda cursor: client.fetch_open_interest(market, timeframe, cursor, limit),
                lambda ts: publication.open_interest(ts, period), period,
                _start(store, name, scope, since, period, client.oldest_open_interest(now)),
                now - period + 1)


def _check_period(store: CandleStore, scope: str, timeframe: str) -> None:
    """One period per stored open-interest series (its publication lag is the period)."""
    stored = table.read(store, OPEN_INTEREST, scope)
    if stored.empty:
        return
    lag = int((stored["published_ms"] - stored["ts"]).iloc[-1])
    if lag != timeframe_ms(timeframe):
        raise VolcastError(f"open_interest of {scope} is stored at {lag // 60_000} minutes a "
                           f"period, not {timeframe}; fetch it with the same -t")


async def fetch(exchange_id: str, symbol: str, store: CandleStore, settings: FetchSettings,
                name: str, timeframe: str | None = None, since: int | None = None,
                url: str | None = None) -> Fetched:
    """Download ``name`` (FUNDING or OPEN_INTEREST, the latter per ``timeframe``) of the
    perpetual of ``symbol`` into the store; see the module docstring."""
    retry = RetryPolicy(settings.retries, settings.backoff_s, settings.backoff_max_s)
    async with ExchangeClient(exchange_id, url=url, timeout_ms=settings.timeout_ms, retry=retry,
                              rate_limit=settings.rate_limit) as client:
        plan = await _plan(client, store, name, symbol, timeframe, since)
        if name == OPEN_INTEREST:
            _check_period(store, plan.scope, timeframe or "1h")
        done = Fetched(name, plan.scope)
        try:
            await _page_through(store, plan, done)
        except FetchFailed as exc:
            last = table.newest(store, name, plan.scope)
            raise FetchFailed(f"{exc}; stored up to {format_time(last)} UTC ({done.added} new "
                              "this run); run the same command again to resume") from None
    stored = table.read(store, name, plan.scope)["ts"]
    done.first, done.last = (int(stored.iloc[0]), int(stored.iloc[-1])) if len(stored) else (
        None, None)
    return done
