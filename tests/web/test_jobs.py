"""The job manager: states, one job per series, the cap, cancellation (within a batch for a
training), and the caps on the model settings a job may ask for."""

import asyncio
import re
import threading

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import BTC, TINY_LSTM, wait_for_job
from volcast.config import JobSettings, Settings, load_settings
from volcast.data.frames import to_long
from volcast.data.store import SeriesKey
from volcast.errors import FetchFailed, VolcastError
from volcast.models import MODEL_NAMES, create
from volcast.models.lstm import train as train_module
from volcast.web.app import create_app
from volcast.web.jobs import Job, JobConflict, JobManager, OverCap, TooManyJobs, check_caps
from volcast.web.routes.jobs import JobProgress, learns_with, train_runner
from volcast.workspace import Workspace

A, B, C = (SeriesKey("x", f"{s}/USDT", "1h") for s in "ABC")


def blocked(release: threading.Event):
    def run(job):
        while not release.wait(0.02):
            job.progress(1, 2, "working")
        return {"ok": True}
    return run


def test_a_job_runs_to_done_with_its_result():
    manager = JobManager()
    job = manager.submit("train", A, "lstm", lambda j: {"answer": 42})
    assert manager.wait(job.id, 5).state == "done"
    assert job.result == {"answer": 42} and job.finished is not None


def test_one_job_per_series_and_at_most_the_cap():
    manager, release = JobManager(max_running=2), threading.Event()
    first = manager.submit("train", A, "lstm", blocked(release))
    with pytest.raises(JobConflict, match="already running"):
        manager.submit("fetch", A, None, blocked(release))
    manager.submit("fetch", B, None, blocked(release))
    with pytest.raises(TooManyJobs):
        manager.submit("fetch", C, None, blocked(release))
    release.set()
    assert manager.wait(first.id, 5).state == "done"
    manager.submit("fetch", A, None, lambda j: {})  # A is free again


def test_cancel_stops_a_running_job_at_its_next_progress():
    manager = JobManager()
    job = manager.submit("train", A, "lstm", blocked(threading.Event()))
    manager.cancel(job.id)
    assert manager.wait(job.id, 5).state == "cancelled"


def test_failures_end_as_failed_with_their_message():
    manager = JobManager()

    def bad_input(job):
        raise VolcastError("symbol 'X' is not listed")

    def bug(job):
        raise KeyError("oops")

    one = manager.submit("fetch", A, None, bad_input)
    two = manager.submit("fetch", B, None, bug)
    assert manager.wait(one.id, 5).error == "symbol 'X' is not listed"
    assert manager.wait(two.id, 5).state == "failed"
    assert two.error.startswith("internal error: KeyError")


def test_a_cancelled_fetch_ends_and_frees_its_place_and_each_end_is_told_how():
    """A fetch stops as asyncio does (CancelledError, not an Exception): it once stayed
    "running" for good, holding its series and a place; an exchange that gave up is no bug;
    ``on_end`` hears the outcome (metrics counted every job as failed)."""
    told: list[str] = []
    manager = JobManager(max_running=1, on_end=lambda job, ended: told.append(ended))

    def cancelled_fetch(job):
        raise asyncio.CancelledError

    def gave_up(job):
        raise FetchFailed("binance load markets: gave up after 8 retries")

    first = manager.submit("fetch", A, None, cancelled_fetch)
    assert manager.wait(first.id, 5).state == "cancelled"
    second = manager.submit("fetch", A, None, gave_up)  # its series and the place are free
    assert manager.wait(second.id, 5).error == "binance load markets: gave up after 8 retries"
    third = manager.submit("fetch", A, None, lambda j: {})
    assert manager.wait(third.id, 5).state == "done"
    assert told == ["cancelled", "failed", "done"]


# -- cancelling a training within a batch, and the caps on what a job may ask for -----------

class CancelDuring:
    """Counts the batches a fit runs (its loss computations) and cancels the job while the
    ``at``-th one runs, as a DELETE arriving mid-batch does."""

    def __init__(self, monkeypatch, manager: JobManager, at: int) -> None:
        self.manager, self.at, self.batches, self.job_id = manager, at, 0, None
        self.ready = threading.Event()
        real = train_module.pinball

        def counting(*args):
            self.ready.wait(30)  # the job's id is known
            self.batches += 1
            if self.batches == self.at:
                manager.cancel(self.job_id)
            return real(*args)

        monkeypatch.setattr(train_module, "pinball", counting)

    def started(self, job) -> None:
        self.job_id = job.id
        self.ready.set()


class OneSeries:
    """What ``train_runner`` asks of a workspace, over one long frame."""

    def __init__(self, long, settings: Settings) -> None:
        self.frame, self.settings = long, settings

    def learns_with(self, key):
        return [key]

    def train(self, keys, model, settings, progress):
        forecaster = create(model, settings)
        forecaster.fit(self.frame, progress)
        return forecaster, []


@pytest.mark.parametrize("at", [2, 7])
def test_a_cancelled_training_runs_no_batch_after_the_one_in_flight(btc, monkeypatch, at):
    manager = JobManager()
    cancel = CancelDuring(monkeypatch, manager, at)
    space = OneSeries(to_long(btc.iloc[-1200:].reset_index(drop=True), "btc"), Settings())
    slow = {"lookback": 48, "horizon": 6, "hidden_size": 8, "batch_size": 64, "epochs": 1000,
            "patience": 100}
    job = manager.submit("train", A, "lstm", train_runner(space, A, "lstm", slow))
    cancel.started(job)
    assert manager.wait(job.id, 60).state == "cancelled"
    assert cancel.batches == at  # 17 training batches an epoch: it stopped mid-epoch


