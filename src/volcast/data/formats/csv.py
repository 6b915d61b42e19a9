"""volcast's own CSV: ``timestamp,open,high,low,close,volume`` (open time, ms UTC), the format of
shared/data; gzip-compressed when the name ends in .gz. An optional ``trades`` column is kept."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.formats.bounds import CHUNK_ROWS, Limits, check_fields, first_line, open_bounded
from volcast.data.store import CANDLE_COLUMNS
from volcast.errors import VolcastError


def _names(columns: pd.Index) -> list[str]:
    return [str(c).strip().lower() for c in columns]


class CsvFormat(CandleFormat):
    name = "csv"
    suffixes = (".csv", ".csv.gz")

    def sniff(self, path: Path) -> bool:
        """A .csv whose header names our columns; headerless CSVs belong to the Binance dump."""
        if not super().sniff(path):
            return False
        try:
            return "timestamp" in _names(pd.Index(first_line(path).split(",")))
        except (OSError, EOFError):
            return True  # let read() report what is wrong with it

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        with open_bounded(path, limits, path.name, lines=True) as stream:
            for chunk in pd.read_csv(stream, dtype=str, keep_default_na=False,
                                     chunksize=CHUNK_ROWS):
                chunk.columns = _names(check_fields(chunk, path.name).columns)
                missing = [c for c in CANDLE_COLUMNS if c not in chunk.columns]
                if missing:
                    raise VolcastError(f"{path.name}: missing column(s) {', '.join(missing)}; "
                                       f"expected header {','.join(CANDLE_COLUMNS)}")
                yield chunk[[*CANDLE_COLUMNS, *(["trades"] if "trades" in chunk else [])]]

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        frame.to_csv(path, index=False)
