import numpy as np
import pandas as pd
import pytest

from volcast.data.frames import to_long
from volcast.models.runtime import configure_process

H = 3_600_000
TINY = {"lookback": 48, "horizon": 6, "hidden_size": 8, "epochs": 3, "batch_size": 64,
        "patience": 3, "learning_rate": 1e-2}
"""An LSTM small enough to train in a second or two."""
TINY_TRANSFORMER = {k: v for k, v in TINY.items() if k != "hidden_size"} | {
    "patch_len": 12, "d_model": 16, "heads": 2, "layers": 1}
"""A transformer as small: four patches of 12 candles, one layer."""


@pytest.fixture(scope="session", autouse=True)
def _process() -> None:
    """Once, as a program's entry point would: one torch thread (the tests share two cores
    with other work) and freed memory kept, without which training is twice as slow."""
    configure_process(threads=1)


@pytest.fixture(scope="session")
def recent(btc) -> pd.DataFrame:
    """The last 1,200 real hourly BTC/USDT candles of the sample, as a long frame."""
    return to_long(btc.iloc[-1200:].reset_index(drop=True), "btc")


@pytest.fixture(scope="session")
def older(btc) -> pd.DataFrame:
    """The 1,200 candles before ``recent``, as another series: different data to learn from."""
    return to_long(btc.iloc[-2400:-1200].reset_index(drop=True), "btc_older")


def hand_made(hours: int, start: int = 0) -> pd.DataFrame:
    """y = 1000 * day number + hour of day: every seasonal forecast is known exactly."""
    ds = start + np.arange(hours, dtype=np.int64) * H
    hour = (ds // H) % 24
    day = ds // (24 * H)
    y = (1000 * day + hour).astype(float)
    return pd.DataFrame({"unique_id": "x", "ds": ds, "y": y, "open": 1.0, "high": 2.0,
                         "low": 1.0, "close": 1.5})