def test_a_jobs_training_progress_can_stop_its_fit():
    job = Job("abc", "backtest", A, "lstm")
    progress = JobProgress(job).epochs("lstm")
    progress(1, 30, 0.5, 0.4)
    assert job.message == "lstm: training before the cutoff, epoch 1 of 30"
    assert not progress.should_stop()
    job.cancel_requested.set()
    assert progress.should_stop()


@pytest.mark.parametrize(("model", "settings", "timeframe", "message"), [
    ("lstm", {"epochs": 1000, "hidden_size": 256, "lookback": 1024},  "1h",
     "setting 'epochs' is 1000, above this server's cap of 200 ([jobs] max_epochs"),
    ("lstm", {"hidden_size": 256}, "1h", "setting 'hidden_size' is 256, above this server's "
                                         "cap of 128 ([jobs] max_hidden_size"),
    ("lstm", {"lookback": 1024}, "1h", "'lookback' is 1024, above this server's cap of 720"),
    ("lstm", {"layers": 3}, "1h", "'layers' is 3, above this server's cap of 2"),
    ("lstm", {"batch_size": 4096}, "1h", "'batch_size' is 4096, above this server's cap of"),
    ("lstm", {"members": 8}, "1h", "'members' is 8, above this server's cap of 4"),
    ("lstm", {"train_days": None}, "1h", "'train_days' is all, above this server's cap of 730"),
    ("ensemble", {"gbm_rounds": 2000}, "1h", "'gbm_rounds' is 2000, above this server's cap"),
    ("lstm", {"train_days": 365}, "1m", "'train_days' is 365: 525,600 candles per series on "
                                        "this timeframe, above this server's cap of 200,000"),
    ("ensemble", {"batch_size": 512, "lookback": 336, "hidden_size": 128, "layers": 2}, "1h",
     "settings batch_size 512, lookback 336, hidden_size 128 and layers 2 make a batch 32.0 "
     "times the default one, above this server's cap of 4 ([jobs] max_batch_cost"),
    ("transformer", {"batch_size": 512, "d_model": 256}, "1h",
     "settings batch_size 512, lookback 336, d_model 256 and layers 2 make a batch 128.0 times "
     "the default one, above this server's cap of 4 ([jobs] max_batch_cost"),
])
def test_settings_beyond_the_caps_are_refused(model, settings, timeframe, message):
    key = SeriesKey("x", "A/USDT", timeframe)
    with pytest.raises(OverCap, match=re.escape(message)) as info:
        check_caps(create(model, settings).settings, JobSettings(), key.tf_ms)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("settings", [{"hidden_size": 128}, {"batch_size": 512, "lookback": 336},
                                      {"layers": 2, "batch_size": 512}])
def test_a_batch_up_to_four_times_the_default_one_is_accepted(settings):
    check_caps(create("lstm", settings).settings, JobSettings(), 3_600_000)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_models_defaults_fit_the_default_caps(model):
    check_caps(create(model).settings, JobSettings(), SeriesKey("x", "A/USDT", "1h").tf_ms)


def test_too_large_a_job_is_422_and_starts_nothing(client):
    attack = {"hidden_size": 256, "lookback": 1024, "epochs": 1000}
    answer = client.post("/api/jobs", json=BTC | {"kind": "train", "settings": attack})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("setting 'epochs' is 1000, above this server's "
                                              "cap of 200")
    assert client.get("/api/jobs").json() == []


def test_the_operator_raises_the_caps_in_the_config_file(store, tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text("[jobs]\nmax_epochs = 1000\nmax_series = 1\n")
    settings = load_settings(config)
    assert settings.jobs.max_epochs == 1000
    with TestClient(create_app(Workspace(store, tmp_path / "models", settings))) as client:
        long_training = TINY_LSTM | {"epochs": 1000, "patience": 100, "refit": False}
        start = client.post("/api/jobs", json=BTC | {"kind": "train",
                                                     "settings": long_training})
        assert start.status_code == 202, start.json()
        client.delete(f"/api/jobs/{start.json()['id']}")
        assert wait_for_job(client, start.json()["id"])["state"] == "cancelled"


def test_a_job_learns_from_at_most_max_series(workspace):
    capped = Workspace(workspace.store, workspace.models_dir,
                       Settings(jobs=JobSettings(max_series=1)))
    assert len(workspace.learns_with(SeriesKey(**BTC))) == 2
    assert learns_with(capped, SeriesKey(**BTC)) == [SeriesKey(**BTC)]


@pytest.mark.parametrize("text", ["[jobs]\nmax_epochs = 0\n", "[jobs]\nmax_hidden_size = 4096\n",
                                  "[jobs]\nmax_gpus = 1\n"])
def test_bad_caps_in_the_config_file_are_one_line(tmp_path, text):
    config = tmp_path / "serve.toml"
    config.write_text(text)
    with pytest.raises(VolcastError, match=r"setting 'jobs\.max_"):
        load_settings(config)
