"""When volume comes, spikes and drivers of one series (the CLI's `analyze --format json`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from volcast.analysis.profile import check_zone
from volcast.web.deps import Heavy, Key, Space, UnitQuery

router = APIRouter(tags=["analysis"])


@router.get("/api/analysis")
async def analysis(space: Space, heavy: Heavy, key: Key,
                   tz: Annotated[str, Query(max_length=64, description="IANA zone")] = "UTC",
                   unit: UnitQuery = "base") -> dict[str, Any]:
    zone = check_zone(tz)
    return await heavy(("analysis", key, zone, unit), lambda: space.analysis(key, zone, unit))
