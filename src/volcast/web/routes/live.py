"""The live service's resources: every watched series at once, alerts and their rules, the
watch-list. Reads come from the service's memory and the store; each call that changes state
needs the API token when the server has one (``web.access``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from volcast.config import AlertRule, WatchSettings
from volcast.live.service import Service
from volcast.web.deps import Heavy, UnitQuery

router = APIRouter(tags=["live"])


async def service(request: Request) -> Service:
    found = getattr(request.app.state, "service", None)
    if found is None:
        raise HTTPException(404, "the live service is not running in this server")
    return found


Live = Annotated[Service, Depends(service)]
RuleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


@router.get("/api/live")
async def live(live: Live, heavy: Heavy, unit: UnitQuery = "base",
               hours: Annotated[float | None, Query(gt=0, le=24 * 366, description="history "
                                                    "shown per series")] = None
               ) -> dict[str, Any]:
    """Every watched series: its recent candles, the forecast from its newest candle, the
    nowcast of the open candle, the thresholds of its rules and the rules firing."""
    return await heavy(("live", unit, hours), lambda: live.live(unit, hours))


@router.get("/api/alerts")
def alerts(live: Live, open: bool = False,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Firings and resolutions, newest first (``open``: only episodes still firing)."""
    return live.alerts(open, limit)


@router.post("/api/alerts/{event_id}/ack")
def acknowledge(live: Live, event_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
    """Acknowledge an event (the first acknowledgement's time is kept)."""
    return live.acknowledge(event_id)


@router.get("/api/alert-rules")
def rules(live: Live) -> list[dict[str, Any]]:
    """Every rule, from the config (``source: config``) or made here (``source: api``)."""
    return live.rules()


@router.post("/api/alert-rules", status_code=201)
def add_rule(live: Live, rule: AlertRule) -> dict[str, Any]:
    """A new rule, kept in the store (so it survives a restart) and read at once."""
    return live.add_rule(rule)


@router.delete("/api/alert-rules/{name}")
def delete_rule(live: Live, name: RuleName) -> dict[str, Any]:
    return live.delete_rule(name)


@router.get("/api/watch")
def watchlist(live: Live) -> list[dict[str, Any]]:
    return live.watchlist()


@router.put("/api/watch")
def set_watchlist(live: Live, entries: list[WatchSettings]) -> list[dict[str, Any]]:
    """Replace the watch-list until the next reload (stored candles are kept)."""
    return live.set_watchlist(entries)


@router.post("/api/watch/reload")
def reload(live: Live) -> list[dict[str, Any]]:
    """Re-read the config file's watch-list and rules, as SIGHUP does."""
    live.reload()
    return live.watchlist()
