"""The HTTP API under /api: thin handlers over ``service.Workspace`` and ``jobs.JobManager``.

Inputs are validated by FastAPI/pydantic (422), an unknown series or job is 404, a second job
for one series 409, too many jobs 429. Forecasts and backtests also come as CSV
(``?format=csv`` or ``Accept: text/csv``).
"""

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from volcast import __version__
from volcast.analysis.profile import check_zone
from volcast.data.records import finite, records
from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time, timeframe_ms
from volcast.models import MODEL_NAMES, REFERENCE_MODELS, create
from volcast.web.jobs import Job, JobManager
from volcast.web.service import NotFound, Workspace

MAX_CANDLES = 5000
NAME = r"^[a-z0-9_]+$"

router = APIRouter()


def workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def series_key(
    exchange: Annotated[str, Query(min_length=1, max_length=40, pattern=NAME,
                                   description="ccxt exchange id, e.g. binance")],
    symbol: Annotated[str, Query(min_length=3, max_length=40, description="BASE/QUOTE")],
    timeframe: Annotated[str, Query(min_length=2, max_length=4, description="e.g. 1h")] = "1h",
) -> SeriesKey:
    return SeriesKey.parse(exchange, symbol, timeframe)


Key = Annotated[SeriesKey, Depends(series_key)]
Model = Annotated[str, Query(min_length=1, max_length=40, pattern=NAME,
                             description=f"one of {', '.join(MODEL_NAMES)}")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv: a CSV download")]
Space = Annotated[Workspace, Depends(workspace)]
Jobs = Annotated[JobManager, Depends(jobs)]


def wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def csv_response(frame: pd.DataFrame, name: str) -> Response:
    return Response(frame.to_csv(index=False), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _file_name(key: SeriesKey, what: str) -> str:
    return f"{key.exchange}_{key.symbol.replace('/', '-').replace(':', '-')}_{key.timeframe}_{what}"


class SeriesOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    rows: int
    first: int
    last: int
    gaps: int
    missing: int
    trained: list[str] = Field(description="models trained for this series")


class CandlesOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    candles: list[dict[str, Any]]
    next_start: int | None = Field(description="start of the next page, null on the last")


class ForecastRow(BaseModel):
    ds: int
    time: str
    q10: float | None
    q50: float | None
    q90: float | None


class ForecastOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    model: str
    trained: dict[str, Any]
    forecast: list[ForecastRow]


class BacktestOut(BaseModel):
    model: str
    cutoff: int | None
    origins: int
    scores: dict[str, float | None]
    train_s: float | None
    predict_s: float | None


class JobRequest(BaseModel):
    kind: Literal["fetch", "train", "backtest"]
    exchange: str = Field(min_length=1, max_length=40, pattern=NAME)
    symbol: str = Field(min_length=3, max_length=40)
    timeframe: str = Field("1h", min_length=2, max_length=4)
    model: str = Field("lstm", min_length=1, max_length=40, pattern=NAME)
    since: str | None = Field(None, max_length=40, description="fetch: first candle, ISO 8601 "
                                                              "or ms (default: resume)")
    settings: dict[str, Any] = Field(default_factory=dict, description="model settings")


@router.get("/health", tags=["meta"])
def health(space: Space) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "series": len(space.store.series())}


@router.get("/api/series", response_model=list[SeriesOut], tags=["data"])
def list_series(space: Space) -> list[dict[str, Any]]:
    rows = space.store.series().to_dict(orient="records")
    return [r | {"trained": space.trained(SeriesKey(r["exchange"], r["symbol"], r["timeframe"]))}
            for r in rows]


@router.get("/api/models", tags=["forecasts"])
def models() -> dict[str, list[str]]:
    """Every model name; reference models forecast without training."""
    return {"models": MODEL_NAMES, "references": REFERENCE_MODELS}


@router.get("/api/candles", response_model=CandlesOut, tags=["data"])
def candles(space: Space, key: Key,
            start: Annotated[int | None, Query(ge=0, le=2**53, description="ms UTC")] = None,
            end: Annotated[int | None, Query(ge=0, le=2**53, description="ms UTC, "
                                             "exclusive")] = None,
            limit: Annotated[int, Query(ge=1, le=MAX_CANDLES)] = 1000) -> dict[str, Any]:
    space.bounds(key)
    frame = space.store.read(key, start, end).head(limit + 1)
    more = len(frame) > limit
    page = frame.head(limit)
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe,
            "candles": records(page, ("timestamp",)),
            "next_start": int(frame["timestamp"].iloc[-1]) if more else None}


