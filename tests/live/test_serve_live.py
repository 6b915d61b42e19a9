"""`volcast serve --config` following the simulator as an operator runs it: every other
command works on the same store meanwhile, kill -9 then a restart fills the gap, SIGHUP
reloads the watch-list, SIGTERM stops it cleanly, /metrics parses."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.simulator import SimulatorConfig, running

from ..web.test_serve import free_port, serve, wait_for_health

JULY = int(datetime(2024, 7, 1, tzinfo=UTC).timestamp() * 1000)
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
DEADLINE_S = 180.0


@pytest.fixture(scope="module")
def exchange() -> Iterator[str]:
    """The bundled sample from 2024-07-01 at 1800 x real time: an hour closes every 2 s."""
    with ThreadPoolExecutor(1) as worker:
        context = running(SimulatorConfig(sample_dir(), now_ms=JULY, speed=1800))
        yield worker.submit(context.__enter__).result().url
        worker.submit(context.__exit__, None, None, None).result()


def config(path: Path, url: str, symbols: list[str]) -> Path:
    listed = ", ".join(f'"{s}"' for s in symbols)
    path.write_text(f"""
[[watch]]
exchange = "binance"
symbols = [{listed}]
since = "2024-06-20"
url = "{url}"

[fetch]
retries = 12
backoff_s = 0.01
backoff_max_s = 0.2
rate_limit = false

[live]
max_sleep_s = 2
nowcast = false
""")
    return path


def newest(db: Path, key: SeriesKey) -> int:
    bounds = CandleStore(db, read_only=True).bounds(key) if db.exists() else None
    return -1 if bounds is None else bounds[1]


def until_newer(db: Path, key: SeriesKey, than: int) -> int:
    deadline = time.monotonic() + DEADLINE_S
    while (found := newest(db, key)) <= than:
        assert time.monotonic() < deadline, f"no candle of {key} after {than}"
        time.sleep(0.3)
    return found


def volcast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "volcast.cli", *args], capture_output=True,
                          text=True, timeout=300)


def assert_whole(db: Path, key: SeriesKey) -> None:
    """From its first candle to its newest, every candle once: nothing lost, no hole."""
    rows, first, last = CandleStore(db, read_only=True).extent(key)
    assert rows == (last - first) // key.tf_ms + 1


def test_commands_share_the_store_with_serve_and_kill_9_loses_nothing(exchange, tmp_path):
    db, port = tmp_path / "v.duckdb", free_port()
    toml = config(tmp_path / "volcast.toml", exchange, ["BTC/USDT"])
    process = serve("--config", str(toml), "--db", str(db), "--port", str(port))
    try:
        until_newer(db, BTC, until_newer(db, BTC, JULY))  # backfilled, then following
        deadline = time.monotonic() + DEADLINE_S
        while wait_for_health(port)["series"] != 1:  # counted when it first arrived
            assert time.monotonic() < deadline, "/health never counted the followed series"
            time.sleep(0.3)
        for args in (["data", "list"],
                     ["data", "gaps", "-e", "binance", "-s", "BTC/USDT", "-t", "1h"],
                     ["export", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--out",
                      str(tmp_path / "btc.csv")],
                     ["analyze", "-e", "binance", "-s", "BTC/USDT", "--last", "7d"],
                     ["overview"], ["predict", "-e", "binance", "-s", "BTC/USDT",
                                    "--model", "mstl"],
                     ["fetch", "-e", "binance", "-s", "ETH/USDT", "--since", "2024-06-25",
                      "--exchange-url", exchange]):
            done = volcast(*args, "--db", str(db))
            assert done.returncode == 0, (args, done.stderr)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        ages = [s for s in families["volcast_last_candle_age_seconds"].samples
                if (s.labels["exchange"], s.labels["symbol"], s.labels["timeframe"])
                == ("binance", "BTC/USDT", "1h")]
        assert len(ages) == 1
    finally:
        process.kill()  # kill -9: no chance to tidy up
        process.wait()
    killed_at = newest(db, BTC)
    time.sleep(3)  # the exchange's clock runs on: candles close while nobody follows
    process = serve("--config", str(toml), "--db", str(db), "--port", str(port))
    try:
        until_newer(db, BTC, killed_at + 2 * BTC.tf_ms)
        assert_whole(db, BTC)
        assert wait_for_health(port)["watching"] == 1
        toml.write_text(toml.read_text().replace('["BTC/USDT"]', '["BTC/USDT", "ETH/USDT"]'))
        process.send_signal(signal.SIGHUP)  # reload: ETH joins, BTC's candles stay
        deadline = time.monotonic() + DEADLINE_S
        while wait_for_health(port)["watching"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        until_newer(db, ETH, newest(db, BTC))
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert_whole(db, BTC)
    assert_whole(db, ETH)
