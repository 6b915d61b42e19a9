"""The job manager on its own: states, one job per series, the cap, cancellation."""

import threading

import pytest

from volcast.data.store import SeriesKey
from volcast.errors import VolcastError
from volcast.web.jobs import JobConflict, JobManager, TooManyJobs

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
