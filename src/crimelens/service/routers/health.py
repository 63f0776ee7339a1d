"""``GET /health``: anonymous liveness."""

from __future__ import annotations

from fastapi import APIRouter

from crimelens import __version__
from crimelens.service.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness (anonymous)")
def health() -> HealthOut:
    """The service is up."""
    return HealthOut(version=__version__)
