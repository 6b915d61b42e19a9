"""The simulator answers as Binance's public REST API does (parameters, limits, errors)."""

import json
import time
import urllib.error
import urllib.request

import pytest

from volcast.data.sample import sample_dir
from volcast.errors import VolcastError
from volcast.simulator import SimulatorConfig, running

H = 3_600_000
LAST_OPEN = 1722466800000  # 2024-07-31 23:00, the sample's newest candle


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_time_is_when_the_newest_candle_closes():
    # the clock starts when the simulator does and runs at real time: bound it by the time
    # measured around the server's whole life, so a slow or busy machine cannot fail this
    began = time.monotonic()
    with running(SimulatorConfig(sample_dir())) as sim:
        status, body = get(f"{sim.url}/api/v3/time")
    elapsed_ms = (time.monotonic() - began) * 1000
    assert status == 200
    assert LAST_OPEN + H <= body["serverTime"] <= LAST_OPEN + H + elapsed_ms


def test_a_stopped_clock_answers_the_time_it_was_given():
    now = LAST_OPEN + 5 * H + 123
    with running(SimulatorConfig(sample_dir(), now_ms=now, speed=0.0)) as sim:
        assert get(f"{sim.url}/api/v3/time") == (200, {"serverTime": now})


def test_exchange_info_lists_the_pairs_of_the_folder(simulator):
    _, body = get(f"{simulator.url}/api/v3/exchangeInfo")
    assert {(s["baseAsset"], s["quoteAsset"]) for s in body["symbols"]} == {
        ("BTC", "USDT"), ("ETH", "USDT")}
    perpetuals = get(f"{simulator.url}/fapi/v1/exchangeInfo")[1]["symbols"]
    assert {(s["symbol"], s["contractType"], s["marginAsset"]) for s in perpetuals} == {
        ("BTCUSDT", "PERPETUAL", "USDT"), ("ETHUSDT", "PERPETUAL", "USDT")}
    assert get(f"{simulator.url}/dapi/v1/exchangeInfo")[1]["symbols"] == []


def test_klines_from_start_time_with_limit(simulator, btc):
    start = int(btc["timestamp"].iloc[100])
    _, rows = get(f"{simulator.url}/api/v3/klines?symbol=BTCUSDT&interval=1h"
                  f"&startTime={start - 1}&limit=3")
    assert [r[0] for r in rows] == btc["timestamp"].iloc[100:103].tolist()
    assert [float(r[5]) for r in rows] == btc["volume"].iloc[100:103].tolist()
    assert rows[0][6] == start + H - 1


def test_klines_without_start_time_are_the_newest(simulator, btc):
    _, rows = get(f"{simulator.url}/api/v3/klines?symbol=BTCUSDT&interval=1h")
    assert len(rows) == 500
    assert rows[-1][0] == LAST_OPEN
    _, rows = get(f"{simulator.url}/api/v3/klines?symbol=BTCUSDT&interval=1h"
                  f"&endTime={LAST_OPEN - H}&limit=2")
    assert [r[0] for r in rows] == [LAST_OPEN - 2 * H, LAST_OPEN - H]


@pytest.mark.parametrize(("query", "code"), [
    ("symbol=BTCUSDT&interval=1h&limit=1001", -1130),
    ("symbol=BTCUSDT&interval=1h&limit=0", -1130),
    ("symbol=NOPEUSDT&interval=1h", -1121),
    ("symbol=BTCUSDT&interval=7h", -1120),
    ("symbol=BTCUSDT", -1102),
    ("symbol=BTCUSDT&interval=1h&startTime=abc", -1100),
])
def test_klines_parameter_errors_match_binance(simulator, query, code):
    status, body = get(f"{simulator.url}/api/v3/klines?{query}")
    assert (status, body["code"]) == (400, code)


def test_the_candle_in_progress_carries_only_part_of_its_volume(btc):
    now = LAST_OPEN + H // 4
    with running(SimulatorConfig(sample_dir(), now_ms=now, speed=0.0)) as sim:
        _, rows = get(f"{sim.url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=2")
    assert rows[-1][0] == LAST_OPEN
    assert float(rows[-1][5]) == pytest.approx(btc["volume"].iloc[-1] / 4)
    assert float(rows[-2][5]) == btc["volume"].iloc[-2]


def test_faults_are_drawn_from_the_chosen_kinds():
    config = SimulatorConfig(sample_dir(), fail_rate=1.0, faults=("429",), retry_after_s=7)
    with running(config) as sim, pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{sim.url}/api/v3/time", timeout=5)
    assert info.value.code == 429
    assert info.value.headers["Retry-After"] == "7"
    assert sim.stats["fault:429"] == 1


def test_truncated_and_stalled_responses():
    config = SimulatorConfig(sample_dir(), fail_rate=1.0, faults=("truncated",))
    with running(config) as sim, urllib.request.urlopen(f"{sim.url}/api/v3/time") as response:
        body = response.read()
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    config = SimulatorConfig(sample_dir(), fail_rate=1.0, faults=("stall",), stall_s=0.5)
    with running(config) as sim:
        began = time.monotonic()
        get(f"{sim.url}/api/v3/time")
        assert time.monotonic() - began >= 0.5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fail_rate": 1.5}, "between 0 and 1"), ({"faults": ("404",)}, "unknown fault")])
def test_bad_simulator_settings(kwargs, message):
    with pytest.raises(VolcastError, match=message):
        SimulatorConfig(sample_dir(), **kwargs)

