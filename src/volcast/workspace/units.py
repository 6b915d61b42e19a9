"""What volume is counted in. A series' volume is in its base currency (BTC for BTC/USDT);
the quote view multiplies each candle's volume by its typical price, so that pairs with
different bases can be summed and compared (``data.frames.quote_volume``). Every figure a
person reads carries the name of its unit: ``BTC``, ``USDT``."""

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from volcast.config import db_path
from volcast.data.frames import quote_volume
from volcast.data.store import CandleStore
from volcast.errors import VolcastError
from volcast.workspace.sources import key_of

Unit = Literal["base", "quote"]
UNITS: tuple[Unit, ...] = ("base", "quote")
_FILE = re.compile(r"^([A-Za-z0-9]+)[_-]([A-Za-z0-9]+)(?:[_-].*)?$")
"""freqtrade's file names: BTC_USDT-1h, BTC_USDT_USDT-1h (a perpetual), BTC-USDT."""


def check_unit(unit: str) -> Unit:
    if unit not in UNITS:
        raise VolcastError(f"unknown unit '{unit}'; choose base (the pair's volume) or quote "
                           "(volume x typical price, comparable across pairs)")
    return unit  # type: ignore[return-value]


def in_unit(long: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """The long frame with ``y`` in ``unit``."""
    return quote_volume(long) if unit == "quote" else long


def file_units(name: str) -> tuple[str, str] | None:
    """(base, quote) from a candle file's series name, when it is named as freqtrade names
    them; None otherwise."""
    match = _FILE.match(name)
    return (match.group(1).upper(), match.group(2).upper()) if match else None


def unit_names(long: pd.DataFrame, unit: Unit, db: Path | None = None
               ) -> dict[str, str]:
    """Each series' unit of ``y`` in ``unit``: from the store for stored series, from the file
    name for files, else the word itself ("base" or "quote")."""
    names, stored = {}, []
    for uid in long["unique_id"].unique():
        key = key_of(str(uid))
        if key is not None:
            stored.append((str(uid), key))
            continue
        found = file_units(str(uid))
        names[str(uid)] = unit if found is None else found[UNITS.index(unit)]
    if stored:
        with CandleStore(db_path(db), read_only=True) as store:
            units = store.units_many([key for _, key in stored])
            names |= {uid: units[key][UNITS.index(unit)] for uid, key in stored}
    return names
