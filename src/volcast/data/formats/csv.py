"""volcast's own CSV: ``timestamp,open,high,low,close,volume`` (open time, ms UTC), the format of
shared/data; gzip-compressed when the name ends in .gz. An optional ``trades`` column is kept."""

from pathlib import Path

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.store import CANDLE_COLUMNS
from volcast.errors import VolcastError


def _header(path: Path) -> list[str]:
    frame = pd.read_csv(path, nrows=0)
    return [str(c).strip().lower() for c in frame.columns]


class CsvFormat(CandleFormat):
    name = "csv"
    suffixes = (".csv", ".csv.gz")

    def sniff(self, path: Path) -> bool:
        """A .csv whose header names our columns; headerless CSVs belong to the Binance dump."""
        if not super().sniff(path):
            return False
        try:
            return "timestamp" in _header(path)
        except (ValueError, OSError, UnicodeDecodeError):
            return True  # let read() report what is wrong with it

    def read(self, path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
        if missing:
            raise VolcastError(f"{path.name}: missing column(s) {', '.join(missing)}; expected "
                               f"header {','.join(CANDLE_COLUMNS)}")
        keep = [*CANDLE_COLUMNS, "trades"] if "trades" in frame.columns else CANDLE_COLUMNS
        return frame[keep]

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        frame.to_csv(path, index=False)
