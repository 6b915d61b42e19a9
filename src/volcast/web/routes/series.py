"""Stored series and their candles."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from volcast.data.records import records
from volcast.data.store import SeriesKey
from volcast.web.deps import Key, Space
from volcast.web.schemas import CandlesOut, SeriesOut

MAX_CANDLES = 5000

router = APIRouter(tags=["data"])


@router.get("/api/series", response_model=list[SeriesOut])
def list_series(space: Space) -> list[dict[str, Any]]:
    rows = space.store.series().to_dict(orient="records")  # one query: the listing is costly
    return [r | {"trained": space.layout.trained(SeriesKey(r["exchange"], r["symbol"],
                                                           r["timeframe"]))} for r in rows]


@router.get("/api/candles", response_model=CandlesOut)
def candles(space: Space, key: Key,
            start: Annotated[int | None, Query(ge=0, le=2**53, description="ms UTC")] = None,
            end: Annotated[int | None, Query(ge=0, le=2**53, description="ms UTC, "
                                             "exclusive")] = None,
            limit: Annotated[int, Query(ge=1, le=MAX_CANDLES)] = 1000) -> dict[str, Any]:
    """One page of candles; ``next_start`` continues where it stops."""
    space.bounds(key)
    frame = space.store.read(key, start, end, limit + 1)  # one more: is there a next page?
    page = frame.head(limit)
    base, quote = space.store.units(key)
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe,
            "volume_unit": base, "price_unit": quote, "candles": records(page, ("timestamp",)),
            "next_start": int(frame["timestamp"].iloc[-1]) if len(frame) > limit else None}
