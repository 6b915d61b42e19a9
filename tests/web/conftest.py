"""The web app over a real DuckDB file holding the bundled sample, through httpx (TestClient)
or a real uvicorn server on 127.0.0.1 for the browser."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from volcast.data.formats import read_candles
from volcast.data.sample import sample_file
from volcast.data.store import CandleStore, SeriesKey
from volcast.web.access import Access
from volcast.web.app import create_app
from volcast.workspace import Workspace

BTC = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
ETH = {"exchange": "binance", "symbol": "ETH/USDT", "timeframe": "1h"}
TINY_LSTM = {"lookback": 48, "hidden_size": 8, "epochs": 1, "train_days": 30}


@pytest.fixture
def store(tmp_path) -> Iterator[CandleStore]:
    with CandleStore(tmp_path / "web.duckdb") as opened:
        for pair in ("BTC_USDT", "ETH_USDT"):
            key = SeriesKey("binance", pair.replace("_", "/"), "1h")
            opened.upsert(key, read_candles(sample_file(pair=pair), key.tf_ms))
        yield opened


@pytest.fixture
def workspace(store, tmp_path) -> Workspace:
    return Workspace(store, tmp_path / "models")


@pytest.fixture
def client(workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace)) as test_client:
        yield test_client


def wait_for_job(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on a free loopback port, served by uvicorn in a thread; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def access() -> Access | None:
    """The served app's Host names and API token (None: every request is answered)."""
    return None


@pytest.fixture
def server(workspace, access) -> Iterator[str]:
    """The app on a free loopback port, served by uvicorn in a thread."""
    with serving(create_app(workspace, access=access)) as url:
        yield url
