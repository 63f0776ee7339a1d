"""``/patrol/plans``: the shift plans ``crimelens patrol schedule`` stored (list, and one as GeoJSON)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from crimelens.patrol.plans_table import EXISTS_SQL, GET_SQL, LIST_SQL
from crimelens.service.deps import Svc, Viewer
from crimelens.service.schemas import errors

router = APIRouter(prefix="/patrol", tags=["patrol"], responses=errors(400, 401, 403))


def _has_table(svc: Any) -> bool:
    rows = svc.rt.query(EXISTS_SQL)
    return bool(rows and int(rows[0][0]) > 0)


@router.get("/plans", summary="Stored shift plans, newest first")
def list_plans(svc: Svc, _: Viewer, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """Id, creation time, day, method, units, shifts and policy version of each stored plan."""
    if not _has_table(svc):
        return {"plans": []}
    rows = svc.rt.query(LIST_SQL, [limit])
    keys = ("id", "created_at", "day", "method", "units", "shifts", "policy")
    plans = [dict(zip(keys, r, strict=True)) for r in rows]
    for p in plans:
        p["created_at"] = p["created_at"].isoformat() if hasattr(p["created_at"], "isoformat") else str(p["created_at"])
        p["units"], p["shifts"] = int(p["units"]), int(p["shifts"])
    return {"plans": plans}


@router.get("/plans/{plan_id}", summary="One stored shift plan as GeoJSON", responses=errors(404))
def get_plan(plan_id: str, svc: Svc, _: Viewer) -> dict[str, Any]:
    """The plan's FeatureCollection: sites (``unit``, ``shift``) and covered cells by shift."""
    if len(plan_id) > 64 or not plan_id.isalnum():
        raise HTTPException(400, "plan id must be letters and digits")
    rows = svc.rt.query(GET_SQL, [plan_id]) if _has_table(svc) else []
    if not rows:
        raise HTTPException(404, f"no patrol plan {plan_id}")
    doc: dict[str, Any] = json.loads(rows[0][0])
    return doc
