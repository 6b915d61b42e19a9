"""An exchange's total: the summed quote volume of its stored markets of one quote currency,
kept in the store as a series of its own (``*/USDT`` on the same exchange and timeframe), so
that every command (backtest, predict, train, export, the dashboard) works on it unchanged.

What the total holds (docs/totals.md says why):
- its markets: every stored spot market of the exchange and timeframe quoted in the currency
  (perpetuals and totals left out), each counted from its first stored candle to its last;
- a market whose newest candle is more than ``HALTED_AFTER_MS`` older than the newest market's
  has ended (halted, delisted, or no longer fetched): it counts up to its last candle. The
  total ends where every other market has stored a candle, so a market not yet fetched up to
  the end holds the total back instead of leaving its newest candles short;
- a candle the exchange confirmed it has none of counts as no volume; a hole nobody fetched
  leaves the total without that candle (a hole of its own, filled when the market's is: `volcast
  data repair`, then `volcast totals build`), never short of that market's volume;
- volume: the sum of the markets' ``frames.quote_volume``; open = high = low = close = 1 (its
  price in its own quote currency, so its quote volume is its volume); trades: their sum where
  every market with a candle reports trades.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.frames import quote_volume, to_long
from volcast.data.holes import HALTED_AFTER_MS
from volcast.data.store import CANDLE_COLUMNS, TOTAL, CandleStore, SeriesKey, is_total
from volcast.data.timeframe import format_time
from volcast.errors import VolcastError

MIN_MARKETS = 2
"""A total of one market is that market: fewer is refused."""


def total_key(exchange: str, quote: str, timeframe: str) -> SeriesKey:
    """The stored series of an exchange's total in ``quote``: symbol ``*/QUOTE``."""
    return SeriesKey.parse(exchange, f"{TOTAL}/{quote.upper()}", timeframe)


def markets(store: CandleStore, exchange: str, timeframe: str, quote: str | None = None
            ) -> list[str]:
    """The stored symbols of one exchange and timeframe, totals left out; with ``quote``, only
    the spot markets quoted in it (by the units the store recorded)."""
    symbols = [s for s in store.symbols(exchange, timeframe) if not is_total(s)]
    if quote is None:
        return symbols
    spot = [SeriesKey(exchange, s, timeframe) for s in symbols if ":" not in s]
    units = store.units_many(spot)
    return [key.symbol for key in spot if units[key][1].upper() == quote.upper()]


MARKETS_PER_READ = 25
"""Markets one query reads for a total (bench/totals.py, a year of 200 hourly markets, peak
RSS of the bench: one query 718 MB, one per market 553 MB, 25 a query 581 MB, each as fast
as one query for them all)."""


def market_candles(store: CandleStore, exchange: str, timeframe: str, symbols: list[str],
                   start: int | None = None, end: int | None = None) -> pd.DataFrame:
    """The symbols' candles with ``start <= ds < end`` as one long frame (``unique_id`` = the
    symbol), ``y`` in the quote currency (``frames.quote_volume``): one query for each
    ``MARKETS_PER_READ`` markets, so that a year of hundreds of markets is never held twice
    over (DuckDB's result and its copies here) while a close's few rows take one query."""
    if not symbols:
        return pd.DataFrame()
    parts = []
    for at in range(0, len(symbols), MARKETS_PER_READ):
        some = symbols[at:at + MARKETS_PER_READ]
        read = store.read_many([SeriesKey(exchange, s, timeframe) for s in some], start,
                               end=end)
        parts.append(quote_volume(to_long(read, np.asarray(some, dtype=object)[
            read["series"].to_numpy()])))
    return pd.concat(parts, ignore_index=True)


def quote_volumes(store: CandleStore, exchange: str, timeframe: str, symbols: list[str],
                  start: int | None = None, end: int | None = None) -> pd.DataFrame:
    """Quote volume of the symbols' candles with ``start <= ds < end``: one column per symbol,
    one row per open time (NaN where a symbol has no candle)."""
    long = market_candles(store, exchange, timeframe, symbols, start, end)
    if long.empty:
        return pd.DataFrame()
    return long.pivot(index="ds", columns="unique_id", values="y")


