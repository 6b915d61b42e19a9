"""Covariate files people have, read into batches: the whole file is validated before anything
is stored, so a bad row anywhere leaves the store as it was.

- ``fear_greed``: shared/data's ``timestamp,value,classification`` (ms UTC of the day);
- ``vix``: shared/data's ``timestamp,open,high,low,close``, or CBOE's own VIX_History.csv,
  ``DATE,OPEN,HIGH,LOW,CLOSE`` with DATE as MM/DD/YYYY (what ``fetch vix`` downloads). The
  covariate is the close.

Files are read as bounded streams (``formats.bounds``), like candle files.
"""

from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from volcast.data.covariates import publication
from volcast.data.covariates.table import Batch, batch
from volcast.data.formats.bounds import Limits, check_fields, open_bounded
from volcast.data.formats.validate import numeric
from volcast.data.timeframe import DAY_MS, format_time
from volcast.errors import VolcastError

FEAR_GREED, VIX = "fear_greed", "vix"
SOURCES = (FEAR_GREED, VIX)
FEAR_GREED_RANGE = (0.0, 100.0)
"""The index is a score from 0 (extreme fear) to 100 (extreme greed)."""
VIX_RANGE = (1.0, 1000.0)
"""An annualised volatility in %: never below 9 since 1990 and never above 90; a close of 0
or less is a broken row."""


def read_table(source: IO[bytes] | Path, what: str) -> pd.DataFrame:
    """A CSV as text columns with lower-case names, read within the default bounds."""
    with open_bounded(source, Limits(), what, lines=True) as stream:
        try:
            frame = check_fields(pd.read_csv(stream, dtype=str, keep_default_na=False), what)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise VolcastError(f"{what}: not a CSV file ({str(exc).splitlines()[0]})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _columns(frame: pd.DataFrame, wanted: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise VolcastError(f"{what}: missing column(s) {', '.join(missing)}; expected "
                           f"{','.join(wanted)}")
    return frame[wanted]


def daily(ts: np.ndarray, what: str) -> np.ndarray:
    """Times of a daily series, each at 00:00 UTC of its day: a time of day means the file
    is not what it claims (seconds for milliseconds, a shifted time zone)."""
    off = ts % DAY_MS != 0
    if off.any():
        row = int(off.argmax())
        raise VolcastError(f"{what}: row {row + 1}: time {ts[row]:.16g} "
                           f"({format_time(ts[row])} UTC) is not 00:00 UTC of a day, as a "
                           "daily value's time is; are these milliseconds?")
    return ts


def fear_greed(frame: pd.DataFrame, what: str, source: str = "alternative.me") -> Batch:
    """Rows with ``timestamp`` (ms UTC) and ``value`` -> the fear_greed batch."""
    values = numeric(_columns(frame, ["timestamp", "value"], what), what)
    ts = daily(values["timestamp"].to_numpy(), what)
    return batch(FEAR_GREED, "", source, ts, values["value"].to_numpy(), publication.fear_greed,
                 what, FEAR_GREED_RANGE)


def _cboe_days(text: pd.Series, what: str) -> np.ndarray:
    """CBOE's MM/DD/YYYY dates -> ms UTC of each day's 00:00."""
    days = pd.to_datetime(text.str.strip(), format="%m/%d/%Y", errors="coerce")
    if days.isna().any():
        row = int(days.isna().to_numpy().argmax())
        raise VolcastError(f"{what}: row {row + 1}: date '{text.iloc[row]}' is not MM/DD/YYYY")
    return days.to_numpy().astype("datetime64[ms]").astype(np.int64)


def vix(frame: pd.DataFrame, what: str, source: str = "cboe") -> Batch:
    """shared/data's ``timestamp,...,close`` or CBOE's ``DATE,...,CLOSE`` -> the vix batch."""
    if "date" in frame.columns:
        dated = _columns(frame, ["date", "close"], what)
        ts, close = _cboe_days(dated["date"], what), numeric(dated[["close"]], what)["close"]
    else:
        values = numeric(_columns(frame, ["timestamp", "close"], what), what)
        ts, close = daily(values["timestamp"].to_numpy(), what), values["close"]
    return batch(VIX, "", source, ts, close.to_numpy(), publication.vix, what, VIX_RANGE)


def read_file(path: Path, source: str) -> Batch:
    """One covariate file of ``source`` (``SOURCES``), validated whole."""
    readers = {FEAR_GREED: fear_greed, VIX: vix}
    if source not in readers:
        raise VolcastError(f"unknown --source '{source}'; choose {' or '.join(SOURCES)}")
    if not path.is_file():
        raise VolcastError(f"no such file: {path}")
    frame = read_table(path, path.name)
    if frame.empty:
        raise VolcastError(f"{path.name}: no rows")
    return readers[source](frame, path.name)
