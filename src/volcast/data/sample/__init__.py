"""The bundled sample: real Binance hourly candles shipped with the package (see README.md)."""

from importlib.resources import files
from pathlib import Path

SAMPLE_SINCE = "2022-08-01"


def sample_dir() -> Path:
    """Folder laid out as shared/data (``binance/BTC_USDT-1h.csv.gz``, ...)."""
    return Path(str(files(__package__)))


def sample_file(exchange: str = "binance", pair: str = "BTC_USDT", timeframe: str = "1h") -> Path:
    return sample_dir() / exchange / f"{pair}-{timeframe}.csv.gz"


def exogenous_file(name: str) -> Path:
    """A bundled covariate file: ``fear_greed`` or ``vix`` (shared/data/exogenous, gzipped)."""
    return sample_dir() / "exogenous" / f"{name}.csv.gz"
