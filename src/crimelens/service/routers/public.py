"""``/public``: anonymous, privacy-protected counts for open-data pages (off unless ``public_enabled``).

Only aggregates leave here, never records or points: an area × period table and a map grid,
each with cells below ``public_k`` suppressed (complementary suppression protects them from the
margins; ``crimelens.governance``). The routes need no token (SECURITY.md SEC-09 lists public
aggregated routes as the anonymous exception), answer 404 while public access is off, are
rate-limited per address, and are cached per data generation like the other aggregates.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from crimelens.filters import IncidentFilter
from crimelens.governance.release import release_areas, release_grid
from crimelens.jsonsafe import json_safe
from crimelens.service.deps import Limit, Reader, Svc, cached_json, midnight
from crimelens.service.routers.aggregates import AreaColumn
from crimelens.service.schemas import FeatureCollectionOut, PublicTableOut, errors
from crimelens.store.duckdb import DuckDBStore


async def enabled(svc: Svc) -> None:
    """404 unless the operator turned public access on."""
    if not svc.rt.settings.public_enabled:
        raise HTTPException(404, "not found")


router = APIRouter(prefix="/public", tags=["public"], responses=errors(404, 429),
                   dependencies=[Depends(enabled), Depends(Limit("public", per="address"))])
Start = Annotated[date | None, Query(alias="from", description="first day (inclusive, UTC)")]
End = Annotated[date | None, Query(alias="to", description="last day (exclusive, UTC)")]
Category = Annotated[list[str], Query(max_length=20, description="category, roll-up or group")]


def _filter(start: date | None, end: date | None, category: list[str]) -> IncidentFilter:
    flt = IncidentFilter(start=midnight(start), end=midnight(end), categories=tuple(category))
    flt.category_names()  # unknown names -> 422
    return flt


@router.get("/areas", response_model=PublicTableOut, summary="Suppressed counts per area and period (anonymous)")
async def areas(svc: Svc, store: Reader, start: Start = None, end: End = None,
                category: Category = [],  # noqa: B006
                area: AreaColumn = "district", period: Literal["week", "month"] = "month") -> Response:
    """Counts per area and week or month with row, column and grand totals; cells below ``k`` are null."""
    flt = _filter(start, end, category)
    k = svc.rt.settings.public_k

    def build() -> dict[str, Any]:
        counts = store.counts([area, period], flt)
        if counts.empty:
            return {"k": k, "area": area, "period": period, "rows": [], "protection": {"note": "no incidents"}}
        rel = release_areas(counts, area=area, period=period, k=k)
        data = rel.data.rename(columns={area: "area"})
        rows = [{"area": str(r["area"]), "period": str(r["period"]), "suppressed": bool(r["suppressed"]),
                 "count": None if bool(r["suppressed"]) or pd.isna(r["count"]) else int(r["count"])}
                for r in data.to_dict("records")]
        return {"k": k, "area": area, "period": period, "rows": rows, "protection": json_safe(rel.report)}

    return await cached_json(svc, ("public-areas", repr(flt), area, period), PublicTableOut, build)


@router.get("/grid", response_model=FeatureCollectionOut, summary="Counts on a merged grid (anonymous)")
async def grid(svc: Svc, store: Reader, start: Start = None, end: End = None,
               category: Category = [],  # noqa: B006
               cell_m: Annotated[float, Query(ge=100, le=5000, description="finest cell, metres")] = 250.0,
               ) -> Response:
    """Incident counts on square cells; cells below ``k`` are merged into coarser ones (up to 8×) or
    suppressed, so no published cell holds fewer than ``k`` incidents."""
    flt = _filter(start, end, category)
    k = svc.rt.settings.public_k
    return await cached_json(svc, ("public-grid", repr(flt), cell_m), FeatureCollectionOut,
                             lambda: _grid(store, flt, cell_m, k))


def _grid(store: DuckDBStore, flt: IncidentFilter, cell_m: float, k: int) -> dict[str, Any]:
    counts = store.counts(["crs", f"cell:{cell_m:g}"], flt)
    features: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    for crs, part in counts.dropna(subset=["crs"]).groupby("crs"):
        rel = release_grid(part[["cell_x", "cell_y", "count"]], cell_size=cell_m, crs=str(crs), k=k)
        features.extend(rel.to_geojson()["features"])
        reports.append(json_safe(rel.report))
    return {"features": features, "parameters": {"k": k, "cell_m": cell_m, "protection": reports}}
