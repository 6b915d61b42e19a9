"""Shared fixtures: the bundled sample, a running simulator, a store, the CLI in-process."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from volcast.cli import main
from volcast.config import FetchSettings
from volcast.data.formats import read_candles
from volcast.data.sample import sample_dir, sample_file
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.server import RunningSimulator

HOUR = 3_600_000
FAST = FetchSettings(retries=12, backoff_s=0.01, backoff_max_s=0.2, timeout_ms=1000,
                     rate_limit=False)
"""Fetch settings for tests: quick retries, no rate limiter (its own test turns it on)."""


@pytest.fixture(scope="session")
def btc() -> pd.DataFrame:
    """The bundled sample's BTC/USDT hourly candles, as volcast reads them."""
    return read_candles(sample_file(pair="BTC_USDT"), HOUR)


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    """A fault-free simulated Binance serving the bundled sample."""
    with running(SimulatorConfig(sample_dir())) as sim:
        yield sim


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``volcast ARGS`` in-process through the real entry point (exit codes, messages)."""

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["volcast", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
