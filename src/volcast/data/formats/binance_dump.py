"""Binance's public kline dumps (data.binance.vision): headerless 12-column CSV, one month or
day per file, usually zipped. Spot dumps from 2025 on count open time in microseconds."""

import zipfile
from pathlib import Path
from typing import IO

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.store import CANDLE_COLUMNS
from volcast.errors import VolcastError

DUMP_COLUMNS = [*CANDLE_COLUMNS, "close_time", "quote_volume", "trades", "taker_buy_volume",
                "taker_buy_quote_volume", "ignore"]
_MICROSECONDS_FROM = 10**14
"""Open times above this are microseconds (ms would be past the year 5000)."""


class BinanceDumpFormat(CandleFormat):
    name = "binance-dump"
    suffixes = (".zip", ".csv")

    def sniff(self, path: Path) -> bool:
        """A .zip, or a .csv whose first field is a number or Binance's own header."""
        lower = path.name.lower()
        if lower.endswith(".zip"):
            return True
        if not lower.endswith(".csv"):
            return False
        with open(path, errors="replace") as handle:
            first = handle.readline().split(",")[0].strip()
        return first.isdigit() or first == "open_time"

    def can_write(self, path: Path) -> bool:
        return False

    def read(self, path: Path) -> pd.DataFrame:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
                if len(names) != 1:
                    raise VolcastError(f"{path.name}: expected one CSV inside, found {len(names)}")
                with archive.open(names[0]) as handle:
                    frame = self._parse(handle, path.name)
        else:
            frame = self._parse(path, path.name)
        ts = pd.to_numeric(frame["timestamp"], errors="coerce")
        frame["timestamp"] = ts.where(ts < _MICROSECONDS_FROM, ts // 1000)
        return frame[[*CANDLE_COLUMNS, "trades"]]

    @staticmethod
    def _parse(source: Path | IO[bytes], name: str) -> pd.DataFrame:
        frame = pd.read_csv(source, header=None, dtype=str, keep_default_na=False)
        if frame.shape[1] != len(DUMP_COLUMNS):
            raise VolcastError(f"{name}: expected Binance's {len(DUMP_COLUMNS)} kline columns, "
                               f"found {frame.shape[1]}")
        frame.columns = DUMP_COLUMNS
        if frame.iloc[0, 0] == "open_time":
            frame = frame.iloc[1:].reset_index(drop=True)
        return frame
