"""``/drilldown``: the incidents behind a map cell or hot spot, and an incident's near-repeat neighbours.

Both answer with the fields the caller's role may read; personal originals only for roles allowed
and with a stated reason (``X-Access-Reason``), which the audit row carries (SECURITY.md AUD-02).
Areas and alerts drill down through ``/incidents`` with the ``area`` and ``category`` filters.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from crimelens.service import records
from crimelens.service.deps import Ctx, Filter, Reader, Svc, Viewer
from crimelens.service.routers.incidents import Reason, _personal
from crimelens.service.schemas import IncidentOut, errors
from crimelens.store.duckdb import DuckDBStore
from crimelens.store.sql import where_clause

router = APIRouter(prefix="/drilldown", tags=["drill-down"], responses=errors(400, 401, 403))
Lon = Annotated[float, Query(ge=-180, le=180)]
Lat = Annotated[float, Query(ge=-90, le=90)]
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0


class DrillPage(BaseModel):
    """A page of the incidents inside a box, newest first."""

    items: list[IncidentOut]
    total: int = Field(description="incidents in the box that match the filters")
    offset: int
    limit: int
    fields: Literal["standard", "personal"]


class Neighbour(BaseModel):
    """A near-repeat neighbour: the incident, how far and how many days from the origin."""

    incident: IncidentOut
    distance_m: float
    days_apart: float


class NearRepeats(BaseModel):
    """An incident and the incidents within ``distance_m`` metres and ``days`` days of it."""

    origin: IncidentOut
    items: list[Neighbour]
    parameters: dict[str, Any]


def _rows(store: DuckDBStore, who: Any, personal: bool, where: str, params: list[Any], tail: str,
          tail_params: list[Any]) -> list[dict[str, Any]]:
    """Rows through the same role-filtered select and shaping that ``/incidents`` uses."""
    rows = records._select(store, records.fields_for(who.role), personal, where, params, tail, tail_params)
    return [records._shape(r, who.role) for r in rows]


def _audit(svc: Svc, ctx: Ctx, personal: bool, reason: str | None, items: list[dict[str, Any]], what: str) -> None:
    ids = ",".join(f"{r['source']}/{r['incident_id']}" for r in items)
    svc.audit.record(ctx, "person.read" if personal else "incident.list", "ok", object_id=ids[:200],
                     reason=reason if personal else None, detail=f"{what}: {len(items)} rows")


@router.get("/cell", response_model=DrillPage, summary="Incidents inside a box (a map cell or hot spot)")
def cell(who: Viewer, flt: Filter, svc: Svc, store: Reader, ctx: Ctx, west: Lon, south: Lat, east: Lon,
         north: Lat, reason: Reason = None, limit: Annotated[int, Query(ge=1)] = 50,
         offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
         fields: Literal["standard", "personal"] = "standard") -> DrillPage:
    """The incidents matching the filters with ``west <= lon < east`` and ``south <= lat < north``, paged."""
    if west >= east or south >= north:
        raise HTTPException(422, "the box needs west < east and south < north")
    personal, limit = _personal(fields, who, reason), min(limit, svc.rt.settings.max_page_size)
    where, params = where_clause(flt, alias="i")
    where += " AND i.lon >= ? AND i.lon < ? AND i.lat >= ? AND i.lat < ?"
    params += [west, east, south, north]
    total = int(store.execute(f"SELECT count(*) AS n FROM incidents i WHERE {where}", params)["n"].iloc[0])  # noqa: S608 -- fixed SQL; values are bound parameters
    items = _rows(store, who, personal, where, params,
                  "ORDER BY i.occurred_at DESC, i.source DESC, i.incident_id DESC LIMIT ? OFFSET ?", [limit, offset])
    _audit(svc, ctx, personal, reason, items, "cell")
    return DrillPage(items=[IncidentOut(**r) for r in items], total=total, offset=offset, limit=limit,
                     fields=fields)


@router.get("/near-repeats/{source}/{incident_id}", response_model=NearRepeats,
            summary="Incidents within X metres and Y days of one incident", responses=errors(404))
def near_repeats(source: str, incident_id: str, who: Viewer, svc: Svc, store: Reader, ctx: Ctx,
                 distance_m: Annotated[float, Query(gt=0, le=5000)] = 200.0,
                 days: Annotated[float, Query(gt=0, le=365)] = 14.0,
                 same_category: bool = False, reason: Reason = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 fields: Literal["standard", "personal"] = "standard") -> NearRepeats:
    """Neighbours nearest first (metres on a local flat approximation), the origin excluded."""
    personal = _personal(fields, who, reason)
    origin = records.one(store, source, incident_id, who, personal=personal)
    if origin is None or origin.get("lat") is None or origin.get("lon") is None:
        svc.audit.record(ctx, "incident.read", "not_found", object_id=f"{source}/{incident_id}")
        raise HTTPException(404, "no such incident with a location")
    lat0, lon0 = float(origin["lat"]), float(origin["lon"])
    t0 = pd.Timestamp(origin["occurred_at"]).to_pydatetime()
    dlat = distance_m / M_PER_DEG_LAT
    dlon = distance_m / (M_PER_DEG_LON * max(math.cos(math.radians(lat0)), 1e-6))
    where = ("i.lat BETWEEN ? AND ? AND i.lon BETWEEN ? AND ? AND i.occurred_at BETWEEN ? AND ? "
             "AND NOT (i.source = ? AND i.incident_id = ?)")
    params: list[Any] = [lat0 - dlat, lat0 + dlat, lon0 - dlon, lon0 + dlon, t0 - timedelta(days=days),
                         t0 + timedelta(days=days), source, incident_id]
    if who.sources:
        where += f" AND i.source IN ({', '.join('?' * len(who.sources))})"
        params += list(who.sources)
    if same_category and origin.get("category"):
        where += " AND i.category = ?"
        params.append(origin["category"])
    found: list[tuple[float, float, dict[str, Any]]] = []
    for r in _rows(store, who, personal, where, params, "LIMIT ?", [5000]):
        dx = (float(r["lon"]) - lon0) * M_PER_DEG_LON * math.cos(math.radians(lat0))
        dy = (float(r["lat"]) - lat0) * M_PER_DEG_LAT
        dist = math.hypot(dx, dy)
        if dist <= distance_m:
            found.append((dist, (pd.Timestamp(r["occurred_at"]).to_pydatetime() - t0).total_seconds() / 86400, r))
    found.sort(key=lambda f: (f[0], abs(f[1])))
    found = found[:limit]
    _audit(svc, ctx, personal, reason, [origin] + [f[2] for f in found], "near-repeats")
    return NearRepeats(origin=IncidentOut(**origin),
                       items=[Neighbour(incident=IncidentOut(**r), distance_m=round(d, 1), days_apart=round(t, 2))
                              for d, t, r in found],
                       parameters={"distance_m": distance_m, "days": days, "same_category": same_category,
                                   "distance": "flat approximation around the origin (metres)"})
