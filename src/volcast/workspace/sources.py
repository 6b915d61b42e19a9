"""Where the candles a model needs come from: candle files (``--csv``) or the store
(``--exchange/--symbol/--timeframe``), always returned as one long frame."""

from pathlib import Path

import pandas as pd

from volcast.config import db_path
from volcast.data.formats import read_candles
from volcast.data.frames import to_long
from volcast.data.store import CandleStore, SeriesKey
from volcast.errors import VolcastError


def series_id(key: SeriesKey) -> str:
    return f"{key.exchange}:{key.symbol}:{key.timeframe}"


def load_long(csv: list[Path] | None, exchange: str | None, symbols: list[str] | None,
              timeframe: str, db: Path | None) -> pd.DataFrame:
    """Exactly one source: files (unique_id = file name without suffixes) or stored series."""
    if bool(csv) == bool(exchange or symbols):
        raise VolcastError("give either --csv FILE or --exchange with --symbol, not both or "
                           "neither")
    if csv:
        names = [path.name.split(".")[0] for path in csv]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise VolcastError(f"two --csv files would both be series '{twice[0]}' (a series is "
                               "named after its file); give each file once, with distinct names")
        return pd.concat([to_long(read_candles(path), name) for path, name in zip(
            csv, names, strict=True)], ignore_index=True)
    if not (exchange and symbols):
        raise VolcastError("--exchange needs at least one --symbol (and the other way round)")
    keys = [SeriesKey.parse(exchange, s, timeframe) for s in symbols]
    with CandleStore(db_path(db), read_only=True) as store:
        return pd.concat([to_long(store.read(k), series_id(k)) for k in keys],
                         ignore_index=True)
