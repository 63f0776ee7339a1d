"""St Louis region homicides (Messner et al. 1999, shipped in libpysal): every model end to end.

78 counties, homicide counts HC8893 and rates HR8893 (per 100,000) for 1988-93, population PO8893,
resource deprivation RDAC90 and police expenditure PE87.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crimelens.drivers.areas import AreaLayer
from crimelens.drivers.pipeline import run_drivers
from crimelens.sources.areas import read_areas

X = ["RDAC90", "PE87"]


@pytest.fixture(scope="module")
def stl(stl_shp: Path) -> AreaLayer:
    return read_areas(stl_shp, id_col="FIPSNO", crs="EPSG:4326", population=("PO8893",))


def _est(run: object, name: str) -> float:
    t = run.result.coefficients.set_index("name")  # type: ignore[attr-defined]
    return float(t.loc[name, "estimate"])


@pytest.mark.parametrize(("model", "method"), [("ols", "ml"), ("lag", "ml"), ("lag", "gmm"), ("error", "ml"),
                                               ("error", "gmm")])
def test_linear_models(stl: AreaLayer, model: str, method: str) -> None:
    run = run_drivers(stl, y="HR8893", xs=X, model=model, method=method)
    # deprivation goes with more homicide in every specification (Messner et al. 1999; Anselin's stl workbook)
    t = run.result.coefficients.set_index("name")
    assert t.loc["RDAC90", "estimate"] > 0 and t.loc["RDAC90", "p_value"] < 0.01
    if model == "ols":
        diag = run.result.diagnostics
        assert diag["moran_residuals"]["p_value"] < 0.01  # OLS leaves spatial autocorrelation
        assert diag["suggested_model"] in ("lag", "error")
    else:
        param = "rho" if model == "lag" else "lambda"
        assert 0 < run.result.spatial[param] < 1  # type: ignore[operator]


def test_count_model_with_population_offset(stl: AreaLayer) -> None:
    run = run_drivers(stl, y="HC8893", xs=X, model="glm", offset="PO8893")
    assert run.result.model == "glm_negbin"  # homicide counts are overdispersed; auto picks NB
    assert any("dispersion" in n for n in run.result.notes)
    assert _est(run, "RDAC90") > 0
    assert run.rates is not None
    # EB smoothing pulls small counties towards the reference: its spread is below the raw rates'
    assert run.rates["rate_global_eb"].std() < run.rates["rate"].std()
    assert run.rates["rate_spatial_eb"].std() < run.rates["rate"].std()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gwr", "mgwr"])
def test_gwr_models(stl: AreaLayer, model: str) -> None:
    run = run_drivers(stl, y="HR8893", xs=X, model=model)
    table = run.result.coefficients.set_index("name")
    assert run.result.local is not None and len(run.result.local) == 78
    assert (table["share_significant"].between(0, 1)).all()
    assert table.loc["RDAC90", "median"] > 0
