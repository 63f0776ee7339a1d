"""``/choropleth``: a classified map of counts, rates per 1,000 residents or smoothed rates.

The units are the grid cells of the density map or the areas of an area column (district, beat,
ward...: outlined by the hull of their incidents until stored area layers exist). Values are
classified on the server by mapclassify (quantiles, Fisher-Jenks natural breaks or equal
intervals); the legend comes back in class order, lowest first, with each class's bounds and
count, so the page never sorts classes itself.

Rates need residents per area: the caller sends them (``POST``, as ``/fairness/stops`` does),
and the answer is aggregated counts only. Smoothed rates are global empirical-Bayes estimates
(Marshall 1991, via PySAL ``esda``), which pull rates of small populations toward the city rate.

Stored area layers (``crimelens areas load``) have routes of their own: ``GET /choropleth/layers``
lists them and ``POST /choropleth/layers/{name}`` maps a layer's own polygons: incidents are placed
in its areas (point-in-polygon), rates use a population column the layer declared, and smoothed
rates are global or spatial (queen) empirical Bayes from :func:`crimelens.drivers.rates.area_rates`.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from crimelens.exceptions import InputError
from crimelens.service import products
from crimelens.service.deps import Filter, Reader, Svc, Viewer
from crimelens.service.schemas import errors

router = APIRouter(prefix="/choropleth", tags=["aggregates"], responses=errors(400, 401, 403))
Layer = Literal["grid", "beat", "district", "ward", "community_area", "neighbourhood", "lsoa"]
Measure = Literal["count", "rate", "smoothed_rate"]
Scheme = Literal["quantiles", "natural_breaks", "equal_interval"]


class Residents(BaseModel):
    """Residents of one area (the value of the layer's area column)."""

    model_config = ConfigDict(extra="forbid")
    area: str = Field(min_length=1, max_length=100)
    population: float = Field(gt=0)


class ChoroplethIn(BaseModel):
    """What to map: the layer, the measure, the classification and (for rates) the residents."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "layer": "district", "measure": "rate", "scheme": "natural_breaks", "k": 5,
        "population": [{"area": "001", "population": 52000}, {"area": "002", "population": 61000}]}]})
    layer: Layer = "district"
    measure: Measure = "count"
    scheme: Scheme = "quantiles"
    k: int = Field(default=5, ge=2, le=9)
    cell_m: float = Field(default=500.0, ge=50, le=5000)
    population: list[Residents] = Field(default_factory=list, max_length=20_000)


class LegendClass(BaseModel):
    """One class of the legend: its number (1 = lowest), bounds and how many units fall in it."""

    cls: int
    lower: float
    upper: float
    units: int
    label: str


class ChoroplethOut(BaseModel):
    """Units as GeoJSON features (``value``, ``class`` and ``count`` properties) and the legend."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
    legend: list[LegendClass]
    parameters: dict[str, Any]


def classify(values: np.ndarray, scheme: Scheme, k: int) -> tuple[np.ndarray, list[float]]:
    """Class of each value (0 = lowest) and the classes' upper bounds, by mapclassify."""
    import mapclassify

    distinct = len(np.unique(values))
    k = max(1, min(k, distinct))
    if distinct < 2:
        return np.zeros(len(values), dtype=int), [float(values.max())] if len(values) else []
    make = {"quantiles": mapclassify.Quantiles, "natural_breaks": mapclassify.FisherJenks,
            "equal_interval": mapclassify.EqualInterval}[scheme]
    with warnings.catch_warnings():  # fewer distinct values than classes: mapclassify lowers k itself
        warnings.simplefilter("ignore", UserWarning)
        c = make(values, k=k)
    return np.asarray(c.yb, dtype=int), [float(b) for b in c.bins]


def legend(values: np.ndarray, yb: np.ndarray, bins: list[float], digits: int) -> list[LegendClass]:
    """Legend rows in class order, lowest first; empty classes are kept so the ramp stays whole."""
    out: list[LegendClass] = []
    lower = float(values.min()) if len(values) else 0.0
    for i, upper in enumerate(bins):
        lo = lower if i == 0 else bins[i - 1]
        out.append(LegendClass(cls=i + 1, lower=round(lo, 4), upper=round(upper, 4),
                               units=int((yb == i).sum()),
                               label=f"{lo:,.{digits}f} – {upper:,.{digits}f}"))
    return out


def _units(store: Any, flt: Any, body: ChoroplethIn) -> list[dict[str, Any]]:
    if body.layer == "grid":
        feats = products.density_cells(store, flt, body.cell_m)["features"]
        for i, f in enumerate(feats):
            ring = f["geometry"]["coordinates"][0]
            f["properties"]["area"] = f"cell {i + 1} ({ring[0][1]:.4f}, {ring[0][0]:.4f})"
        return list(feats)
    return list(products.area_outlines(store, flt, body.layer)["features"])


def _rates(counts: np.ndarray, residents: np.ndarray, smoothed: bool) -> np.ndarray:
    """Incidents per 1,000 residents; smoothed: global empirical Bayes (esda)."""
    if not smoothed:
        plain: np.ndarray = np.divide(counts, residents) * 1000.0
        return plain
    from esda.smoothing import Empirical_Bayes

    smooth = Empirical_Bayes(counts.astype(float), residents.astype(float))
    return np.fromiter((float(v) * 1000.0 for v in np.ravel(smooth.r)), dtype=float, count=len(counts))


def build(store: Any, flt: Any, body: ChoroplethIn) -> dict[str, Any]:
    """The classified units and legend for ``body`` under the filter ``flt``."""
    feats = _units(store, flt, body)
    counts = np.array([f["properties"]["count"] for f in feats], dtype=float)
    params: dict[str, Any] = {"layer": body.layer, "measure": body.measure, "scheme": body.scheme,
                              "classifier": "mapclassify", "outline": "grid cells" if body.layer == "grid"
                              else "convex hull of the area's incidents (approximate)"}
    if body.measure == "count":
        values, digits = counts, 0
    else:
        if body.layer == "grid":
            raise HTTPException(422, "rates need residents per area: choose an area layer, not the grid")
        pop = {r.area: r.population for r in body.population}
        if not pop:
            raise HTTPException(422, "rates need the residents of each area (population rows)")
        feats = [f for f in feats if f["properties"]["area"] in pop]
        if not feats:
            raise HTTPException(422, f"no population row matches a {body.layer} value in the data")
        counts = np.array([f["properties"]["count"] for f in feats], dtype=float)
        residents = np.array([pop[f["properties"]["area"]] for f in feats], dtype=float)
        values, digits = _rates(counts, residents, body.measure == "smoothed_rate"), 2
        params["units"] = "incidents per 1,000 residents"
        params["smoothing"] = "global empirical Bayes (Marshall 1991; esda)" if body.measure == "smoothed_rate" \
            else None
        params["unmatched_areas"] = sorted(set(pop) - {f["properties"]["area"] for f in feats})[:50]
    yb, bins = classify(values, body.scheme, body.k) if len(values) else (np.zeros(0, dtype=int), [])
    for f, v, c in zip(feats, values.tolist(), yb.tolist(), strict=True):
        f["properties"].update(value=round(float(v), 4), **{"class": int(c) + 1})
    return {"features": feats, "legend": legend(values, yb, bins, digits), "parameters": params}


@router.post("", response_model=ChoroplethOut, summary="Classified counts or rates by grid cell or area")
async def choropleth(body: ChoroplethIn, _: Viewer, flt: Filter, svc: Svc, store: Reader) -> Response:
    """Counts, rates per 1,000 residents or smoothed rates, classified server-side, legend in class order."""
    def compute() -> bytes:
        return ChoroplethOut(**build(store, flt, body)).model_dump_json().encode()

    body_json: bytes = await svc.rt.acached(("choro", repr(flt), body.model_dump_json()), compute)
    return Response(body_json, media_type="application/json")


# -- stored area layers --------------------------------------------------------------------------
LayerMeasure = Literal["count", "rate", "smoothed_rate", "spatial_smoothed_rate"]


class StoredLayerIn(BaseModel):
    """What to map on a stored layer: the measure, the declared population column and the classes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "measure": "smoothed_rate", "population": "POP", "scheme": "natural_breaks", "k": 5}]})
    measure: LayerMeasure = "count"
    population: str | None = Field(default=None, max_length=200)
    scheme: Scheme = "quantiles"
    k: int = Field(default=5, ge=2, le=9)


def _geojson(layer: Any) -> list[dict[str, Any]]:
    """The layer's polygons in WGS84 as GeoJSON geometries (file order)."""
    import shapely.geometry

    frame = layer.frame
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return [shapely.geometry.mapping(g) for g in frame.geometry]


def build_layer(store: Any, flt: Any, name: str, body: StoredLayerIn) -> dict[str, Any]:
    """The stored layer ``name`` classified by ``body`` under the incident filter ``flt``."""
    import pandas as pd

    from crimelens.drivers.areas import AREA_ID, count_by_area
    from crimelens.drivers.rates import area_rates
    from crimelens.store.areas import load_layer

    layer = load_layer(store, name)
    pts = store.incidents(flt, columns=["lat", "lon"]).dropna(subset=["lat", "lon"])
    ids = layer.frame[AREA_ID].astype(str)
    counts = count_by_area(layer, pts["lon"], pts["lat"]) if len(pts) else pd.Series(0, index=ids.to_numpy())
    params: dict[str, Any] = {"layer": name, "measure": body.measure, "scheme": body.scheme,
                              "classifier": "mapclassify", "outline": "stored area polygons",
                              "incidents": len(pts), "placed": int(counts.sum())}
    rates = None
    if body.measure == "count":
        values, digits = counts.to_numpy(dtype=float), 0
    else:
        if not layer.population:
            raise InputError(f"layer {name!r} declares no population column; reload it with --population COL")
        col = body.population or layer.population[0]
        if col not in layer.population:
            raise InputError(f"{col!r} is not a declared population column of {name!r} "
                             f"(declared: {', '.join(layer.population)})")
        exposure = pd.Series(pd.to_numeric(layer.frame[col], errors="coerce").to_numpy(), index=counts.index)
        weights = None
        if body.measure == "spatial_smoothed_rate":
            from crimelens.drivers.weights import build_weights

            weights = build_weights(layer.metric(), "queen", ids=list(ids))
            params["weights"] = weights.summary()
        rates = area_rates(counts, exposure, weights=weights)
        key = {"rate": "rate", "smoothed_rate": "rate_global_eb", "spatial_smoothed_rate": "rate_spatial_eb"}
        values, digits = rates[key[body.measure]].to_numpy(dtype=float), 2
        params.update(population=col, units="incidents per 1,000 residents", city_rate=round(
            float(counts.sum()) / float(exposure.sum()) * 1000.0, 6),
            smoothing={"rate": None, "smoothed_rate": "global empirical Bayes (Marshall 1991; esda)",
                       "spatial_smoothed_rate": "spatial empirical Bayes, queen contiguity (esda)"}[body.measure])
    yb, bins = classify(values, body.scheme, body.k) if len(values) else (np.zeros(0, dtype=int), [])
    feats = []
    for i, (aid, geom) in enumerate(zip(ids, _geojson(layer), strict=True)):
        props: dict[str, Any] = {"area": aid, "count": int(counts.iloc[i]), "value": round(float(values[i]), 4),
                                 "class": int(yb[i]) + 1}
        if rates is not None:
            props.update(population=float(rates["population"].iloc[i]), rate=round(float(rates["rate"].iloc[i]), 4),
                         rate_eb=round(float(rates["rate_global_eb"].iloc[i]), 4))
        feats.append({"type": "Feature", "geometry": geom, "properties": props})
    return {"features": feats, "legend": legend(values, yb, bins, digits), "parameters": params}


@router.get("/layers", response_model=list[dict[str, Any]], summary="Stored area layers")
def layers(_: Viewer, store: Reader) -> list[dict[str, Any]]:
    """Name, number of areas, CRS and declared population columns of each stored layer."""
    from crimelens.store.areas import list_layers

    return list_layers(store)


@router.post("/layers/{name}", response_model=ChoroplethOut, responses=errors(404),
             summary="Classified counts, rates or EB-smoothed rates on a stored area layer")
def stored_layer(name: str, body: StoredLayerIn, _: Viewer, flt: Filter, store: Reader) -> ChoroplethOut:
    """The layer's polygons with counts (point-in-polygon), rates per 1,000 residents of a declared
    population column, or empirical-Bayes smoothed rates, classified by mapclassify, legend lowest first."""
    try:
        return ChoroplethOut(**build_layer(store, flt, name, body))
    except InputError as e:
        raise HTTPException(404 if "no area layer" in str(e) else 422, str(e)) from None
