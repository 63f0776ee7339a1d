"""``/hotspots``: Getis-Ord Gi* hot and cold spots on square cells."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from crimelens.service import cellindex, products
from crimelens.service.deps import Filter, Svc, Viewer, cached_json
from crimelens.service.schemas import FeatureCollectionOut, errors

router = APIRouter(tags=["hotspots"], responses=errors(401, 403))


@router.get("/hotspots", response_model=FeatureCollectionOut, summary="Gi* hot spots (significant cells)")
async def hotspots(_: Viewer, flt: Filter, svc: Svc,
                   cell_m: Annotated[float | None, Query(ge=50, le=5000)] = None,
                   band_m: Annotated[float | None, Query(ge=50, le=20000, description="default 3 cells")] = None,
                   ) -> Response:
    """Significant cells with ArcGIS ``Gi_Bin`` (−3…+3), ``class`` and colour (FDR-corrected).

    A miss is computed once however many identical requests arrive meanwhile (the result cache's
    single flight). The cell counts come from the in-memory cell index of the data generation
    (:mod:`crimelens.service.cellindex`, built once in the background on one pooled connection),
    else from the store on a pooled connection held for that query only; the statistic runs in
    the worker thread with no connection held.
    """
    cell = cell_m or svc.rt.settings.hotspot_cell_m

    def compute() -> dict[str, Any]:
        index = cellindex.ready(svc.rt, svc.rt.settings.hotspot_cell_m)  # one per process, the dashboard's size
        counts = index.counts(flt, cell) if index is not None else None
        if counts is None:  # index still building, or a filter it cannot answer exactly
            with svc.rt.lease() as store:
                counts = products.hotspot_counts(store, flt, cell)
        return products.hotspots_from_counts(counts, cell, band_m)

    return await cached_json(svc, ("gi", repr(flt), cell, band_m), FeatureCollectionOut, compute)
