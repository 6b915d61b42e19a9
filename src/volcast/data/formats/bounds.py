"""What reading one file may cost, and byte streams that refuse to cost more.

Every reader streams its file (chunks of rows, never the whole file in memory as text or Python
objects) and stops at the first bound it would pass: a 480 KB ``.json.gz`` that expands to
200 MB once took 3.5 GB to read whole. The bounds are generous for real data (ten years of
1-minute candles) and raised by ``volcast import --max-rows N`` / ``--max-bytes N``.
"""

import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from volcast.errors import VolcastError

DEFAULT_MAX_ROWS = 10 * 366 * 24 * 60
"""5,270,400 rows: ten years of 1-minute candles."""
DEFAULT_MAX_BYTES = 2**30
"""1 GiB after decompression: ten years of 1-minute candles in Binance's dump format (the widest,
about 130 bytes a row) take about 690 MB."""
MAX_LINE_BYTES = 65_536
"""Longest run of a text file without a row's end: a candle row is under 200 bytes, and a file
of zeros without newlines would otherwise be buffered whole looking for its first line."""
CHUNK_ROWS = 100_000
"""Rows parsed at once: memory per chunk stays in the tens of MB whatever the file's size."""


@dataclass(frozen=True)
class Limits:
    """The most rows and bytes (after decompression) one file may hold."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        for flag, value in (("--max-rows", self.max_rows), ("--max-bytes", self.max_bytes)):
            if value < 1:
                raise VolcastError(f"{flag} must be at least 1, not {value}")

    @classmethod
    def given(cls, max_rows: int | None, max_bytes: int | None) -> "Limits":
        """The bounds a user gave, the defaults for those not given."""
        return cls(DEFAULT_MAX_ROWS if max_rows is None else max_rows,
                   DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)

    def check_rows(self, rows: int, source: str) -> None:
        if rows > self.max_rows:
            raise VolcastError(f"{source}: more than {self.max_rows:,} rows, the bound on one "
                               "file; if the file is genuine, raise it with `volcast import "
                               "--max-rows N`")

    def check_bytes(self, size: int, source: str) -> None:
        if size > self.max_bytes:
            raise VolcastError(f"{source}: more than {self.max_bytes:,} bytes after "
                               "decompression, the bound on one file; if the file is genuine, "
                               "raise it with `volcast import --max-bytes N`")


class _Counted(io.RawIOBase):
    """A binary stream that refuses to deliver more than ``limits.max_bytes``, and, for line
    formats, a run of more than MAX_LINE_BYTES without a newline."""

    def __init__(self, raw: IO[bytes], limits: Limits, source: str, lines: bool) -> None:
        self._raw, self._limits, self._source, self._lines = raw, limits, source, lines
        self._read = self._line = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # named .gz, cut short
            raise VolcastError(f"{self._source}: not a whole gzip file ({exc})") from None
        self._read += count
        self._limits.check_bytes(self._read, self._source)
        if self._lines and count:
            newline = memoryview(buffer)[:count].tobytes().rfind(b"\n")
            self._line = self._line + count if newline < 0 else count - newline - 1
            if self._line > MAX_LINE_BYTES:
                raise VolcastError(f"{self._source}: a line longer than {MAX_LINE_BYTES:,} "
                                   "bytes; candle files hold one short row per line")
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_bounded(source: Path | IO[bytes], limits: Limits, name: str,
                 lines: bool) -> io.BufferedReader:
    """A buffered binary stream of the file (gunzipped when its name ends in .gz) that stops at
    the bounds; ``lines``: the format is one row per line."""
    return io.BufferedReader(_Counted(_open(source) if isinstance(source, Path) else source,
                                      limits, name, lines))


def _open(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when its name ends in .gz; the caller closes it."""
    return gzip.open(path) if path.name.lower().endswith(".gz") else open(path, "rb")


def check_fields(chunk: pd.DataFrame, source: str) -> pd.DataFrame:
    """Refuse rows with more fields than the header: pandas then takes the first column for
    the index and shifts every other one, so a later check would name the wrong column."""
    if not isinstance(chunk.index, pd.RangeIndex):
        raise VolcastError(f"{source}: rows have more fields than the header names "
                           f"({', '.join(map(str, chunk.columns))}); is a column missing "
                           "from the header, or a separator in a value?")
    return chunk


def first_line(path: Path) -> str:
    """The file's first line (at most MAX_LINE_BYTES of it, decompressed), for telling formats
    apart without reading a line that never ends."""
    with _open(path) as handle:
        head = handle.read(MAX_LINE_BYTES)
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
