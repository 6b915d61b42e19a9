"""The covariate names users type, what each one is and how to get it.

- market-wide (scope ''): ``fear_greed``, ``vix`` (CBOE close) and ``fred:SERIES`` (a FRED
  series with a publication rule, e.g. ``fred:DGS10``);
- per market (scope ``exchange:perpetual``): ``funding_rate`` and ``open_interest`` of the
  perpetual of a series' symbol;
- computed from the store's candles: ``market_volume``.
"""

from dataclasses import dataclass

from volcast.data.covariates.publication import fred
from volcast.data.store import SeriesKey
from volcast.errors import VolcastError

FRED_PREFIX = "fred:"
MARKET_VOLUME = "market_volume"
_HOWTO = {
    "fear_greed": "import it with `volcast covariates import --source fear_greed FILE` or fetch "
                  "it with `volcast covariates fetch fear_greed`",
    "vix": "import it with `volcast covariates import --source vix FILE` or fetch it with "
           "`volcast covariates fetch vix`",
    "funding_rate": "fetch it with `volcast covariates fetch funding -e {exchange} -s {symbol}`",
    "open_interest": "fetch it with `volcast covariates fetch open_interest -e {exchange} -s "
                     "{symbol} -t {timeframe}`",
    MARKET_VOLUME: "fetch or import other pairs of {exchange} {timeframe} (`volcast fetch -e "
                   "{exchange} -s OTHER/PAIR -t {timeframe}`)",
}
PER_MARKET = ("funding_rate", "open_interest")


@dataclass(frozen=True)
class Covariate:
    """One name as a user typed it: which store series it reads and how to get it."""

    name: str

    @classmethod
    def parse(cls, name: str) -> "Covariate":
        """A known name, or one line listing the known ones."""
        if name.startswith(FRED_PREFIX):
            fred(name.removeprefix(FRED_PREFIX))  # refuses a series with no rule
            return cls(name)
        if name in _HOWTO:
            return cls(name)
        raise VolcastError(f"unknown covariate '{name}'; choose from {', '.join(_HOWTO)} or "
                           f"{FRED_PREFIX}SERIES (e.g. fred:DGS10)")

    @property
    def per_market(self) -> bool:
        return self.name in PER_MARKET

    def howto(self, key: SeriesKey | None) -> str:
        """How to get the values this name reads, for ``key``'s market."""
        if self.name.startswith(FRED_PREFIX):
            return (f"fetch it with `volcast covariates fetch fred --series "
                    f"{self.name.removeprefix(FRED_PREFIX)}`")
        fields = {"exchange": "EXCHANGE", "symbol": "BASE/QUOTE", "timeframe": "1h"}
        if key is not None:
            fields = {"exchange": key.exchange, "symbol": key.symbol,
                      "timeframe": key.timeframe}
        return _HOWTO[self.name].format(**fields)


def perpetual(symbol: str) -> str:
    """The perpetual a spot symbol's per-market covariates come from: BASE/QUOTE ->
    BASE/QUOTE:QUOTE (a linear perpetual settled in the quote currency, as on Binance's USD-M
    futures); a derivative's own symbol stays as it is."""
    return symbol if ":" in symbol else f"{symbol}:{symbol.partition('/')[2]}"


def market_scope(exchange: str, symbol: str) -> str:
    """The scope per-market covariates of a market are stored under: ``exchange:perpetual``."""
    return f"{exchange}:{perpetual(symbol)}"
