"""``/models``: forecasting models and the latest leaderboard."""

from __future__ import annotations

from fastapi import APIRouter

from crimelens.service import products
from crimelens.service.deps import Reader, Viewer
from crimelens.service.schemas import ModelOut, ModelsOut, errors

router = APIRouter(tags=["models"], responses=errors(401, 403))


@router.get("/models", response_model=ModelsOut, summary="Models and the forecast leaderboard")
def models(_: Viewer, store: Reader) -> ModelsOut:
    """Published models (with their parameters) and the newest leaderboard rows (hit rate, PAI, PEI)."""
    pub = products.latest(store, "forecast")
    board = products.latest(store, "leaderboard")
    rows = next(iter(board.values()))["payload"].get("rows", []) if board else []
    items = [ModelOut(name=k, created_at=v["created_at"], metrics=v["payload"].get("parameters", {}))
             for k, v in pub.items()]
    return ModelsOut(models=items, leaderboard=rows)
