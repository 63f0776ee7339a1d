"""``/forecasts``: the latest published risk surface per model."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from crimelens.filters import IncidentFilter
from crimelens.service import products
from crimelens.service.deps import Filter, Reader, Svc, Viewer
from crimelens.service.schemas import ForecastOut, ModelOut, errors

router = APIRouter(prefix="/forecasts", tags=["forecasts"], responses=errors(401, 403))


@router.get("", response_model=list[ModelOut], summary="Models with a published surface")
def list_forecasts(_: Viewer, store: Reader) -> list[ModelOut]:
    """Every model with a published surface (the fallback model is always listed)."""
    pub = products.latest(store, "forecast")
    out = [ModelOut(name=k, created_at=v["created_at"], metrics=v["payload"].get("parameters", {}))
           for k, v in pub.items()]
    return [*out, ModelOut(name=products.FALLBACK_MODEL, created_at=None, metrics={"fallback": True})]


@router.get("/{model}", response_model=ForecastOut, summary="Latest risk surface of a model",
            responses=errors(404))
def get_forecast(model: str, who: Viewer, flt: Filter, svc: Svc, store: Reader) -> ForecastOut:
    """The model's latest top cells as GeoJSON (filters apply to the fallback model only)."""
    pub = products.latest(store, "forecast")
    if model in pub:
        return ForecastOut(model=model, created_at=pub[model]["created_at"], **pub[model]["payload"])
    if model != products.FALLBACK_MODEL:
        raise HTTPException(404, "no published forecast for this model")
    cell = svc.rt.settings.hotspot_cell_m
    fc = svc.rt.cached(("fc", repr(flt), cell), lambda: products.fallback_forecast(store, flt or IncidentFilter(),
                                                                                   cell))
    return ForecastOut(model=model, **fc)
