"""Candle file formats, one small handler per format (as freqtrade does), behind two functions.

``read_candles`` detects the format (or takes ``fmt``), streams the file within ``Limits`` (rows,
bytes after decompression) and validates it into a candle frame; ``write_candles`` writes one.
Handlers: volcast CSV, Parquet, freqtrade JSON / JSON.gz / feather, and Binance's public kline
dumps (CSV or the monthly .zip).
"""

from pathlib import Path

import pandas as pd

from volcast.data.formats.arrow import FeatherFormat, ParquetFormat
from volcast.data.formats.base import CandleFormat
from volcast.data.formats.binance_dump import BinanceDumpFormat
from volcast.data.formats.bounds import Limits
from volcast.data.formats.csv import CsvFormat
from volcast.data.formats.freqtrade_json import FreqtradeJsonFormat
from volcast.data.formats.validate import normalise, numeric
from volcast.errors import VolcastError

FORMATS: dict[str, CandleFormat] = {f.name: f for f in (
    CsvFormat(), BinanceDumpFormat(), FreqtradeJsonFormat(), FeatherFormat(), ParquetFormat())}

__all__ = ["FORMATS", "CandleFormat", "Limits", "read_candles", "write_candles"]


def _choose(path: Path, fmt: str | None, writing: bool) -> CandleFormat:
    if fmt is not None:
        if fmt not in FORMATS:
            raise VolcastError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
        if writing and not FORMATS[fmt].can_write(path.with_suffix(FORMATS[fmt].suffixes[0])):
            writers = [n for n, f in FORMATS.items() if f.can_write(path.with_suffix(
                f.suffixes[0]))]
            raise VolcastError(f"volcast reads {fmt} files but does not write them; choose one "
                               f"of {', '.join(writers)}")
        return FORMATS[fmt]
    for handler in FORMATS.values():
        if (writing and handler.can_write(path)) or (not writing and handler.sniff(path)):
            return handler
    suffixes = sorted({s for f in FORMATS.values() for s in f.suffixes})
    raise VolcastError(f"cannot tell the format of {path.name}: expected one of "
                       f"{', '.join(suffixes)}, or give --format")


def read_candles(path: Path, tf_ms: int | None = None, fmt: str | None = None,
                 limits: Limits | None = None) -> pd.DataFrame:
    """Read and validate one candle file, streaming it within ``limits`` (default: ``Limits()``);
    every problem is a one-line VolcastError. Without ``tf_ms`` the timeframe is the most
    common distance between candles."""
    if not path.is_file():
        raise VolcastError(f"no such file: {path}")
    limits = limits or Limits()
    handler = _choose(path, fmt, writing=False)
    parts: list[pd.DataFrame] = []
    rows = 0
    try:
        for raw in handler.read(path, limits):
            parts.append(numeric(raw.reset_index(drop=True), path.name, rows + 1))
            rows += len(raw)
            limits.check_rows(rows, path.name)
    except VolcastError:
        raise
    except Exception as exc:  # any parser's complaint about a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VolcastError(f"{path.name}: cannot read as {handler.name} ({first})") from None
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return normalise(frame, tf_ms, path.name)


def write_candles(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> None:
    """Write a candle frame in the format named or implied by the file's suffix."""
    handler = _choose(path, fmt, writing=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler.write(frame, path)
