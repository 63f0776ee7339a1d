"""``/aggregates``: time series, hour × weekday, categories, areas, CompStat, density cells, outlines."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from crimelens.service import products
from crimelens.service.deps import Filter, Reader, Svc, Viewer
from crimelens.service.schemas import (
    CompStatOut,
    FeatureCollectionOut,
    MatrixOut,
    RowsOut,
    SeriesOut,
    errors,
)

router = APIRouter(prefix="/aggregates", tags=["aggregates"], responses=errors(401, 403))
AreaColumn = Literal["beat", "district", "ward", "community_area", "neighbourhood", "lsoa"]
CellM = Annotated[float, Query(ge=50, le=5000, description="cell edge in metres")]


@router.get("/timeseries", response_model=SeriesOut, summary="Counts per day, week or month (+ STL)")
def timeseries(_: Viewer, flt: Filter, svc: Svc, store: Reader,
               period: Literal["day", "week", "month"] = "week", stl: bool = False) -> SeriesOut:
    """Zero-filled counts; with ``stl=true`` also trend, seasonal and residual (Cleveland et al. 1990)."""
    return SeriesOut(**svc.rt.cached(("trend", repr(flt), period, stl),
                                     lambda: products.trend(store, flt, period, stl)))


@router.get("/hour-weekday", response_model=MatrixOut, summary="Weekday × hour counts")
def hour_weekday(_: Viewer, flt: Filter, svc: Svc, store: Reader) -> MatrixOut:
    """Incidents by weekday (Monday first) and hour (UTC)."""
    return MatrixOut(**svc.rt.cached(("hw", repr(flt)), lambda: products.hour_weekday(store, flt)))


@router.get("/categories", response_model=RowsOut, summary="Counts per category")
def categories(_: Viewer, flt: Filter, svc: Svc, store: Reader) -> RowsOut:
    """Counts per canonical category, largest first."""
    return RowsOut(**svc.rt.cached(("cat", repr(flt)), lambda: products.categories(store, flt)))


@router.get("/areas", response_model=RowsOut, summary="Counts per area")
def areas(_: Viewer, flt: Filter, svc: Svc, store: Reader, column: AreaColumn = "district") -> RowsOut:
    """Counts per value of an area column."""
    return RowsOut(**svc.rt.cached(("area", repr(flt), column), lambda: products.by_area(store, flt, column)))


@router.get("/compstat", response_model=CompStatOut, summary="CompStat table")
def compstat(_: Viewer, flt: Filter, svc: Svc, store: Reader,
             as_of: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None) -> CompStatOut:
    """Week, 28 days and year to date against last year, with Poisson z and exact p."""
    return CompStatOut(**svc.rt.cached(("cs", repr(flt), as_of), lambda: products.compstat(store, flt, as_of)))


@router.get("/cells", response_model=FeatureCollectionOut, summary="Density on square cells (GeoJSON)")
def cells(_: Viewer, flt: Filter, svc: Svc, store: Reader, cell_m: CellM = 500.0) -> FeatureCollectionOut:
    """Incidents per square cell, as WGS84 polygons."""
    return FeatureCollectionOut(**svc.rt.cached(("cells", repr(flt), cell_m),
                                                lambda: products.density_cells(store, flt, cell_m)))


@router.get("/outlines", response_model=FeatureCollectionOut, summary="Area outlines with counts (GeoJSON)")
def outlines(_: Viewer, flt: Filter, svc: Svc, store: Reader, column: AreaColumn = "district") -> FeatureCollectionOut:
    """Approximate outline of each area (hull of its incidents) with its count: a choropleth without tiles."""
    return FeatureCollectionOut(**svc.rt.cached(("outl", repr(flt), column),
                                                lambda: products.area_outlines(store, flt, column)))
