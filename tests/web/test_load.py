"""The API under load, by its mechanisms: identical requests compute once, and caches stay
within their bounds."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.web.conftest import BTC, serving
from volcast.models.baselines import SeasonalForecaster
from volcast.web.app import create_app
from volcast.workspace.core import Memo


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


def test_identical_requests_at_once_predict_once(workspace, monkeypatch):
    slow = SlowPredict(monkeypatch, hold_s=3)  # meanwhile, the other requests arrive
    params = BTC | {"model": "seasonal_naive_24"}
    with serving(create_app(workspace)) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{url}/api/forecast", params=params,
                                                    timeout=60), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.text for a in answers}) == 1 and slow.calls == 1


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