@router.get("/api/forecast", response_model=ForecastOut, tags=["forecasts"])
def forecast(request: Request, space: Space, key: Key, model: Model = "lstm",
             fmt: Annotated[Format, Query(alias="format")] = None) -> Any:
    forecaster, frame = space.forecast(key, model)
    if wants_csv(request, fmt):
        return csv_response(frame, _file_name(key, f"forecast_{model}"))
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe,
            "model": model, "trained": finite(forecaster.info),
            "forecast": records(frame.drop(columns="unique_id"))}


@router.get("/api/analysis", tags=["analysis"])
def analysis(space: Space, key: Key,
             tz: Annotated[str, Query(max_length=64, description="IANA zone")] = "UTC"
             ) -> dict[str, Any]:
    return space.analysis(key, check_zone(tz))


@router.get("/api/backtests", response_model=list[BacktestOut], tags=["forecasts"])
def backtests(request: Request, space: Space, key: Key, model: Model | None = None,
              fmt: Annotated[Format, Query(alias="format")] = None) -> Any:
    found = space.backtests(key, model)
    if wants_csv(request, fmt):
        frame = pd.concat([f.assign(model=name) for name, f, _ in found] or
                          [pd.DataFrame(columns=["model"])], ignore_index=True)
        return csv_response(frame, _file_name(key, "backtests"))
    return [{"model": name, "cutoff": meta.get("cutoff"), "origins": int(f["origin"].nunique()),
             "scores": finite(meta.get("scores", {}).get("overall", {})),
             "train_s": meta.get("train_s"), "predict_s": meta.get("predict_s")}
            for name, f, meta in found]


@router.get("/api/overview", tags=["forecasts"])
def overview(space: Space,
             timeframe: Annotated[str, Query(min_length=2, max_length=4)] = "1h",
             model: Model = "hour_of_week_median_4w",
             threshold: Annotated[float | None, Query(ge=0, le=1e18, description="volume per "
                                                      "candle")] = None) -> list[dict[str, Any]]:
    create(model)  # an unknown model name is a 422 here, not a note per series
    timeframe_ms(timeframe)
    return finite(space.overview(timeframe, model, threshold))


@router.post("/api/jobs", status_code=202, tags=["jobs"])
def start_job(body: JobRequest, space: Space, manager: Jobs) -> dict[str, Any]:
    key = SeriesKey.parse(body.exchange, body.symbol, body.timeframe)
    if body.kind == "fetch":
        since = parse_time(body.since) if body.since else None
        job = manager.submit("fetch", key, None, lambda j: space.run_fetch(j, since))
        return job.public()
    create(body.model, body.settings)  # bad settings: 422 now, not a failed job later
    space.bounds(key)
    run = space.run_train if body.kind == "train" else space.run_backtest
    return manager.submit(body.kind, key, body.model, lambda j: run(j, body.settings)).public()


@router.get("/api/jobs", tags=["jobs"])
def list_jobs(manager: Jobs) -> list[dict[str, Any]]:
    return [j.public() for j in manager.all()]


JobId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-f0-9]+$")]


def _public(job: Job | None, job_id: str) -> dict[str, Any]:
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job.public()


@router.get("/api/jobs/{job_id}", tags=["jobs"])
def job_state(job_id: JobId, manager: Jobs) -> dict[str, Any]:
    return _public(manager.get(job_id), job_id)


@router.delete("/api/jobs/{job_id}", tags=["jobs"])
def cancel_job(job_id: JobId, manager: Jobs) -> dict[str, Any]:
    return _public(manager.cancel(job_id), job_id)