@dataclass(frozen=True)
class Composition:
    """What an exchange's total sums: each market's stored span (first, last open time), the
    markets that ended before the others, and where the total ends (exclusive)."""

    key: SeriesKey
    spans: dict[str, tuple[int, int]]
    ended: tuple[str, ...]
    end: int

    @property
    def current(self) -> list[str]:
        """The markets that have not ended: what the total's newest candles sum."""
        return [s for s in self.spans if s not in self.ended]

    def keys(self) -> list[SeriesKey]:
        """Every market's series key, in ``spans``' order."""
        return [SeriesKey(self.key.exchange, s, self.key.timeframe) for s in self.spans]


Settled = dict[str, tuple[int, int, int, int]]
"""Each market's newest open time at a build and its ``CandleStore.fingerprints`` up to it."""


def settled(store: CandleStore, parts: Composition) -> Settled:
    """What a later ``build`` checks to recompute only what changed since this one."""
    lasts = [last for _, last in parts.spans.values()]
    prints = store.fingerprints(parts.keys(), lasts)
    return {k.symbol: (last, *prints[k]) for k, last in zip(parts.keys(), lasts, strict=True)}


def composition(store: CandleStore, exchange: str, quote: str, timeframe: str) -> Composition:
    """The markets of the exchange's total in ``quote`` and their spans; one line when fewer
    than ``MIN_MARKETS`` are stored."""
    key = total_key(exchange, quote, timeframe)
    with store.connection():
        symbols = markets(store, exchange, timeframe, quote)
        if len(symbols) < MIN_MARKETS:
            held = f" ({', '.join(symbols)})" if symbols else ""
            raise VolcastError(
                f"{exchange} {timeframe} has {len(symbols)} stored spot market(s) quoted in "
                f"{quote.upper()}{held}; a total needs at least {MIN_MARKETS}: fetch them first "
                f"(volcast fetch -e {exchange} --top 20 --quote {quote.upper()} -t {timeframe} "
                "--since ...)")
        extents = store.extents([SeriesKey(exchange, s, timeframe) for s in symbols])
    spans = {key.symbol: (first, last) for key, (_, first, last) in extents.items()}
    newest = max(last for _, last in spans.values())
    ended = tuple(s for s, (_, last) in spans.items()
                  if last + key.tf_ms < newest - HALTED_AFTER_MS)
    end = min(last for s, (_, last) in spans.items() if s not in ended) + key.tf_ms
    return Composition(key, spans, ended, end)


@dataclass(frozen=True)
class Summed:
    """Quote volume of each market on the total's grid (0 where it is not listed or the
    exchange confirmed no candle), whether any market has a candle at each open time, and
    which open times are whole (no market has an unfetched hole there); trades alike when any
    market reports them."""

    volumes: pd.DataFrame
    candles: pd.DataFrame
    any_candle: pd.Series
    whole: pd.Series
    trades: pd.DataFrame | None

    def total(self) -> pd.DataFrame:
        """The total's candles (CANDLE_COLUMNS and ``trades`` when known) where it is whole
        and some market traded."""
        keep = self.whole & self.any_candle
        frame = pd.DataFrame({"timestamp": self.volumes.index[keep].astype(np.int64)})
        frame[["open", "high", "low", "close"]] = 1.0
        # each row summed along its own contiguous memory: pandas' row sums depend on the
        # frame's layout, so an incremental build's one row came out a bit apart from a whole
        # build's and was written again at every rebuild; numpy's order for a row depends
        # only on its columns, the same markets in the same order in every build
        frame["volume"] = np.ascontiguousarray(self.volumes[keep].to_numpy()).sum(axis=1)
        if self.trades is not None:
            every = (self.trades.notna() | ~self.candles).all(axis=1)
            frame["trades"] = self.trades.sum(axis=1).where(every)[keep].to_numpy()
            frame["trades"] = frame["trades"].astype("Int64")
        return frame[[*CANDLE_COLUMNS, *(["trades"] if self.trades is not None else [])]]


