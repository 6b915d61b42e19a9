"""freqtrade's JSON candle files (``PAIR-TF.json`` / ``.json.gz``): a list of
``[open time ms, open, high, low, close, volume]`` rows, as freqtrade's JsonDataHandler writes.

Read in blocks rather than with one ``json.load``: a whole file as Python lists takes ~20 times
its size in memory. Candle rows are flat lists of numbers, so every ``],`` ends a row; each
block's complete rows are parsed at once (by the C parser) and the rest waits for the next."""

import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.formats.bounds import MAX_LINE_BYTES, Limits, open_bounded
from volcast.data.store import CANDLE_COLUMNS
from volcast.errors import VolcastError

_BLOCK = 1 << 20
_COMPLETE_ROWS = re.compile(r"(?s).*\](?=\s*,)")
"""The text up to the last ``]`` that a comma follows: every complete row of a block (greedy, so
it backtracks only over the last, incomplete row)."""


def _open(path: Path, mode: str) -> IO[str]:
    return gzip.open(path, mode) if path.name.lower().endswith(".gz") else open(path, mode)


def _rows(text: str, name: str) -> pd.DataFrame:
    """Comma-separated row texts -> a frame of their first six values."""
    try:
        rows = json.loads(f"[{text}]")
    except json.JSONDecodeError as exc:
        raise VolcastError(f"{name}: not valid JSON ({exc.msg})") from None
    if any(not isinstance(r, list) or len(r) < 6 for r in rows):
        raise VolcastError(f"{name}: expected a list of [timestamp, open, high, low, close, "
                           "volume] rows, as freqtrade writes")
    return pd.DataFrame([r[:6] for r in rows], columns=CANDLE_COLUMNS)


class FreqtradeJsonFormat(CandleFormat):
    name = "freqtrade-json"
    suffixes = (".json", ".json.gz")

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        with open_bounded(path, limits, path.name, lines=False) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8") as text:
            rest = text.read(_BLOCK).lstrip()
            if not rest.startswith("["):
                raise VolcastError(f"{path.name}: expected a list of [timestamp, open, high, "
                                   "low, close, volume] rows, as freqtrade writes")
            rest = rest[1:]
            while block := text.read(_BLOCK):
                rest += block
                complete = _COMPLETE_ROWS.match(rest)
                if complete:
                    yield _rows(complete.group(), path.name)
                    rest = rest[complete.end():].lstrip()[1:]  # past the comma
                if len(rest) > MAX_LINE_BYTES:
                    raise VolcastError(f"{path.name}: a row longer than {MAX_LINE_BYTES:,} "
                                       "bytes; candle rows are six numbers")
            rest = rest.strip()
            if not rest.endswith("]"):
                raise VolcastError(f"{path.name}: not valid JSON (it ends inside its list)")
            if rest[:-1].strip():
                yield _rows(rest[:-1], path.name)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        with _open(path, "wt") as handle:
            handle.write(frame[CANDLE_COLUMNS].to_json(orient="values"))
