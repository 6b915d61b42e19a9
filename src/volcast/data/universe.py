"""An exchange's universe: its top markets by 24 h quote volume, from ccxt's tickers.

What an operations team means by "the exchange" is the spot markets quoted in one currency
that actually trade, ranked by what they traded in the last 24 h (quote volumes of different
quote currencies do not compare, hence one quote). Markets the exchange lists as not trading
(delisted: ccxt's ``active`` is false) and those that traded nothing in 24 h (halted) are left
out and named, so that a report says why a familiar market is missing.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from volcast.data.exchange import ExchangeClient
from volcast.errors import VolcastError

SHOWN = 8
"""Markets named in one line before the rest are only counted."""


@dataclass(frozen=True)
class Universe:
    """The ``top`` spot markets quoted in ``quote`` with the most 24 h quote volume."""

    top: int
    quote: str

    def __str__(self) -> str:
        return f"top {self.top} {self.quote} markets"


@dataclass(frozen=True)
class Selection:
    """What a universe holds on one exchange now: ``symbols`` best first (with their 24 h
    quote volumes), how many spot markets of the quote it lists, and those left out."""

    exchange: str
    universe: Universe
    symbols: tuple[str, ...]
    quote_volumes: Mapping[str, float]
    listed: int
    delisted: tuple[str, ...]
    halted: tuple[str, ...]

    def describe(self) -> str:
        """One line: what was chosen and what was left out, and why."""
        text = (f"{self.exchange} {self.universe}: {len(self.symbols):,} chosen of "
                f"{self.listed:,} spot markets quoted in {self.universe.quote}")
        if self.delisted:
            text += f"; left out, not trading (delisted): {named(self.delisted)}"
        if self.halted:
            text += f"; left out, no volume in 24 h (halted): {named(self.halted)}"
        return text


def named(symbols: Iterable[str]) -> str:
    """The first SHOWN symbols, and how many in all when there are more."""
    symbols = list(symbols)
    shown = ", ".join(symbols[:SHOWN])
    return shown + (f" ... ({len(symbols):,} in all)" if len(symbols) > SHOWN else "")


def quote_volume(ticker: Mapping[str, Any]) -> float:
    """A ticker's 24 h volume in the quote currency; where the exchange reports only the base
    volume, base x VWAP (else x the last price). 0 when neither is known."""
    value = ticker.get("quoteVolume")
    if value is None:
        base = ticker.get("baseVolume")
        price = ticker.get("vwap") or ticker.get("last")
        value = None if base is None or price is None else base * price
    value = float(value) if value is not None else 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def rank(exchange: str, markets: Iterable[Mapping[str, Any]],
         tickers: Mapping[str, Mapping[str, Any]], universe: Universe) -> Selection:
    """The universe from ``ExchangeClient.markets()`` and ``tickers()``: spot markets of the
    quote, trading, with volume in 24 h, ranked by quote volume (ties by symbol, so a
    selection is reproducible)."""
    quote = universe.quote.upper()
    spot = [m for m in markets if m["type"] == "spot" and str(m["quote"]).upper() == quote]
    if not spot:
        raise VolcastError(f"{exchange} lists no spot markets quoted in {universe.quote} "
                           f"(`volcast symbols -e {exchange}` lists its markets)")
    delisted = tuple(m["symbol"] for m in spot if m.get("active") is False)
    volumes = {m["symbol"]: quote_volume(tickers.get(m["symbol"], {})) for m in spot
               if m.get("active") is not False}
    halted = tuple(sorted(s for s, v in volumes.items() if v == 0))
    ranked = sorted((s for s, v in volumes.items() if v > 0), key=lambda s: (-volumes[s], s))
    chosen = tuple(ranked[:universe.top])
    return Selection(exchange, universe, chosen, {s: volumes[s] for s in chosen}, len(spot),
                     delisted, halted)


async def select(client: ExchangeClient, universe: Universe) -> Selection:
    """The universe on the exchange now: its markets (loaded when the client opened) and one
    tickers request."""
    return rank(client.id, client.markets(), await client.tickers(), universe)