def summed(store: CandleStore, parts: Composition, symbols: list[str], start: int
           ) -> tuple[Summed, pd.DataFrame]:
    """The symbols' quote volumes from ``start`` to the total's end, by the rules of this
    module's docstring, and their candles read for it (``market_candles``)."""
    key = parts.key
    long = market_candles(store, key.exchange, key.timeframe, symbols, start, parts.end)
    grid = pd.Index(np.arange(start, parts.end, key.tf_ms, dtype=np.int64), name="ds")
    volumes = long.pivot(index="ds", columns="unique_id", values="y").reindex(
        index=grid, columns=symbols)
    candles = volumes.notna()
    holes = pd.DataFrame(False, index=grid, columns=symbols)
    with store.connection():
        for symbol in symbols:
            first, last = parts.spans[symbol]
            listed = (grid >= first) & (grid <= last)
            empty = np.zeros(len(grid), dtype=bool)
            for low, high in store.empty_ranges(SeriesKey(key.exchange, symbol, key.timeframe)):
                empty |= (grid >= low) & (grid < high)
            holes[symbol] = listed & ~candles[symbol].to_numpy() & ~empty
    trades = None
    if "trades" in long and long["trades"].notna().any():
        trades = long.pivot(index="ds", columns="unique_id", values="trades").reindex(
            index=grid, columns=symbols).astype(float)
    return Summed(volumes.fillna(0.0), candles, candles.any(axis=1), ~holes.any(axis=1),
                  trades), long


@dataclass(frozen=True)
class Built:
    """What ``build`` did: the total's series, its markets (and those that ended), its stored
    candles and span, how many candles it wrote (new or changed) and removed (no longer
    whole), and its holes."""

    key: SeriesKey
    markets: tuple[str, ...]
    ended: tuple[str, ...]
    candles: int
    first: int | None
    last: int | None
    written: int
    removed: int
    holes: int
    settled: Settled

    def describe(self) -> str:
        """One line: the total, its markets, what changed."""
        span = ("no candle yet" if self.first is None else
                f"{format_time(self.first)} .. {format_time(self.last)} UTC")
        ended = f" ({len(self.ended)} ended: {', '.join(self.ended)})" if self.ended else ""
        holes = f", {self.holes:,} holes (a market's unfetched candles)" if self.holes else ""
        return (f"{self.key}: sum of {len(self.markets)} markets{ended}, {self.candles:,} "
                f"candles {span}{holes}; {self.written:,} written, {self.removed:,} removed")


def build(store: CandleStore, exchange: str, quote: str, timeframe: str,
          known: Settled | None = None) -> Built:
    """(Re)compute the exchange's total in ``quote`` from every stored market and store what
    changed: candles new or different are written, candles no longer whole are removed, so a
    second run writes nothing. The markets are read whole (7-8 s for 200 markets of a year of
    hourly candles on a busy 2-core machine), or, given ``known`` (the ``settled`` of the
    last build), only from where they changed since (``_recompute_from``): what `volcast
    serve` does at each close."""
    parts = composition(store, exchange, quote, timeframe)
    key = parts.key
    start = min(first for first, _ in parts.spans.values())
    since = _recompute_from(store, parts, known)
    if since is not None and since > start:  # on the total's grid, as ``summed`` makes it
        start += (since - start) // key.tf_ms * key.tf_ms
    total = summed(store, parts, list(parts.spans), start)[0].total()
    with store.connection():  # the store's other users wait for the write alone
        from_ = start if since is not None else None  # whole: a start that moved later too
        stored = store.read(key, from_) if store.bounds(key) is not None else total.iloc[:0]
        removed = _remove_stale(store, key, stored, total)
        written = _changed(total, stored)
        if not written.empty:
            store.upsert(key, written, units=(quote.upper(), quote.upper()))
        held = store.bounds(key) is not None  # a total left without candles is forgotten
        candles, first, last = store.extent(key) if held else (0, None, None)
    holes = 0 if first is None else (last - first) // key.tf_ms + 1 - candles
    return Built(key, tuple(parts.spans), parts.ended, candles, first, last, len(written),
                 removed, holes, settled(store, parts))


