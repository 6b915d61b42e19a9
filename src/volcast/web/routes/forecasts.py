"""Forecasts from the latest candle, the overview of every series, stored backtests."""

from collections.abc import Callable, Hashable
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, FastAPI, Query, Request, Response

from volcast.data.records import finite, records
from volcast.data.store import SeriesKey
from volcast.data.timeframe import timeframe_ms
from volcast.web.deps import Format, Heavy, Key, Model, Space, UnitQuery
from volcast.web.schemas import BacktestOut, ForecastOut
from volcast.workspace import Workspace
from volcast.workspace.units import Unit

router = APIRouter(tags=["forecasts"])


def wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def csv_response(text: str, key: SeriesKey, what: str) -> Response:
    name = f"{key.exchange}_{key.symbol.replace('/', '-').replace(':', '-')}_{key.timeframe}"
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}_{what}.csv"'})


@router.get("/api/forecast", response_model=ForecastOut)
async def forecast(request: Request, space: Space, heavy: Heavy, key: Key,
                   model: Model = "lstm", fmt: Format = None, unit: UnitQuery = "base") -> Any:
    csv = wants_csv(request, fmt)

    def work() -> Any:
        forecaster, frame = space.forecast(key, model, unit=unit)
        if csv:
            return frame.to_csv(index=False)
        return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe,
                "model": model, "unit": frame["unit"].iloc[0],
                "trained": finite(forecaster.info),
                "forecast": records(frame.drop(columns=["unique_id", "unit"]))}

    answer = await heavy(("forecast", key, model, unit, csv), work)
    return csv_response(answer, key, f"forecast_{model}") if csv else answer


OVERVIEW_TIMEFRAME, OVERVIEW_MODEL = "1h", "mstl"
OVERVIEW_KEEP_S = 1.0
"""Seconds an overview answer serves identical requests: under load the overview is asked for
many times a second, and each answer costs a query per series. Its ages are that much older at
most; a job that ends makes the next answer fresh."""


def overview_flight(space: Workspace, timeframe: str = OVERVIEW_TIMEFRAME,
                    model: str = OVERVIEW_MODEL, threshold: float | None = None,
                    unit: Unit = "base") -> tuple[Hashable, Callable[[], list[dict[str, Any]]]]:
    """The overview's key for ``Compute`` and its work (the defaults: the dashboard's view)."""
    return (("overview", timeframe, model, threshold, unit),
            lambda: finite(space.overview(timeframe, model, threshold, unit)))


async def warm_overview(app: FastAPI) -> None:
    """Compute the dashboard's first view (and import what its model needs) as the server
    starts, rather than under the first requests."""
    await app.state.compute(*overview_flight(app.state.workspace), keep_s=OVERVIEW_KEEP_S)


@router.get("/api/overview")
async def overview(space: Space, heavy: Heavy,
                   timeframe: Annotated[str, Query(min_length=2, max_length=4)] =
                   OVERVIEW_TIMEFRAME,
                   model: Model = OVERVIEW_MODEL,
                   threshold: Annotated[float | None, Query(ge=0, le=1e18, description="volume "
                                                            "per candle, in ?unit")] = None,
                   unit: UnitQuery = "base") -> list[dict[str, Any]]:
    timeframe_ms(timeframe)
    return await heavy(*overview_flight(space, timeframe, model, threshold, unit),
                       keep_s=OVERVIEW_KEEP_S)


@router.get("/api/backtests", response_model=list[BacktestOut])
async def backtests(request: Request, space: Space, heavy: Heavy, key: Key,
                    model: Model | None = None, fmt: Format = None) -> Any:
    csv = wants_csv(request, fmt)

    def work() -> Any:
        found = space.backtests(key, model)
        if csv:
            return pd.concat([f.assign(model=name) for name, f, _ in found] or
                             [pd.DataFrame(columns=["model"])], ignore_index=True
                             ).to_csv(index=False)
        return [{"model": name, "cutoff": meta.get("cutoff"),
                 "origins": int(f["origin"].nunique()),
                 "scores": finite(meta.get("scores", {}).get("overall", {})),
                 "train_s": meta.get("train_s"), "predict_s": meta.get("predict_s")}
                for name, f, meta in found]

    answer = await heavy(("backtests", key, model, csv), work)
    return csv_response(answer, key, "backtests") if csv else answer
