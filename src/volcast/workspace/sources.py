"""Where a flow's candles come from: candle files (``--csv``) or the store
(``--exchange/--symbol/--timeframe``), always returned as one long frame, optionally cut to a
time window (``--since/--until`` or ``--last 90d``)."""

import re
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from volcast.config import db_path
from volcast.data.formats import read_candles
from volcast.data.frames import to_long
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS, WEEK_MS, parse_time
from volcast.errors import VolcastError

if TYPE_CHECKING:
    from volcast.models.base import Forecaster

_LAST = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_LAST_MS = {"h": 3_600_000, "d": DAY_MS, "w": WEEK_MS}


def _duration_ms(last: str) -> int:
    """``90d`` -> milliseconds (hours, days or weeks; checked by ``Window.parse``)."""
    match = _LAST.match(last)
    assert match is not None
    return int(match.group(1)) * _LAST_MS[match.group(2)]


def series_id(key: SeriesKey) -> str:
    """The series' ``unique_id`` in long frames (``SeriesKey.unique_id``)."""
    return key.unique_id


def key_of(unique_id: str) -> SeriesKey | None:
    """The stored series a long frame's ``unique_id`` names; None for a file's series."""
    return SeriesKey.of_unique_id(unique_id)


@dataclass(frozen=True)
class Window:
    """A time window on the candles: ``since`` <= open time < ``until``, or the ``last``
    hours/days/weeks before the newest candle (each series' own newest)."""

    since: int | None = None
    until: int | None = None
    last: str | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None, last: str | None) -> "Window":
        if last is not None and since is not None:
            raise VolcastError("give --since or --last, not both")
        if last is not None and not _LAST.match(last):
            raise VolcastError(f"bad --last '{last}': use a number and h, d or w, e.g. 90d")
        window = cls(None if since is None else parse_time(since),
                     None if until is None else parse_time(until), last)
        if window.since is not None and window.until is not None and window.until <= window.since:
            raise VolcastError("--until must come after --since")
        return window

    def cut(self, long: pd.DataFrame) -> pd.DataFrame:
        """The window's candles of each series; an empty result is an error naming it."""
        if self == Window():
            return long
        keep = pd.Series(True, index=long.index)
        if self.since is not None:
            keep &= long["ds"] >= self.since
        if self.until is not None:
            keep &= long["ds"] < self.until
        if self.last is not None:
            newest = long.groupby("unique_id")["ds"].transform("max")
            keep &= long["ds"] > newest - _duration_ms(self.last)
        cut = long[keep].reset_index(drop=True)
        if cut.empty:
            raise VolcastError("no candles in the chosen time window (--since/--until/--last)")
        return cut


def one_source(csv: list[Path] | None, exchange: object, symbols: list[str] | None,
               every: bool = False, top: int | None = None) -> None:
    """Files (--csv) or stored series (-e with -s, --all, --top), exactly one: with both, a
    command would use one and pass over the other in silence."""
    stored = bool(exchange or symbols or every or top)
    if bool(csv) == stored:
        raise VolcastError("give either --csv FILE or stored series (--exchange with --symbol, "
                           "--all or --top), not both or neither")


def load_long(csv: list[Path] | None, exchange: str | None, symbols: list[str] | None,
              timeframe: str, db: Path | None, window: Window = Window()) -> pd.DataFrame:
    """Exactly one source: files (unique_id = file name without suffixes) or stored series."""
    one_source(csv, exchange, symbols)
    if csv:
        return window.cut(read_files(csv))
    if not (exchange and symbols):
        raise VolcastError("--exchange needs at least one --symbol (and the other way round)")
    keys = [SeriesKey.parse(exchange, s, timeframe) for s in symbols]
    with CandleStore(db_path(db), read_only=True) as store:
        return window.cut(read_stored(store, keys))


def read_files(paths: list[Path]) -> pd.DataFrame:
    names = [path.name.split(".")[0] for path in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise VolcastError(f"two --csv files would both be series '{twice[0]}' (a series is "
                           "named after its file); give each file once, with distinct names")
    return pd.concat([to_long(read_candles(path), name) for path, name in zip(
        paths, names, strict=True)], ignore_index=True)


def read_stored(store: CandleStore, keys: list[SeriesKey], start: int | None = None,
                recent: int | None = None) -> pd.DataFrame:
    """The stored candles of ``keys`` (from open time ``start`` on; with ``recent``, only
    those less than ``recent`` ms older than their series' newest) as one long frame."""
    frame = store.read_many(keys, start, recent)
    names = np.array([series_id(k) for k in keys], dtype=object)
    return to_long(frame.drop(columns="series"), names[frame["series"].to_numpy()])


def covariates_of(models: Iterable["Forecaster"]) -> list[str]:
    """Every covariate one of ``models`` reads (its settings' ``covariates``; a model without
    that setting reads none), sorted."""
    return sorted({name for model in models
                   for name in getattr(model.settings, "covariates", None) or []})


def with_covariates(long: pd.DataFrame, models: Iterable["Forecaster"],
                    store: CandleStore | Path | None) -> pd.DataFrame:
    """``long`` with a column per covariate ``models`` read, each value as it was public at
    its candle's close (``data.covariates.covariate_columns``), from ``store`` (or the store
    file at that path, the default one for None, opened only when a covariate is needed).
    Unchanged when no model reads any."""
    names = covariates_of(models)
    if not names:
        return long
    from volcast.data.covariates import covariate_columns

    with ExitStack() as stack:
        if not isinstance(store, CandleStore):
            path = db_path(store)
            if not path.exists():
                raise VolcastError(f"covariates {', '.join(names)} are read from the store, and "
                                   f"there is none at {path}: give --db, and import or fetch "
                                   "them (volcast covariates import / fetch)")
            store = stack.enter_context(CandleStore(path, read_only=True))
        return covariate_columns(store, names, long)
