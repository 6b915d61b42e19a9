"""The shapes the API answers with and accepts (they are also its OpenAPI description)."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from volcast.web.deps import NAME


class Series(BaseModel):
    """Which stored series an answer is about."""

    exchange: str
    symbol: str
    timeframe: str


class SeriesOut(Series):
    base: str = Field(description="the currency volume is counted in")
    quote: str = Field(description="the currency prices are in")
    rows: int
    first: int
    last: int
    gaps: int
    missing: int
    trained: list[str] = Field(description="models trained for this series")


class CandlesOut(Series):
    volume_unit: str = Field(description="the currency of each candle's volume (base)")
    price_unit: str = Field(description="the currency of each candle's prices (quote)")
    candles: list[dict[str, Any]]
    next_start: int | None = Field(description="start of the next page, null on the last")


class ForecastRow(BaseModel):
    ds: int
    time: str
    q10: float | None
    q50: float | None
    q90: float | None


class ForecastOut(Series):
    model: str
    unit: str = Field(description="the currency of q10/q50/q90 (see ?unit)")
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
    settings: dict[str, Any] = Field(default_factory=dict, max_length=64, description="model "
                                     "settings, over the server's --config [model.NAME] table;"
                                     " capped by its [jobs] table")
