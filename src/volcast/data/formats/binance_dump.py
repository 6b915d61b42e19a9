"""Binance's public kline dumps (data.binance.vision): headerless 12-column CSV, one month or
day per file, usually zipped. Spot dumps from 2025 on count open time in microseconds."""

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.formats.bounds import CHUNK_ROWS, Limits, first_line, open_bounded
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
        first = first_line(path).split(",")[0].strip()
        return first.isdigit() or first == "open_time"

    def can_write(self, path: Path) -> bool:
        return False

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        if not path.name.lower().endswith(".zip"):
            yield from self._parse(path, path.name, limits)
            return
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise VolcastError(f"{path.name}: expected one CSV inside, found {len(members)}")
            limits.check_bytes(members[0].file_size, path.name)  # as the archive declares it
            with archive.open(members[0]) as member:
                yield from self._parse(member, path.name, limits)

    @staticmethod
    def _parse(source: Path | IO[bytes], name: str, limits: Limits) -> Iterator[pd.DataFrame]:
        with open_bounded(source, limits, name, lines=True) as stream:
            chunks = pd.read_csv(stream, header=None, dtype=str, keep_default_na=False,
                                 chunksize=CHUNK_ROWS)
            for index, frame in enumerate(chunks):
                if frame.shape[1] != len(DUMP_COLUMNS):
                    raise VolcastError(f"{name}: expected Binance's {len(DUMP_COLUMNS)} kline "
                                       f"columns, found {frame.shape[1]}")
                frame.columns = DUMP_COLUMNS
                if index == 0 and frame.iloc[0, 0] == "open_time":
                    frame = frame.iloc[1:]
                ts = pd.to_numeric(frame["timestamp"], errors="coerce")
                frame = frame.assign(timestamp=ts.where(ts < _MICROSECONDS_FROM, ts // 1000))
                yield frame[[*CANDLE_COLUMNS, "trades"]]
