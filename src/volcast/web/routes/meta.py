"""Is the server up, and which models does it know."""

from typing import Any

from fastapi import APIRouter

from volcast import __version__
from volcast.models import MODEL_NAMES, REFERENCE_MODELS
from volcast.web.deps import Space

router = APIRouter()


@router.get("/health", tags=["meta"])
def health(space: Space) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "series": len(space.keys())}


@router.get("/api/models", tags=["forecasts"])
def models() -> dict[str, list[str]]:
    """Every model name; reference models forecast without training."""
    return {"models": MODEL_NAMES, "references": REFERENCE_MODELS}
