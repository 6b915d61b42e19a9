"""The candles a simulated venue serves, loaded lazily from one folder of candle files."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from volcast.data.formats import read_candles
from volcast.data.timeframe import timeframe_ms
from volcast.errors import VolcastError

_FILE_RE = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)-(\d+[smhdw])\.csv(\.gz)?$")


Served = tuple[int, float, float, float, float, float, int]
"""(open time ms, open, high, low, close, volume, trades) as an exchange reports it."""


@dataclass
class Candles:
    """One series as arrays: open times (ms) and the [open, high, low, close, volume] matrix."""

    ts: np.ndarray
    ohlcv: np.ndarray
    trades: np.ndarray | None

    def served(self, lo: int, hi: int, tf_ms: int, now: int) -> Iterator[Served]:
        """Rows lo..hi as a live exchange reports them at ``now``: the candle still in progress
        carries only the elapsed share of its volume."""
        for i in range(lo, hi):
            opened = int(self.ts[i])
            o, h, low, c, v = (float(x) for x in self.ohlcv[i])
            if opened + tf_ms > now:
                v = v * (now - opened) / tf_ms
            yield opened, o, h, low, c, v, int(self.trades[i]) if self.trades is not None else 0


class MarketData:
    """Which (base, quote, timeframe) files a folder holds; each loaded on first request."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise VolcastError(f"no such data folder: {folder}")
        self.files: dict[tuple[str, str, str], Path] = {}
        for path in sorted(folder.iterdir()):
            match = _FILE_RE.match(path.name)
            if match:
                base, quote, tf, _ = match.groups()
                self.files[(base, quote, tf)] = path
        if not self.files:
            raise VolcastError(f"{folder} holds no candle files named like BTC_USDT-1h.csv")
        self._cache: dict[tuple[str, str, str], Candles] = {}

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return sorted({(base, quote) for base, quote, _ in self.files})

    def candles(self, base: str, quote: str, timeframe: str) -> Candles | None:
        key = (base, quote, timeframe)
        if key not in self.files:
            return None
        if key not in self._cache:
            frame = read_candles(self.files[key], timeframe_ms(timeframe))
            trades = (frame["trades"].fillna(0).to_numpy(dtype=np.int64)
                      if "trades" in frame else None)
            self._cache[key] = Candles(frame["timestamp"].to_numpy(),
                                       frame[["open", "high", "low", "close", "volume"]]
                                       .to_numpy(dtype=float), trades)
        return self._cache[key]

    def end_ms(self) -> int:
        """When the newest candle of any file closes: the default exchange clock."""
        ends = []
        for base, quote, tf in self.files:
            candles = self.candles(base, quote, tf)
            ends.append(int(candles.ts[-1]) + timeframe_ms(tf))
        return max(ends)
