"""What a candle format handler provides."""

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandas as pd

from volcast.data.formats.bounds import Limits


class CandleFormat:
    """One file format. ``read`` streams the file as chunks of raw columns (timestamp ms, open,
    high, low, close, volume, optional trades), within ``Limits``, that ``validate`` then
    checks; ``write`` the reverse."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def sniff(self, path: Path) -> bool:
        """Whether this handler reads the file; by suffix unless a handler knows better."""
        return path.name.lower().endswith(self.suffixes)

    def can_write(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes)

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        raise NotImplementedError
