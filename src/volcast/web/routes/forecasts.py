"""Forecasts from the latest candle, the overview of every series, stored backtests."""

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request, Response

from volcast.data.records import finite, records
from volcast.data.store import SeriesKey
from volcast.data.timeframe import timeframe_ms
from volcast.web.deps import Format, Key, Model, Space, UnitQuery
from volcast.web.schemas import BacktestOut, ForecastOut

router = APIRouter(tags=["forecasts"])


def wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def csv_response(frame: pd.DataFrame, key: SeriesKey, what: str) -> Response:
    name = f"{key.exchange}_{key.symbol.replace('/', '-').replace(':', '-')}_{key.timeframe}"
    return Response(frame.to_csv(index=False), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}_{what}.csv"'})


@router.get("/api/forecast", response_model=ForecastOut)
def forecast(request: Request, space: Space, key: Key, model: Model = "lstm",
             fmt: Format = None, unit: UnitQuery = "base") -> Any:
    forecaster, frame = space.forecast(key, model, unit=unit)
    if wants_csv(request, fmt):
        return csv_response(frame, key, f"forecast_{model}")
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe,
            "model": model, "unit": frame["unit"].iloc[0], "trained": finite(forecaster.info),
            "forecast": records(frame.drop(columns=["unique_id", "unit"]))}


@router.get("/api/overview")
def overview(space: Space,
             timeframe: Annotated[str, Query(min_length=2, max_length=4)] = "1h",
             model: Model = "mstl",
             threshold: Annotated[float | None, Query(ge=0, le=1e18, description="volume per "
                                                      "candle, in ?unit")] = None,
             unit: UnitQuery = "base") -> list[dict[str, Any]]:
    timeframe_ms(timeframe)
    return finite(space.overview(timeframe, model, threshold, unit))


@router.get("/api/backtests", response_model=list[BacktestOut])
def backtests(request: Request, space: Space, key: Key, model: Model | None = None,
              fmt: Format = None) -> Any:
    found = space.backtests(key, model)
    if wants_csv(request, fmt):
        frame = pd.concat([f.assign(model=name) for name, f, _ in found] or
                          [pd.DataFrame(columns=["model"])], ignore_index=True)
        return csv_response(frame, key, "backtests")
    return [{"model": name, "cutoff": meta.get("cutoff"), "origins": int(f["origin"].nunique()),
             "scores": finite(meta.get("scores", {}).get("overall", {})),
             "train_s": meta.get("train_s"), "predict_s": meta.get("predict_s")}
            for name, f, meta in found]
