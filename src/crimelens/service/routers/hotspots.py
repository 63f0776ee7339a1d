"""``/hotspots``: Getis-Ord Gi* hot and cold spots on square cells."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from crimelens.service import products
from crimelens.service.deps import Filter, Reader, Svc, Viewer, cached_json
from crimelens.service.schemas import FeatureCollectionOut, errors

router = APIRouter(tags=["hotspots"], responses=errors(401, 403))


@router.get("/hotspots", response_model=FeatureCollectionOut, summary="Gi* hot spots (significant cells)")
async def hotspots(_: Viewer, flt: Filter, svc: Svc, store: Reader,
                   cell_m: Annotated[float | None, Query(ge=50, le=5000)] = None,
                   band_m: Annotated[float | None, Query(ge=50, le=20000, description="default 3 cells")] = None,
                   ) -> Response:
    """Significant cells with ArcGIS ``Gi_Bin`` (−3…+3), ``class`` and colour (FDR-corrected)."""
    cell = cell_m or svc.rt.settings.hotspot_cell_m
    return await cached_json(svc, ("gi", repr(flt), cell, band_m), FeatureCollectionOut,
                             lambda: products.hotspots(store, flt, cell, band_m))
