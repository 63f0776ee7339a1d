"""One drivers run: an area layer, a response, covariates and a model name in; a fitted result out.

The response is an attribute of the layer, or incident counts per area (computed by the caller
from the store with :func:`~crimelens.drivers.areas.count_by_area`). With an exposure column
(``offset``), count models use ``log(exposure)`` as offset and the other models explain the rate per
1,000 units of exposure; rates and their empirical-Bayes smooths are returned beside the fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from crimelens.drivers.areas import AREA_ID, AreaLayer
from crimelens.drivers.design import DriverData, DriverModel, ModelResult, build_design
from crimelens.drivers.gwr import GWRModel
from crimelens.drivers.rates import area_rates
from crimelens.drivers.regression import CountModel, OLSModel, SpatialErrorModel, SpatialLagModel
from crimelens.drivers.weights import SpatialWeights, build_weights
from crimelens.exceptions import InputError

MODELS = ("ols", "lag", "error", "glm", "gwr", "mgwr")
COUNT_COLUMN = "count"
RATE_COLUMN = "rate_per_1000"


@dataclass(slots=True)
class DriversRun:
    """A fitted drivers run: the result, the inputs it used, rates when an exposure was given."""

    result: ModelResult
    data: DriverData
    weights: SpatialWeights
    rates: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def make_model(model: str, *, method: str = "ml", family: str = "auto") -> DriverModel:
    """The estimator for a model name (``ols|lag|error|glm|gwr|mgwr``)."""
    if model == "ols":
        return OLSModel()
    if model == "lag":
        return SpatialLagModel(method=method)
    if model == "error":
        return SpatialErrorModel(method=method)
    if model == "glm":
        return CountModel(family=family)
    if model in ("gwr", "mgwr"):
        return GWRModel(multiscale=model == "mgwr")
    raise InputError(f"--model {model!r}: expected one of {', '.join(MODELS)}")


def run_drivers(
    layer: AreaLayer, *, y: str, xs: list[str], model: str = "ols", weights: str = "queen",
    offset: str | None = None, counts: pd.Series | None = None, method: str = "ml", family: str = "auto",
) -> DriversRun:
    """Fit ``model`` of ``y`` on ``xs`` over ``layer`` (``counts`` supplies ``y == "count"``)."""
    estimator = make_model(model, method=method, family=family)
    frame = pd.DataFrame(layer.frame.drop(columns="geometry"))
    notes: list[str] = []
    response = y
    is_count = counts is not None
    if is_count:
        assert counts is not None
        frame[COUNT_COLUMN] = counts.reindex(frame[AREA_ID].to_numpy(), fill_value=0).to_numpy()
        response = COUNT_COLUMN
    if offset is not None and offset not in layer.population:
        notes.append(f"offset {offset!r} was not declared as a population column when the layer was loaded")
    metric = layer.metric()
    ids = frame[AREA_ID].astype(str).tolist()
    w = build_weights(metric, weights, ids=ids)
    rates = None
    if offset is not None and offset in frame.columns:
        base = frame.set_index(AREA_ID)
        rates = area_rates(pd.to_numeric(base[response], errors="coerce").fillna(0),
                           pd.to_numeric(base[offset], errors="coerce"), weights=w)
        if model != "glm":
            frame[RATE_COLUMN] = rates["rate"].to_numpy()
            notes.append(f"{response} divided by {offset} and modelled as a rate per 1,000 (use --model glm "
                         "to model the count with an offset)")
            response = RATE_COLUMN
    cent = metric.geometry.centroid
    coords = pd.DataFrame({"x": cent.x, "y": cent.y}).to_numpy()
    data = build_design(frame, response, xs, ids=ids, offset=offset if model == "glm" else None,
                        coords=coords, weights=w, count=is_count)
    result = estimator.fit(data).result_
    result.params.update({"response": response, "covariates": list(xs), "weights": w.summary(),
                          "layer": layer.name})
    result.notes[:0] = [*layer.notes, *w.notes, *notes]
    return DriversRun(result=result, data=data, weights=w, rates=rates, notes=notes)
