"""Background jobs: a fetch, a training or a backtest of one series, with progress and cancel.
Each job runs one workspace flow, the same one the CLI runs: a training learns from every
stored series of the timeframe (one global model, as `volcast train -s A -s B` makes; at most
``[jobs] max_series`` of them), a backtest compares the model with MSTL and the reference
models. Model settings beyond the ``[jobs]`` caps are refused when the job is submitted."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path

from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time
from volcast.errors import NotFound, VolcastError
from volcast.models import model_class
from volcast.models.base import EpochProgress
from volcast.web.deps import Jobs, Space
from volcast.web.jobs import Job, JobEpochs, Runner, check_caps
from volcast.web.schemas import JobRequest
from volcast.workspace import Workspace
from volcast.workspace.flows import versus

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-f0-9]+$")]


@router.post("/api/jobs", status_code=202)
def start_job(body: JobRequest, space: Space, manager: Jobs) -> dict[str, Any]:
    key = SeriesKey.parse(body.exchange, body.symbol, body.timeframe)
    if body.kind == "fetch":
        since = parse_time(body.since) if body.since else None
        return manager.submit("fetch", key, None, fetch_runner(space, key, since)).public()
    model = space.make(body.model, body.settings)  # bad settings: 422 now, not a failed job
    check_caps(model.settings, space.settings.jobs, key.tf_ms)  # and so is too large a job
    space.bounds(key)
    make = train_runner if body.kind == "train" else backtest_runner
    return manager.submit(body.kind, key, body.model,
                          make(space, key, body.model, body.settings)).public()


@router.get("/api/jobs")
def list_jobs(manager: Jobs) -> list[dict[str, Any]]:
    """Every job the server remembers, newest first (running ones included)."""
    return [j.public() for j in manager.all()]


@router.get("/api/jobs/{job_id}")
def job_state(job_id: JobId, manager: Jobs) -> dict[str, Any]:
    return _public(manager.get(job_id), job_id)


@router.delete("/api/jobs/{job_id}")
def cancel_job(job_id: JobId, manager: Jobs) -> dict[str, Any]:
    return _public(manager.cancel(job_id), job_id)


def _public(job: Job | None, job_id: str) -> dict[str, Any]:
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job.public()


def learns_with(space: Workspace, key: SeriesKey) -> list[SeriesKey]:
    """The series a job's global model learns from: ``key`` and other stored series of its
    timeframe, at most ``[jobs] max_series`` in all."""
    return space.learns_with(key)[: space.settings.jobs.max_series]


def fetch_runner(space: Workspace, key: SeriesKey, since: int | None) -> Runner:
    def run(job: Job) -> dict[str, Any]:
        def progress(_key: SeriesKey, added: int, done: int, total: int) -> None:
            job.progress(done, total, f"{added} new candles")

        result = space.fetch([key], since, progress, job.cancel_requested.is_set)[0]
        if result.error:
            raise VolcastError(result.error)
        return {"added": result.added, "requests": result.pages, "first": result.first,
                "last": result.last}
    return run


def train_runner(space: Workspace, key: SeriesKey, model: str, settings: dict[str, Any]
                 ) -> Runner:
    def run(job: Job) -> dict[str, Any]:
        progress = JobEpochs(job, lambda epoch, epochs, loss, val: (
            epoch, epochs, f"epoch {epoch}: train {loss:.4f}, validation {val:.4f}"))
        keys = learns_with(space, key) if model_class(model).supports_global else [key]
        forecaster, folders = space.train(keys, model, settings, progress)
        return {"model_dir": str(folders[0]), "training": forecaster.info}
    return run


def backtest_runner(space: Workspace, key: SeriesKey, model: str, settings: dict[str, Any]
                    ) -> Runner:
    def run(job: Job) -> dict[str, Any]:
        results = space.backtest(key, versus(model), {model: settings}, JobProgress(job),
                                 learn_from=learns_with(space, key))
        return {"scores": {r.model: r.scores["overall"] for r in results}}
    return run


@dataclass
class JobProgress:
    """``compare.Progress`` for a job: training epochs, then forecasts per origin."""

    job: Job

    def epochs(self, model: str) -> EpochProgress:
        return JobEpochs(self.job, lambda epoch, epochs, loss, val: (
            0, 1, f"{model}: training before the cutoff, epoch {epoch} of {epochs}"))

    def origins(self, model: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            self.job.progress(done, total, f"{model}: forecast {done} of {total}")
        return update
