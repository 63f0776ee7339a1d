"""``/models``: forecasting models, the latest leaderboard, and the model registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from crimelens.registry import Manifest, ModelRegistry, RegistryError
from crimelens.service import products
from crimelens.service.deps import Reader, Svc, Viewer
from crimelens.service.schemas import ModelOut, ModelsOut, errors

router = APIRouter(tags=["models"], responses=errors(401, 403))
SUMMARY = ("version", "kind", "created_at", "training_window", "metrics", "parent", "reason")


def _registry(svc: Any) -> ModelRegistry:
    return ModelRegistry(svc.rt.settings.registry_dir)


def _unreadable(reg: ModelRegistry, exc: RegistryError) -> HTTPException:
    # the message names the file relative to the registry, never the server's folders
    return HTTPException(503, f"model registry cannot be read: {str(exc).replace(f'{reg.root}/', '')}")


def _summary(m: Manifest) -> dict[str, Any]:
    doc = m.to_dict()
    out = {k: doc[k] for k in SUMMARY}
    out["bias_audit"] = {k: v for k, v in m.bias_audit.items() if k in ("passed", "status", "flagged")}
    return out


def registry_listing(reg: ModelRegistry) -> list[dict[str, Any]]:
    """Every registered model: aliases and a summary of each version."""
    return [{"name": n, "aliases": reg.aliases(n), "versions": [_summary(m) for m in reg.versions(n)]}
            for n in reg.names()]


@router.get("/models", response_model=ModelsOut, responses=errors(503),
            summary="Models, the forecast leaderboard and the registry")
def models(_: Viewer, store: Reader, svc: Svc) -> ModelsOut:
    """Published models (with their parameters), the newest leaderboard rows (hit rate, PAI, PEI) and
    the registered model versions with their aliases (production, candidate)."""
    pub = products.latest(store, "forecast")
    board = products.latest(store, "leaderboard")
    rows = next(iter(board.values()))["payload"].get("rows", []) if board else []
    items = [ModelOut(name=k, created_at=v["created_at"], metrics=v["payload"].get("parameters", {}))
             for k, v in pub.items()]
    reg = _registry(svc)
    try:
        listing = registry_listing(reg)
    except RegistryError as exc:
        raise _unreadable(reg, exc) from exc
    return ModelsOut(models=items, leaderboard=rows, registry=listing)


@router.get("/models/{name}/{ref}", responses=errors(404, 503),
            summary="One registered model version (manifest and lineage)")
def model_version(name: str, ref: str, _: Viewer, svc: Svc) -> dict[str, Any]:
    """The manifest of ``ref`` (a version such as ``v3``, or ``production`` / ``candidate``) with its lineage."""
    reg = _registry(svc)
    try:
        if name not in reg.names():
            raise HTTPException(404, f"no registered model {name!r}")
        m = reg.get(name, ref)
        lineage = [v.version for v in reg.lineage(name, m.version)]
    except RegistryError as exc:
        if "has no" in str(exc) or "neither a version" in str(exc):
            raise HTTPException(404, str(exc)) from exc
        raise _unreadable(reg, exc) from exc
    return {**m.to_dict(), "aliases": [a for a, v in reg.aliases(name).items() if v == m.version],
            "lineage": lineage}
