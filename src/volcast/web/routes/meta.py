"""Is the server up, and which models does it know."""

from typing import Any

from fastapi import APIRouter, Request

from volcast import __version__
from volcast.models import MODEL_NAMES, REFERENCE_MODELS

router = APIRouter()


@router.get("/health", tags=["meta"])
async def health(request: Request) -> dict[str, Any]:
    """Answered from memory on the server's own loop: never waits for the store, a job or a
    forecast (``series``: as counted at startup and after the latest job)."""
    return {"status": "ok", "version": __version__, "series": request.app.state.census.series}


@router.get("/api/models", tags=["forecasts"])
async def models() -> dict[str, list[str]]:
    """Every model name; reference models forecast without training."""
    return {"models": MODEL_NAMES, "references": REFERENCE_MODELS}
