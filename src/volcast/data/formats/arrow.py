"""Columnar files through pyarrow: freqtrade's feather files (a ``date`` column, UTC datetimes)
and Parquet (``timestamp`` in ms, or ``date`` datetimes); both written with ``date``."""

from pathlib import Path

import pandas as pd
import pyarrow.feather as feather
import pyarrow.parquet as parquet

from volcast.data.formats.base import CandleFormat
from volcast.data.store import CANDLE_COLUMNS, PRICE_COLUMNS
from volcast.errors import VolcastError


def _from_table(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.rename(columns=str.lower)
    if "timestamp" not in frame and "date" in frame:
        dates = pd.to_datetime(frame["date"], utc=True)
        frame["timestamp"] = dates.astype("datetime64[ms, UTC]").astype("int64")
    missing = [c for c in CANDLE_COLUMNS if c not in frame]
    if missing:
        raise VolcastError(f"{name}: missing column(s) {', '.join(missing)} (need date or "
                           "timestamp, open, high, low, close, volume)")
    return frame[[c for c in [*CANDLE_COLUMNS, "trades"] if c in frame]]


def _to_table(frame: pd.DataFrame) -> pd.DataFrame:
    dates = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return pd.DataFrame({"date": dates, **{c: frame[c] for c in PRICE_COLUMNS}})


class FeatherFormat(CandleFormat):
    name = "feather"
    suffixes = (".feather",)

    def read(self, path: Path) -> pd.DataFrame:
        return _from_table(feather.read_table(path).to_pandas(), path.name)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        feather.write_feather(_to_table(frame), path, compression="lz4")


class ParquetFormat(CandleFormat):
    name = "parquet"
    suffixes = (".parquet",)

    def read(self, path: Path) -> pd.DataFrame:
        return _from_table(parquet.read_table(path).to_pandas(), path.name)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        _to_table(frame).to_parquet(path, index=False)
