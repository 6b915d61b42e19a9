"""Covariates as columns of a long frame, each value taken as of the candle's close.

The rule that keeps models honest: a row (one candle, open time ``ds``) carries, for each
covariate, the newest value (by the time it is dated) among those public by the candle's close
``ds + candle length``, which is the forecast origin right after that candle. A value published
later never reaches that row, so a forecast made at an origin reads only what was public then
(tests/data/test_covariates.py changes every value published after an origin and checks the
rows up to it). Rows before the first public value hold NaN.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from volcast.data.covariates.catalog import MARKET_VOLUME, Covariate, market_scope
from volcast.data.covariates.table import read
from volcast.data.frames import step_ms
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.totals import markets, quote_volumes
from volcast.errors import VolcastError


def as_of(stored: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """For each time, the value of the newest-dated row of ``stored`` (columns ``table.ROWS``)
    with ``published_ms <= time``; NaN where none is public yet."""
    if stored.empty:
        return np.full(len(times), np.nan)
    order = np.lexsort((stored["ts"].to_numpy(), stored["published_ms"].to_numpy()))
    published = stored["published_ms"].to_numpy()[order]
    dated = stored["ts"].to_numpy()[order]
    values = stored["value"].to_numpy(dtype=float)[order]
    # position of the newest-dated value among the first i+1 published (ts are unique)
    newest = np.maximum.accumulate(np.where(dated == np.maximum.accumulate(dated),
                                            np.arange(len(dated)), 0))
    last = np.searchsorted(published, times, side="right") - 1
    return np.where(last >= 0, values[newest[np.maximum(last, 0)]], np.nan)


class _Reader:
    """Stored series read once per call, whatever the number of rows asking for them."""

    def __init__(self, store: CandleStore, ds: np.ndarray) -> None:
        self.store = store
        self.span = (int(ds.min()), int(ds.max()) + 1) if len(ds) else (0, 0)
        self._read: dict[tuple[str, str], pd.DataFrame] = {}
        self._markets: dict[str, tuple[pd.DataFrame, pd.Series, pd.Series]] = {}
        """exchange:timeframe -> (quote volume per pair, their total, how many have a candle)."""

    def values(self, covariate: Covariate, key: SeriesKey | None, uid: str) -> pd.DataFrame:
        if covariate.per_market and key is None:
            raise VolcastError(f"'{covariate.name}' is per market and series '{uid}' is a "
                               "file's, not a stored series; use --exchange/--symbol")
        scope = market_scope(key.exchange, key.symbol) if covariate.per_market else ""
        if (covariate.name, scope) not in self._read:
            stored = read(self.store, covariate.name, scope)
            if stored.empty:
                where = f" for {scope}" if scope else ""
                raise VolcastError(f"no stored '{covariate.name}'{where}; "
                                   f"{covariate.howto(key)}")
            self._read[(covariate.name, scope)] = stored
        return self._read[(covariate.name, scope)]

    def other_pairs_volume(self, key: SeriesKey, ds: np.ndarray) -> np.ndarray:
        """The summed quote volume of every other stored pair of the series' exchange and
        timeframe, candle by candle; NaN where none of them has a candle. The market's total
        and count are made once, each series takes its own out of them (not a sum per series
        over every pair: a universe of hundreds)."""
        market = f"{key.exchange}:{key.timeframe}"
        if market not in self._markets:
            pairs = markets(self.store, key.exchange, key.timeframe)  # totals left out
            volumes = quote_volumes(self.store, key.exchange, key.timeframe, pairs, *self.span)
            self._markets[market] = (volumes, volumes.sum(axis=1, min_count=1),
                                     volumes.notna().sum(axis=1))
        volumes, total, count = self._markets[market]
        if volumes.columns.drop(key.symbol, errors="ignore").empty:
            raise VolcastError(f"no stored '{MARKET_VOLUME}' for {key}: it sums the other stored "
                               f"pairs and there are none; {Covariate(MARKET_VOLUME).howto(key)}")
        own = volumes[key.symbol] if key.symbol in volumes else pd.Series(np.nan, total.index)
        others = (total - own.fillna(0.0)).where(count - own.notna() > 0)
        return others.reindex(ds).to_numpy(dtype=float)


def _column(reader: _Reader, covariate: Covariate, uid: str, ds: np.ndarray) -> np.ndarray:
    """One series' values of one covariate (rows in ``ds`` order)."""
    key = SeriesKey.of_unique_id(uid)
    if covariate.name == MARKET_VOLUME:
        if key is None:
            raise VolcastError(f"'{MARKET_VOLUME}' sums other stored pairs and series '{uid}' "
                               "is a file's, not a stored series; use --exchange/--symbol")
        return reader.other_pairs_volume(key, ds)
    candle_ms = key.tf_ms if key is not None else step_ms(np.sort(ds))
    return as_of(reader.values(covariate, key, uid), ds + candle_ms)


def covariate_columns(store: CandleStore, names: Sequence[str], long: pd.DataFrame
                      ) -> pd.DataFrame:
    """``long`` (``unique_id``, ``ds`` in ms UTC, ...) with one float64 column per name, named
    as given, each value as of the row's candle close (this module's docstring). A stored
    series' ``unique_id`` is ``exchange:symbol:timeframe``; per-market names read the
    perpetual of its symbol on its exchange (``catalog.market_scope``). Unknown names and
    names with nothing stored for a series are one-line errors saying how to get them."""
    covariates = [Covariate.parse(name) for name in dict.fromkeys(names)]
    if not pd.api.types.is_integer_dtype(long["ds"]):
        raise VolcastError(f"covariates need ds as integer ms UTC, not {long['ds'].dtype}")
    ds = long["ds"].to_numpy(dtype=np.int64)
    rows = long.groupby("unique_id", sort=False).indices
    reader = _Reader(store, ds)
    columns = {}
    with store.connection():  # one opening of the file for every read below
        for covariate in covariates:
            column = np.full(len(long), np.nan)
            for uid, at in rows.items():
                column[at] = _column(reader, covariate, str(uid), ds[at])
            columns[covariate.name] = column
    return long.assign(**columns)
