"""The candles a simulated venue serves: the folder's files, loaded lazily, and optionally
hundreds of SYNTHETIC markets derived from them (``derive``).

A synthetic market (``XA01/USDT``, ``XA02/USDT``, ...) is one of the folder's real series
shifted in time by a seeded whole number of weeks (its rows rolled round, so the hour-of-week
pattern stays on the calendar), its prices and its quote volume each scaled by a seeded
factor (its base volume by their ratio: a cheap coin trades many units; trades by the quote
volume's factor). It
says nothing about any real market; it exists so that a universe of hundreds of markets can be
fetched, ranked and benchmarked offline. It shares its source's arrays and computes only the
rows a request asks for, so 200 markets cost little more memory than the files themselves.
A seeded share of them is delisted (listed as not trading, no candles after a day before the
exchange's clock starts) and another halted (listed as trading, no candles after then).
"""

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from volcast.data.formats import read_candles
from volcast.data.timeframe import DAY_MS, timeframe_ms
from volcast.errors import VolcastError

_FILE_RE = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)-(\d+[smhdw])\.csv(\.gz)?$")
WEEK_MS = 7 * DAY_MS
QUOTE_VOLUME_SCALE = (1e-5, 1.0)
PRICE_SCALE = (1e-5, 1.0)
"""Bounds of the log-uniform factors a synthetic market's quote volume and prices are scaled
by: its source stays the busiest, and the smallest trade about what a real exchange's 200th
market does."""
ENDED_DAYS = (1.0, 60.0)
"""How long before the exchange clock's start a delisted or halted market's candles end."""
TRADING, DELISTED, HALTED = "trading", "delisted", "halted"


Served = tuple[int, float, float, float, float, float, int]
"""(open time ms, open, high, low, close, volume, trades) as an exchange reports it."""


class Rows:
    """One series' open times (``ts``, ms) and its candles, read a block at a time."""

    ts: np.ndarray

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows lo..hi: the [open, high, low, close, volume] matrix and trade counts."""
        raise NotImplementedError

    def served(self, lo: int, hi: int, tf_ms: int, now: int) -> Iterator[Served]:
        """Rows lo..hi as a live exchange reports them at ``now``: the candle still in progress
        carries only the elapsed share of its volume."""
        values, trades = self.block(lo, hi)
        for i in range(hi - lo):
            opened = int(self.ts[lo + i])
            o, h, low, c, v = (float(x) for x in values[i])
            if opened + tf_ms > now:
                v = v * (now - opened) / tf_ms
            yield opened, o, h, low, c, v, int(trades[i]) if trades is not None else 0


@dataclass
class Candles(Rows):
    """One file's series as arrays: open times (ms) and the [open, high, low, close, volume]
    matrix."""

    ts: np.ndarray
    ohlcv: np.ndarray
    trades: np.ndarray | None

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.ohlcv[lo:hi], None if self.trades is None else self.trades[lo:hi]


@dataclass(frozen=True)
class Derivation:
    """How one synthetic market is made from a real one (see the module docstring)."""

    source: tuple[str, str]
    shift_ms: int
    price: float
    quote_volume: float
    status: str = TRADING
    end_ms: int | None = None
    """No candles open at or after this time (delisted or halted)."""


class Synthetic(Rows):
    """A synthetic market's series over its source's arrays, which it never copies: row i is
    the source's row i + shift (rolled round), prices and volume scaled, trades too."""

    def __init__(self, source: Candles, how: Derivation, tf_ms: int) -> None:
        self.source, self.how = source, how
        self.shift = how.shift_ms // tf_ms % max(len(source.ts), 1)
        end = len(source.ts) if how.end_ms is None else \
            int(np.searchsorted(source.ts, how.end_ms, "left"))
        self.ts = source.ts[:end]  # a view
        self._scale = np.array([how.price] * 4 + [how.quote_volume / how.price])

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
        rows = (np.arange(lo, hi) + self.shift) % len(self.source.ts)
        trades = self.source.trades
        return (self.source.ohlcv[rows] * self._scale,
                None if trades is None else np.rint(trades[rows] * self.how.quote_volume)
                .astype(np.int64))


@dataclass(frozen=True)
class DayStats:
    """A market's last 24 h as a ticker reports them (every zero but ``last`` when it had no
    candle then): open, high, low and last price, base and quote volume, trades. The quote
    volume is each candle's volume times its typical price, (high + low + close) / 3."""

    open: float
    high: float
    low: float
    last: float
    volume: float
    quote_volume: float
    trades: int


def _log_uniform(rng: random.Random, bounds: tuple[float, float]) -> float:
    return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))


