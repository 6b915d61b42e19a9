"""Background jobs for the web API: a fetch, a training or a backtest runs in its own thread,
reports progress, and can be cancelled. One job per series at a time, and a cap on how many
run at once, so a dashboard cannot start a hundred trainings on two cores.

Cancelling sets a flag. A training (and a backtest's training) stops before its next batch:
its progress is a ``JobEpochs``, whose ``should_stop`` the fit asks before every batch
(``models.base.StoppableProgress``); a backtest stops at its next origin, where its progress
is called; a fetch is an asyncio task that is cancelled the way Ctrl-C cancels the CLI, which
keeps every page already stored. What a job may ask a model for is capped (``check_caps``,
the ``[jobs]`` settings), so that its memory and time are bounded.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from volcast.config import JobSettings
from volcast.data.store import SeriesKey
from volcast.data.timeframe import DAY_MS
from volcast.errors import FetchFailed, VolcastError
from volcast.models.base import FitStopped, ModelSettings

State = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE = ("queued", "running")


class JobCancelled(Exception):
    """Raised inside a job by its progress callback once cancellation was asked for."""


class JobConflict(VolcastError):
    """A job for this series is already running (HTTP 409)."""


class TooManyJobs(VolcastError):
    """The cap on concurrent jobs is reached (HTTP 429)."""


class OverCap(VolcastError):
    """A job asks for more than the server's ``[jobs]`` caps allow (HTTP 422)."""


def batch_cost(settings: ModelSettings) -> float:
    """One training batch's time relative to the batch of the model's default settings (0 for
    models without batches): batch_size x lookback x width^2 x layers against the defaults'
    (a recurrent or attention layer's work grows with the square of its width: the LSTM's
    hidden_size, the transformer's d_model)."""
    values = settings.model_dump()
    width = next((name for name in ("hidden_size", "d_model") if name in values), None)
    names = ("batch_size", "lookback", "layers")
    if width is None or not all(name in values for name in names):
        return 0.0
    default = type(settings)().model_dump()

    def work(of: dict[str, Any]) -> int:
        return of["batch_size"] * of["lookback"] * of[width] ** 2 * of["layers"]

    return work(values) / work(default)


def check_caps(settings: ModelSettings, caps: JobSettings, step_ms: int) -> None:
    """Refuse model settings beyond the caps, in one line naming the setting and the cap:
    each ``max_NAME`` caps the setting ``NAME`` where the model has it, and
    ``max_train_candles`` caps ``train_days`` on the job's timeframe (``step_ms``)."""
    values = settings.model_dump()
    for cap, most in caps.model_dump().items():
        name = cap.removeprefix("max_")
        if name not in values:
            continue
        value = values[name]
        if value is None or value > most:
            raise OverCap(f"setting '{name}' is {'all' if value is None else value}, above this "
                          f"server's cap of {most} ([jobs] {cap} in volcast serve --config)")
    cost = batch_cost(settings)
    if cost > caps.max_batch_cost:
        width = "hidden_size" if "hidden_size" in values else "d_model"
        raise OverCap(f"settings batch_size {values['batch_size']}, lookback "
                      f"{values['lookback']}, {width} {values[width]} and layers "
                      f"{values['layers']} make a batch {cost:.1f} times the default one, above "
                      f"this server's cap of {caps.max_batch_cost:g} ([jobs] max_batch_cost in "
                      "volcast serve --config)")
    days = values.get("train_days", 0)
    if "train_days" in values and days * (DAY_MS // step_ms) > caps.max_train_candles:
        raise OverCap(f"setting 'train_days' is {days}: {days * (DAY_MS // step_ms):,} candles "
                      f"per series on this timeframe, above this server's cap of "
                      f"{caps.max_train_candles:,} ([jobs] max_train_candles in volcast serve "
                      "--config)")


@dataclass
class Job:
    id: str
    kind: str
    key: SeriesKey
    model: str | None
    state: State = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Record progress; the place a running job notices it was cancelled."""
        self.done, self.total = done, total
        if message:
            self.message = message
        if self.cancel_requested.is_set():
            raise JobCancelled

    def should_stop(self) -> bool:
        """Whether cancellation was asked for (asked by a fit before every batch)."""
        return self.cancel_requested.is_set()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "exchange": self.key.exchange,
                "symbol": self.key.symbol, "timeframe": self.key.timeframe,
                "model": self.model, "state": self.state, "done": self.done,
                "total": self.total, "message": self.message, "error": self.error,
                "result": self.result, "created": self.created, "finished": self.finished}


Runner = Callable[[Job], dict[str, Any]]


@dataclass
class JobEpochs:
    """A job's ``models.base.StoppableProgress``: each epoch becomes the job's progress
    (``describe`` turns epoch, total, losses into done, total, message), and a cancelled job
    stops the fit before its next batch."""

    job: Job
    describe: Callable[[int, int, float, float], tuple[int, int, str]]

    def __call__(self, epoch: int, total: int, train_loss: float, val_loss: float) -> None:
        self.job.progress(*self.describe(epoch, total, train_loss, val_loss))

    def should_stop(self) -> bool:
        return self.job.should_stop()


class JobManager:
    def __init__(self, max_running: int = 2, keep: int = 200,
                 on_end: Callable[[Job, State], None] | None = None) -> None:
        """``on_end`` runs in the job's thread once its work ended, whatever the outcome,
        told how it ended, before its state says so (what a job wrote may change what the
        server shows)."""
        self.max_running, self.keep, self.on_end = max_running, keep, on_end
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, key: SeriesKey, model: str | None, run: Runner) -> Job:
        with self._lock:
            active = [j for j in self._jobs.values() if j.state in ACTIVE]
            if any(j.key == key for j in active):
                raise JobConflict(f"a job for {key} is already running; wait for it or cancel "
                                  "it (DELETE /api/jobs/ID)")
            if len(active) >= self.max_running:
                raise TooManyJobs(f"{len(active)} jobs are running, the most allowed; try "
                                  "again when one ends")
            job = Job(uuid.uuid4().hex[:12], kind, key, model)
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, run), daemon=True,
                         name=f"volcast-job-{job.id}").start()
        return job

    def _forget_old(self) -> None:
        ended = [j for j in self._jobs.values() if j.state not in ACTIVE]
        for job in sorted(ended, key=lambda j: j.created)[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]

    def _run(self, job: Job, run: Runner) -> None:
        job.state = "running"
        ended: State
        try:
            job.result, ended = run(job), "done"
        except (JobCancelled, FitStopped, asyncio.CancelledError):  # a fetch: asyncio's
            ended = "cancelled"
        except (VolcastError, FetchFailed) as error:  # bad input, or an exchange gave up
            ended, job.error = "failed", str(error)
        except Exception as error:  # a job must end in a state, never kill the server
            ended, job.error = "failed", f"internal error: {type(error).__name__}: {error}"
        try:
            if self.on_end is not None:
                self.on_end(job, ended)
        finally:  # the end is told last: whoever sees it also sees what the job changed
            job.finished, job.state = time.time(), ended

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.state in ACTIVE:
            job.cancel_requested.set()
        return job

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Until the job ends or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        job = self._jobs.get(job_id)
        while job is not None and job.state in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.05)
        return job
