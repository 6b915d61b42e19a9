"""The API under load, by its mechanisms (the figures come from bench/api_load.py, see
docs/web.md): /health answers from memory, heavy work runs in a bounded pool of its own,
identical requests compute once, and caches stay within their bounds."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.web.conftest import BTC, serving
from volcast.models.baselines import SeasonalForecaster
from volcast.web.app import create_app
from volcast.web.compute import Compute
from volcast.workspace.core import Memo

REFERENCES = ["seasonal_naive_24", "seasonal_naive_168", "hour_of_day_median_7d"]


class SlowPredict:
    """Replaces the reference models' predict: counts the calls and how many run at once, and
    holds each until ``release`` is set (or ``hold_s`` passes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold_s: float = 10) -> None:
        self.calls = self.running = self.most = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        original = SeasonalForecaster.predict

        def predict(model, long, horizon):
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
            self.release.wait(hold_s)
            with self._lock:
                self.running -= 1
            return original(model, long, horizon)

        monkeypatch.setattr(SeasonalForecaster, "predict", predict)

    def wait_for(self, running: int) -> None:
        deadline = time.monotonic() + 30
        while self.running < running and time.monotonic() < deadline:
            time.sleep(0.02)


def test_health_answers_while_a_job_holds_the_store(workspace):
    with serving(create_app(workspace)) as url, workspace.store._lock:  # as a fetch job
        answer = httpx.get(f"{url}/health", timeout=10)  # holds it while it writes a page
    assert answer.status_code == 200 and answer.json()["series"] == 2


def test_heavy_work_runs_in_its_own_bounded_pool(workspace, monkeypatch):
    slow = SlowPredict(monkeypatch)
    with serving(create_app(workspace, compute_threads=2)) as url, ThreadPoolExecutor(6) as pool:
        forecasts = [pool.submit(httpx.get, f"{url}/api/forecast", timeout=60,
                                 params=BTC | {"model": model, "unit": unit})
                     for model in REFERENCES for unit in ("base", "quote")]
        slow.wait_for(running=2)
        # the pool is full: the light routes still answer, from threads of their own
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        candles = httpx.get(f"{url}/api/candles", params=BTC | {"limit": 3}, timeout=10)
        assert len(candles.json()["candles"]) == 3
        slow.release.set()
        assert [f.result().status_code for f in forecasts] == [200] * 6
    assert slow.calls == 6 and slow.most == 2


def test_identical_requests_at_once_predict_once(workspace, monkeypatch):
    slow = SlowPredict(monkeypatch, hold_s=3)  # meanwhile, the other requests arrive
    params = BTC | {"model": "seasonal_naive_24"}
    with serving(create_app(workspace)) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{url}/api/forecast", params=params,
                                                    timeout=60), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.text for a in answers}) == 1 and slow.calls == 1


def test_different_requests_share_the_forecasts_they_need(workspace, monkeypatch):
    """Overviews with different thresholds are different requests, computed at once in as many
    threads, yet each series' forecast is made once (the workspace's single flight)."""
    slow = SlowPredict(monkeypatch, hold_s=3)
    with serving(create_app(workspace, compute_threads=6)) as url, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda threshold: httpx.get(
            f"{url}/api/overview", params={"model": "seasonal_naive_24", "threshold": threshold},
            timeout=60), range(6)))
    assert [len(a.json()) for a in answers] == [2] * 6
    assert slow.calls == 2  # BTC/USDT and ETH/USDT


def test_the_cache_keeps_one_value_per_slot_and_at_most_its_size():
    memo = Memo(3)
    for series in range(5):
        memo.get(("forecast", series), "candle 1", lambda series=series: series)
    assert len(memo) == 3
    assert memo.get(("forecast", 4), "candle 1", lambda: "made again") == 4
    assert memo.get(("forecast", 0), "candle 1", lambda: "made again") == "made again"
    memo.get(("forecast", 4), "candle 2", lambda: "after a new candle")
    assert len(memo) == 3  # the new candle's forecast replaced the old one, not added to it
    assert memo.get(("forecast", 4), "candle 2", lambda: "made again") == "after a new candle"


def test_a_failed_computation_is_not_kept():
    memo = Memo(3)

    def fail() -> None:
        raise ValueError("no forecast")

    with pytest.raises(ValueError, match="no forecast"):
        memo.get("slot", 1, fail)
    assert len(memo) == 0 and memo.get("slot", 1, lambda: "made again") == "made again"


def test_a_kept_answer_serves_until_a_job_ends():
    async def scenario() -> list[int]:
        compute, calls = Compute(1), []

        def work() -> int:
            calls.append(1)
            return len(calls)

        answers = [await compute("overview", work, keep_s=600),
                   await compute("overview", work, keep_s=600)]
        compute.forget()  # a job ended: its candles or model may change the answer
        answers.append(await compute("overview", work, keep_s=600))
        compute.close()
        return answers

    with ThreadPoolExecutor(1) as thread:  # its own loop: a browser test's may be running here
        assert thread.submit(asyncio.run, scenario()).result() == [1, 1, 2]
