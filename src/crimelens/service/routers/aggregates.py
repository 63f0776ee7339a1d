"""``/aggregates``: time series, hour × weekday, categories, areas, CompStat, density cells, outlines."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from crimelens.service import products
from crimelens.service.deps import Filter, Reader, Svc, Viewer, cached_json
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
async def timeseries(_: Viewer, flt: Filter, svc: Svc, store: Reader,
                     period: Literal["day", "week", "month"] = "week", stl: bool = False) -> Response:
    """Zero-filled counts; with ``stl=true`` also trend, seasonal and residual (Cleveland et al. 1990)."""
    return await cached_json(svc, ("trend", repr(flt), period, stl), SeriesOut,
                             lambda: products.trend(store, flt, period, stl),
                             inline=not stl and svc.rt.rollup_answers([period, "time_precision"], flt))


@router.get("/hour-weekday", response_model=MatrixOut, summary="Weekday × hour counts")
async def hour_weekday(_: Viewer, flt: Filter, svc: Svc, store: Reader) -> Response:
    """Incidents by weekday (Monday first) and hour (UTC)."""
    return await cached_json(svc, ("hw", repr(flt)), MatrixOut,
                             lambda: products.hour_weekday(store, flt),
                             inline=svc.rt.rollup_answers(["hour", "weekday", "time_precision"], flt))


@router.get("/categories", response_model=RowsOut, summary="Counts per category")
async def categories(_: Viewer, flt: Filter, svc: Svc, store: Reader) -> Response:
    """Counts per canonical category, largest first."""
    return await cached_json(svc, ("cat", repr(flt)), RowsOut,
                             lambda: products.categories(store, flt),
                             inline=svc.rt.rollup_answers(["category", "category_group"], flt))


@router.get("/areas", response_model=RowsOut, summary="Counts per area")
async def areas(_: Viewer, flt: Filter, svc: Svc, store: Reader, column: AreaColumn = "district") -> Response:
    """Counts per value of an area column."""
    return await cached_json(svc, ("area", repr(flt), column), RowsOut,
                             lambda: products.by_area(store, flt, column))


@router.get("/compstat", response_model=CompStatOut, summary="CompStat table")
async def compstat(_: Viewer, flt: Filter, svc: Svc, store: Reader,
                   as_of: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None) -> Response:
    """Week, 28 days and year to date against last year, with Poisson z and exact p."""
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise HTTPException(422, f"as_of {as_of!r} is not a calendar date (YYYY-MM-DD)") from None
        if not 1900 <= day.year <= 2200:
            raise HTTPException(422, "as_of must fall between the years 1900 and 2200")
    def compute() -> dict[str, Any]:
        # the daily counts do not depend on as_of: one store scan per data generation and filter
        counts = svc.rt.cached(("cs-counts", repr(flt)), lambda: products.compstat_counts(store, flt))
        return products.compstat_from_counts(counts, as_of)

    return await cached_json(svc, ("cs", repr(flt), as_of), CompStatOut, compute)


@router.get("/cells", response_model=FeatureCollectionOut, summary="Density on square cells (GeoJSON)")
async def cells(_: Viewer, flt: Filter, svc: Svc, store: Reader, cell_m: CellM = 500.0) -> Response:
    """Incidents per square cell, as WGS84 polygons."""
    return await cached_json(svc, ("cells", repr(flt), cell_m), FeatureCollectionOut,
                             lambda: products.density_cells(store, flt, cell_m))


@router.get("/outlines", response_model=FeatureCollectionOut, summary="Area outlines with counts (GeoJSON)")
async def outlines(_: Viewer, flt: Filter, svc: Svc, store: Reader, column: AreaColumn = "district") -> Response:
    """Approximate outline of each area (hull of its incidents) with its count: a choropleth without tiles."""
    return await cached_json(svc, ("outl", repr(flt), column), FeatureCollectionOut,
                             lambda: products.area_outlines(store, flt, column))