class MarketData:
    """Which (base, quote, timeframe) files a folder holds, each loaded on first request, and
    the synthetic markets ``derive`` adds."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise VolcastError(f"no such data folder: {folder}")
        self.files: dict[tuple[str, str, str], Path] = {}
        for path in sorted(folder.iterdir()):
            match = _FILE_RE.match(path.name)
            if match:
                base, quote, tf, _ = match.groups()
                self.files[(base, quote, tf)] = path
        if not self.files:
            raise VolcastError(f"{folder} holds no candle files named like BTC_USDT-1h.csv")
        self._cache: dict[tuple[str, str, str], Candles] = {}
        self.derived: dict[tuple[str, str], Derivation] = {}
        self._synthetic: dict[tuple[str, str, str], Synthetic] = {}

    @property
    def file_pairs(self) -> list[tuple[str, str]]:
        """The folder's own (real) markets."""
        return sorted({(base, quote) for base, quote, _ in self.files})

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every market served: the folder's, then the synthetic ones."""
        return self.file_pairs + list(self.derived)

    def status(self, base: str, quote: str) -> str:
        """trading, delisted or halted (halted markets are listed as trading)."""
        how = self.derived.get((base, quote))
        return TRADING if how is None else how.status

    def derive(self, markets: int, seed: int, delisted: float, halted: float,
               start_ms: int) -> None:
        """Serve ``markets`` markets in all: the folder's, then synthetic ones derived from
        them in turn (see the module docstring), drawn with ``seed``. ``delisted`` and
        ``halted`` are the shares of the synthetic markets whose candles end between
        ENDED_DAYS before ``start_ms`` (the exchange clock's start)."""
        real = self.file_pairs
        count = markets - len(real)
        if count < 0:
            raise VolcastError(f"--markets {markets} is fewer than the {len(real)} markets of "
                               "the data folder")
        rng = random.Random(seed)
        fates = [DELISTED] * round(delisted * count) + [HALTED] * round(halted * count)
        fates = (fates + [TRADING] * count)[:count]
        rng.shuffle(fates)
        width = max(2, len(str(count)))
        for number, fate in enumerate(fates, start=1):
            source = real[(number - 1) % len(real)]
            weeks = self._weeks(source)
            how = Derivation(
                source, rng.randrange(1, max(weeks, 2)) * WEEK_MS,
                _log_uniform(rng, PRICE_SCALE), _log_uniform(rng, QUOTE_VOLUME_SCALE), fate,
                None if fate == TRADING else start_ms - int(rng.uniform(*ENDED_DAYS) * DAY_MS))
            self.derived[(f"XA{number:0{width}d}", source[1])] = how

    def _weeks(self, pair: tuple[str, str]) -> int:
        """Whole weeks the pair's shortest file spans."""
        spans = [int(c.ts[-1] - c.ts[0]) for tf in self._timeframes(pair)
                 if (c := self._file(*pair, tf)) is not None and len(c.ts)]
        return min(spans, default=0) // WEEK_MS

    def _timeframes(self, pair: tuple[str, str]) -> list[str]:
        return [tf for base, quote, tf in self.files if (base, quote) == pair]

    def _file(self, base: str, quote: str, timeframe: str) -> Candles | None:
        key = (base, quote, timeframe)
        if key not in self.files:
            return None
        if key not in self._cache:
            frame = read_candles(self.files[key], timeframe_ms(timeframe))
            trades = (frame["trades"].fillna(0).to_numpy(dtype=np.int64)
                      if "trades" in frame else None)
            self._cache[key] = Candles(frame["timestamp"].to_numpy(),
                                       frame[["open", "high", "low", "close", "volume"]]
                                       .to_numpy(dtype=float), trades)
        return self._cache[key]

    def source(self, base: str, quote: str, timeframe: str) -> Candles | None:
        """A real market's file (None for a synthetic one): what synthetic derivatives data
        is made from."""
        return self._file(base, quote, timeframe)

    def candles(self, base: str, quote: str, timeframe: str) -> Rows | None:
        """Any served market's series in that timeframe (None: no such file)."""
        how = self.derived.get((base, quote))
        if how is None:
            return self._file(base, quote, timeframe)
        key = (base, quote, timeframe)
        if key not in self._synthetic:
            source = self._file(*how.source, timeframe)
            if source is None:
                return None
            self._synthetic[key] = Synthetic(source, how, timeframe_ms(timeframe))
        return self._synthetic[key]

    def day_stats(self, base: str, quote: str, now: int) -> DayStats:
        """The market's 24 h before ``now`` from its finest file (the candle in progress with
        its elapsed share of volume, as klines serve it): what a 24 h ticker reports."""
        pair = (base, quote)
        timeframes = self._timeframes(self.derived[pair].source if pair in self.derived
                                      else pair)
        timeframe = min(timeframes, key=timeframe_ms)
        tf_ms = timeframe_ms(timeframe)
        rows = self.candles(base, quote, timeframe)
        assert rows is not None  # a file of the pair, or of its source
        hi = int(np.searchsorted(rows.ts, now, "right"))
        lo = int(np.searchsorted(rows.ts, now - DAY_MS, "left"))
        served = list(rows.served(lo, hi, tf_ms, now))
        if not served:
            last = float(rows.block(hi - 1, hi)[0][0, 3]) if hi else 0.0
            return DayStats(last, last, last, last, 0.0, 0.0, 0)
        _, opens, highs, lows, closes, volumes, trades = (np.array(c) for c in zip(*served,
                                                                                   strict=True))
        typical = (highs + lows + closes) / 3
        return DayStats(float(opens[0]), float(highs.max()), float(lows.min()),
                        float(closes[-1]), float(volumes.sum()),
                        float((volumes * typical).sum()), int(trades.sum()))

    def end_ms(self) -> int:
        """When the newest candle of any file closes: the default exchange clock."""
        ends = []
        for base, quote, tf in self.files:
            candles = self._file(base, quote, tf)
            assert candles is not None
            ends.append(int(candles.ts[-1]) + timeframe_ms(tf))
        return max(ends)
