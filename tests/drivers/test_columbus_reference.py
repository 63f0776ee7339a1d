"""Columbus (Anselin 1988) reference: crimelens reproduces the published OLS and spatial lag fits.

OLS of CRIME on INC and HOVAL: Anselin (1988, table 6.2) and the GeoDa workbook (Anselin 2005,
ch. 22) print CONSTANT 68.6190, INC -1.5973, HOVAL -0.2739 (R² 0.5524, log-likelihood -187.377).
ML spatial lag with queen contiguity from the shapefile: the GeoDa workbook (ch. 23) prints
rho 0.4233, CONSTANT 45.6033, INC -1.0487, HOVAL -0.2663, log-likelihood -182.674, AIC 373.348.
(Anselin 1988's lag estimates, rho 0.431, come from his original hand-coded contiguity file and a
slightly different data vintage; see docs/drivers.md.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crimelens.drivers.pipeline import run_drivers
from crimelens.sources.areas import read_areas


def _coef(run: object, name: str) -> float:
    table = run.result.coefficients  # type: ignore[attr-defined]
    return float(table.loc[table["name"] == name, "estimate"].iloc[0])


def test_ols_matches_published(columbus_shp: Path) -> None:
    layer = read_areas(columbus_shp, id_col="POLYID")
    run = run_drivers(layer, y="CRIME", xs=["INC", "HOVAL"], model="ols", weights="queen")
    assert round(_coef(run, "CONSTANT"), 4) == 68.6190
    assert round(_coef(run, "INC"), 4) == -1.5973
    assert round(_coef(run, "HOVAL"), 4) == -0.2739
    assert round(run.result.fit["r2"], 4) == 0.5524  # type: ignore[arg-type]
    assert round(run.result.fit["log_likelihood"], 3) == -187.377  # type: ignore[arg-type]
    diag = run.result.diagnostics
    # GeoDa workbook, OLS diagnostics with queen weights
    assert round(diag["moran_residuals"]["I"], 4) == 0.2221
    assert round(diag["lm_lag"]["statistic"], 4) == 8.8980
    assert round(diag["lm_error"]["statistic"], 4) == 5.2062
    assert round(diag["jarque_bera"]["statistic"], 4) == 1.8358
    assert round(diag["breusch_pagan"]["statistic"], 4) == 7.9004
    assert diag["suggested_model"] == "lag"


def test_ml_lag_matches_geoda_workbook(columbus_shp: Path) -> None:
    layer = read_areas(columbus_shp, id_col="POLYID")
    run = run_drivers(layer, y="CRIME", xs=["INC", "HOVAL"], model="lag", weights="queen")
    assert round(run.result.spatial["rho"], 4) == 0.4233  # type: ignore[arg-type]
    assert round(_coef(run, "CONSTANT"), 2) == 45.60
    assert round(_coef(run, "INC"), 4) == -1.0487
    assert round(_coef(run, "HOVAL"), 4) == -0.2663
    assert round(run.result.fit["log_likelihood"], 3) == -182.674  # type: ignore[arg-type]
    assert round(run.result.fit["aic"], 3) == 373.348  # type: ignore[arg-type]
    # the lag soaks up the residual autocorrelation OLS left
    assert run.result.diagnostics["moran_residuals"]["p_value"] > 0.05


@pytest.mark.parametrize("model", ["error", pytest.param("gwr", marks=pytest.mark.slow)])
def test_other_models_run_on_columbus(columbus_shp: Path, model: str) -> None:
    layer = read_areas(columbus_shp, id_col="POLYID")
    run = run_drivers(layer, y="CRIME", xs=["INC", "HOVAL"], model=model, weights="queen")
    assert run.result.fit["n"] == 49
    if model == "error":
        # GeoDa workbook ML error: lambda 0.5468, INC -0.9573, HOVAL -0.3046
        assert round(run.result.spatial["lambda"], 4) == 0.5468  # type: ignore[arg-type]
        assert round(_coef(run, "INC"), 4) == -0.9573
    else:
        local = run.result.local
        assert local is not None and len(local) == 49
        shares = run.result.coefficients.set_index("name")["share_significant"]
        assert ((shares >= 0) & (shares <= 1)).all()
        # the corrected critical t (da Silva & Fotheringham 2016) is stricter than the plain t(0.975, n-1)
        from scipy import stats

        crit = run.result.coefficients["critical_t"]
        assert (crit > stats.t.ppf(0.975, 48) + 0.2).all()
