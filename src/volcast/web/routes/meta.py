"""Is the server up, which models does it know, and which requests need the API token."""

from typing import Any

from fastapi import APIRouter, Request

from volcast import __version__
from volcast.models import MODEL_NAMES, REFERENCE_MODELS

router = APIRouter()


@router.get("/health", tags=["meta"])
async def health(request: Request) -> dict[str, Any]:
    """Answered from memory on the server's own loop: never waits for the store, a job or a
    forecast (``series``: as counted at startup and after the latest job). With the live
    service: which watched series are ``stale`` (no candle for two candle lengths) or
    ``failing`` (their latest fetch gave up; ``errors``: the message of each)."""
    found = {"status": "ok", "version": __version__, "series": request.app.state.census.series}
    service = getattr(request.app.state, "service", None)
    return found if service is None else found | service.health()


@router.get("/api/auth", tags=["meta"])
async def auth(request: Request) -> dict[str, bool]:
    """Which requests need ``Authorization: Bearer TOKEN``: ``writes`` (starting and cancelling
    jobs) and ``reads`` (every other /api request). Always open: the page asks it first."""
    return request.app.state.access.auth


@router.get("/api/models", tags=["forecasts"])
async def models() -> dict[str, list[str]]:
    """Every model name; reference models forecast without training."""
    return {"models": MODEL_NAMES, "references": REFERENCE_MODELS}
