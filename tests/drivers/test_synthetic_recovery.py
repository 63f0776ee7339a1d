"""A synthetic city with planted covariate effects: each model recovers them within its intervals."""

from __future__ import annotations

import numpy as np
import pytest

from crimelens.drivers.areas import AreaLayer
from crimelens.drivers.pipeline import run_drivers
from crimelens.drivers.weights import build_weights
from tests.drivers.conftest import square_grid

B0, B1, B2, RHO = 10.0, 2.0, -1.5, 0.5


def _layer(seed: int = 7, n: int = 14) -> AreaLayer:
    rng = np.random.default_rng(seed)
    gdf = square_grid(n, n)
    gdf["x1"] = rng.normal(5, 2, len(gdf))  # type: ignore[index]
    gdf["x2"] = rng.normal(0, 3, len(gdf))  # type: ignore[index]
    gdf["pop"] = rng.integers(500, 5000, len(gdf))  # type: ignore[index]
    gdf = gdf.rename(columns={"cid": "area_id"})  # type: ignore[attr-defined]
    return AreaLayer(name="synthetic", frame=gdf, population=("pop",), crs="EPSG:4326")


def _covers(run: object, name: str, truth: float) -> bool:
    t = run.result.coefficients.set_index("name")  # type: ignore[attr-defined]
    return bool(t.loc[name, "ci_low"] <= truth <= t.loc[name, "ci_high"])


def test_ols_recovers_planted_effects() -> None:
    layer = _layer()
    rng = np.random.default_rng(1)
    f = layer.frame
    f["y"] = B0 + B1 * f["x1"] + B2 * f["x2"] + rng.normal(0, 1.0, len(f))
    run = run_drivers(layer, y="y", xs=["x1", "x2"], model="ols")
    assert _covers(run, "x1", B1) and _covers(run, "x2", B2) and _covers(run, "CONSTANT", B0)
    # no spatial process was planted: the residual Moran's I is not significant
    assert run.result.diagnostics["moran_residuals"]["p_value"] > 0.05


@pytest.mark.parametrize("method", ["ml", "gmm"])
def test_lag_model_recovers_rho(method: str) -> None:
    layer = _layer()
    f = layer.frame
    w = build_weights(layer.metric(), "queen").w
    w.transform = "r"
    full = w.full()[0]
    rng = np.random.default_rng(2)
    xb = B0 + B1 * f["x1"].to_numpy() + B2 * f["x2"].to_numpy() + rng.normal(0, 1.0, len(f))
    f["y"] = np.linalg.solve(np.eye(len(f)) - RHO * full, xb)
    ols = run_drivers(layer, y="y", xs=["x1", "x2"], model="ols")
    assert ols.result.diagnostics["lm_lag"]["p_value"] < 0.01  # OLS diagnostics see the planted lag
    run = run_drivers(layer, y="y", xs=["x1", "x2"], model="lag", method=method)
    assert _covers(run, "rho", RHO) and _covers(run, "x1", B1) and _covers(run, "x2", B2)


def test_error_model_recovers_lambda() -> None:
    layer = _layer()
    f = layer.frame
    w = build_weights(layer.metric(), "rook").w
    full = w.full()[0]
    rng = np.random.default_rng(3)
    u = np.linalg.solve(np.eye(len(f)) - 0.6 * full, rng.normal(0, 1.0, len(f)))
    f["y"] = B0 + B1 * f["x1"] + B2 * f["x2"] + u
    run = run_drivers(layer, y="y", xs=["x1", "x2"], model="error", weights="rook")
    assert _covers(run, "lambda", 0.6) and _covers(run, "x1", B1) and _covers(run, "x2", B2)


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_count_model_recovers_rate_ratios(family: str) -> None:
    layer = _layer()
    f = layer.frame
    rng = np.random.default_rng(6)
    mu = f["pop"] * np.exp(-6.0 + 0.15 * f["x1"] - 0.1 * f["x2"])
    f["crimes"] = rng.poisson(mu) if family == "poisson" else rng.negative_binomial(2, 2 / (2 + mu))
    run = run_drivers(layer, y="crimes", xs=["x1", "x2"], model="glm", offset="pop", family=family)
    assert run.result.model == f"glm_{family}"
    assert _covers(run, "x1", 0.15) and _covers(run, "x2", -0.1) and _covers(run, "CONSTANT", -6.0)
    if family == "negbin":  # planted overdispersion: NB alpha = 1 / size = 0.5
        assert 0.3 < run.result.fit["nb_alpha"] < 0.8  # type: ignore[operator]
    assert run.rates is not None and {"rate", "rate_global_eb", "rate_spatial_eb"} <= set(run.rates.columns)


def test_gwr_finds_a_varying_effect() -> None:
    layer = _layer(n=8)
    f = layer.frame
    cx = layer.centroids()[:, 0]
    slope = 1.0 + 2.0 * (cx - cx.min()) / np.ptp(cx)  # the x1 effect grows west to east, 1 -> 3
    rng = np.random.default_rng(5)
    f["y"] = B0 + slope * f["x1"] + rng.normal(0, 0.5, len(f))
    run = run_drivers(layer, y="y", xs=["x1"], model="gwr")
    local = run.result.local
    assert local is not None
    # local estimates follow the planted gradient, and are significant almost everywhere
    assert np.corrcoef(local["b_x1"], slope)[0, 1] > 0.8
    table = run.result.coefficients.set_index("name")
    assert table.loc["x1", "share_significant"] > 0.9
    # the corrected critical t (da Silva & Fotheringham 2016) is stricter than the plain t(0.975, n - 1)
    from scipy import stats

    assert (table["critical_t"] > stats.t.ppf(0.975, len(f) - 1) + 0.2).all()
    assert (table["adjusted_alpha"] < 0.05).all()


@pytest.mark.parametrize("model", ["ols", "lag", "error", "glm", "gwr", "mgwr"])
def test_estimator_contract(model: str) -> None:
    """scikit-learn conventions: clone round trip, not-fitted error, input left untouched, deterministic."""
    from sklearn.base import clone

    from crimelens.drivers.design import build_design
    from crimelens.drivers.pipeline import make_model
    from crimelens.exceptions import NotFittedError

    est = make_model(model, method="ml", family="poisson")
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est  # type: ignore[attr-defined]
    with pytest.raises(NotFittedError):
        _ = est.coefficients_  # type: ignore[attr-defined]
    if model in ("gwr", "mgwr"):
        return  # fitting is covered by test_gwr_finds_a_varying_effect (and the slow St Louis runs)
    layer = _layer(n=6)
    f = layer.frame
    f["y"] = np.random.default_rng(0).poisson(5 + f["x1"].clip(0))
    data = build_design(f, "y", ["x1", "x2"], ids=list(f["area_id"]), weights=build_weights(layer.metric(), "queen"),
                        offset="pop" if model == "glm" else None)
    before = data.X.copy()
    a = est.fit(data).result_.coefficients
    b = clone(est).fit(data).result_.coefficients
    assert (before == data.X).all()
    assert a.equals(b)