def _recompute_from(store: CandleStore, parts: Composition, known: Settled | None
                    ) -> int | None:
    """The open time from which the total must be recomputed when every market still holds,
    up to its newest candle at the last build, what it held then (``known``): the first new
    candle of a market that grew, or the total's own newest stored candle (an ending market
    moves where it ends), whichever comes first. None (all of it) when a market joined or
    left, or one changed up to its newest candle then (a hole filled by a backfill or
    `volcast data repair`, or confirmed empty; a candle deleted, or revised in place)."""
    if known is None or set(known) != set(parts.spans):
        return None
    key, keys = parts.key, parts.keys()
    before = store.fingerprints(keys, [known[k.symbol][0] for k in keys])
    if any(before[k] != known[k.symbol][1:] for k in keys):
        return None
    bounds = store.bounds(key)
    if bounds is None:
        return None
    grew = [known[s][0] + key.tf_ms for s in parts.spans if parts.spans[s][1] != known[s][0]]
    return min([bounds[1], *grew])


def _changed(total: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """The candles of ``total`` that ``stored`` lacks or holds with another volume or count of
    trades."""
    columns = ["timestamp", "volume", "trades"]
    old = stored.reindex(columns=columns).rename(columns={"volume": "v", "trades": "t"})
    both = total.reindex(columns=columns).merge(old, on="timestamp", how="left")
    trades_equal = (both["trades"].isna() & both["t"].isna()) | (
        both["trades"].astype("Float64") == both["t"].astype("Float64")).fillna(False)
    same = (both["volume"] == both["v"]) & trades_equal.to_numpy(dtype=bool)
    return total[~same.to_numpy()]


def _remove_stale(store: CandleStore, key: SeriesKey, stored: pd.DataFrame,
                  total: pd.DataFrame) -> int:
    """Delete the stored candles ``total`` no longer has, one run of neighbours at a time."""
    ts = stored["timestamp"].to_numpy(dtype=np.int64)
    stale = ~np.isin(ts, total["timestamp"].to_numpy(dtype=np.int64))
    runs = np.cumsum(np.r_[True, stale[1:] != stale[:-1]]) if len(ts) else np.array([])
    removed = 0
    for run in np.unique(runs[stale]):
        at = ts[runs == run]
        removed += store.delete(key, int(at[0]), int(at[-1]) + 1)
    return removed


def hierarchy(store: CandleStore, exchange: str, quote: str, timeframe: str
              ) -> tuple[pd.DataFrame, SeriesKey, list[SeriesKey]]:
    """The total and its current markets as one long frame (their candles, ``y`` in the quote
    currency, ``unique_id`` = each series' ``SeriesKey.unique_id``), from the first open time every
    current market has to the total's end: what a reconciled forecast adds up. The total here
    sums exactly these markets (an ended market is left out of both), by the rules above."""
    parts = composition(store, exchange, quote, timeframe)
    key = parts.key
    current = parts.current
    if len(current) < MIN_MARKETS:
        raise VolcastError(f"{key} has {len(current)} market(s) still trading "
                           f"({', '.join(current)}); reconciling needs at least {MIN_MARKETS}")
    sums, candles = summed(store, parts, current, max(parts.spans[s][0] for s in current))
    keys = {s: SeriesKey(exchange, s, timeframe) for s in current}
    candles["unique_id"] = candles["unique_id"].map(lambda s: keys[s].unique_id)
    long = pd.concat([to_long(sums.total(), key.unique_id), candles], ignore_index=True)
    return long, key, list(keys.values())
