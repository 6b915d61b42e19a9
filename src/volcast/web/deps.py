"""What the routes share: the workspace and job manager of the app, and the query parameters
every resource takes (a series, a model, a format), validated once here."""

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from volcast.data.store import SeriesKey
from volcast.models import MODEL_NAMES
from volcast.web.compute import Compute
from volcast.web.jobs import JobManager
from volcast.workspace import Workspace

NAME = r"^[a-z0-9_]+$"
"""An exchange id or model name."""


# async: FastAPI runs a plain function in the thread pool, a hop that costs more than these
async def workspace(request: Request) -> Workspace:
    return request.app.state.workspace


async def jobs(request: Request) -> JobManager:
    return request.app.state.jobs


async def compute(request: Request) -> Compute:
    return request.app.state.compute


async def series_key(
    exchange: Annotated[str, Query(min_length=1, max_length=40, pattern=NAME,
                                   description="ccxt exchange id, e.g. binance")],
    symbol: Annotated[str, Query(min_length=3, max_length=40, description="BASE/QUOTE")],
    timeframe: Annotated[str, Query(min_length=2, max_length=4, description="e.g. 1h")] = "1h",
) -> SeriesKey:
    return SeriesKey.parse(exchange, symbol, timeframe)


Key = Annotated[SeriesKey, Depends(series_key)]
Model = Annotated[str, Query(min_length=1, max_length=40, pattern=NAME,
                             description=f"one of {', '.join(MODEL_NAMES)}")]
Format = Annotated[Literal["json", "csv"] | None,
                   Query(alias="format", description="csv: a CSV download")]
UnitQuery = Annotated[Literal["base", "quote"], Query(
    description="base: volume in the pair's base currency (BTC for BTC/USDT); quote: volume x "
                "the candle's typical price, in the quote currency (comparable across pairs)")]
Space = Annotated[Workspace, Depends(workspace)]
Jobs = Annotated[JobManager, Depends(jobs)]
Heavy = Annotated[Compute, Depends(compute)]
