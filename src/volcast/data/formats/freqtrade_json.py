"""freqtrade's JSON candle files (``PAIR-TF.json`` / ``.json.gz``): a list of
``[open time ms, open, high, low, close, volume]`` rows, as freqtrade's JsonDataHandler writes."""

import gzip
import json
from pathlib import Path
from typing import IO

import pandas as pd

from volcast.data.formats.base import CandleFormat
from volcast.data.store import CANDLE_COLUMNS
from volcast.errors import VolcastError


def _open(path: Path, mode: str) -> IO[str]:
    return gzip.open(path, mode) if path.name.lower().endswith(".gz") else open(path, mode)


class FreqtradeJsonFormat(CandleFormat):
    name = "freqtrade-json"
    suffixes = (".json", ".json.gz")

    def read(self, path: Path) -> pd.DataFrame:
        with _open(path, "rt") as handle:
            try:
                rows = json.load(handle)
            except json.JSONDecodeError as exc:
                raise VolcastError(f"{path.name}: not valid JSON ({exc})") from None
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
            raise VolcastError(f"{path.name}: expected a list of [timestamp, open, high, low, "
                               "close, volume] rows, as freqtrade writes")
        return pd.DataFrame([r[:6] for r in rows], columns=CANDLE_COLUMNS)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        with _open(path, "wt") as handle:
            handle.write(frame[CANDLE_COLUMNS].to_json(orient="values"))
