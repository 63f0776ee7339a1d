"""Risk terrain modelling on a synthetic city with a planted layer, a decoy layer and a planted road."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from crimelens.analysis.units import UnitCounts, grid_counts
from crimelens.drivers.rtm import (
    RiskLayer,
    RiskTerrainModel,
    evaluate_terrain,
    layer_from_frame,
    markdown_table,
    risk_factors,
    summary_markdown,
)
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.grid import SquareGrid

CRS = "EPSG:32617"
X0, Y0, SIDE, CELL = 620_000.0, 4_830_000.0, 6_000.0, 100.0


def _light() -> RiskTerrainModel:
    """A cheaper cross-validation for the secondary fits."""
    return RiskTerrainModel(bands=(1, 2), cv=3, n_alphas=10)


@dataclass
class City:
    grid: SquareGrid
    bars: np.ndarray
    decoy: np.ndarray
    road: shapely.LineString

    def incidents(self, seed: int, *, background: int = 1500, near_bars: int = 900, near_road: int = 0) -> np.ndarray:
        """Uniform background plus incidents scattered ~60 m around bars (and optionally the road)."""
        rng = np.random.default_rng(seed)
        parts = [np.column_stack([X0 + rng.uniform(0, SIDE, background), Y0 + rng.uniform(0, SIDE, background)])]
        parts.append(self.bars[rng.integers(0, len(self.bars), near_bars)] + rng.normal(0, 60, (near_bars, 2)))
        if near_road:
            at = shapely.line_interpolate_point(self.road, rng.uniform(0, self.road.length, near_road))
            parts.append(shapely.get_coordinates(at) + rng.normal(0, 40, (near_road, 2)))
        pts = np.vstack(parts)
        inside = (pts[:, 0] > X0) & (pts[:, 0] < X0 + SIDE) & (pts[:, 1] > Y0) & (pts[:, 1] < Y0 + SIDE)
        return pts[inside]

    def units(self, pts: np.ndarray) -> UnitCounts:
        return grid_counts(pd.DataFrame({"x": pts[:, 0], "y": pts[:, 1]}), CELL, CRS, grid=self.grid)

    def layer(self, name: str, geoms: object) -> RiskLayer:
        return layer_from_frame(name, gpd.GeoSeries(geoms, crs=CRS), CRS)


@pytest.fixture(scope="module")
def city() -> City:
    rng = np.random.default_rng(11)
    grid = SquareGrid(X0, Y0, CELL, int(SIDE / CELL), int(SIDE / CELL), CRS)

    def scatter(n: int) -> np.ndarray:
        return np.column_stack([X0 + 300 + rng.uniform(0, SIDE - 600, n), Y0 + 300 + rng.uniform(0, SIDE - 600, n)])

    road = shapely.LineString([(X0 + 500, Y0 + 800), (X0 + 3000, Y0 + 3500), (X0 + 5500, Y0 + 4000)])
    return City(grid, scatter(40), scatter(40), road)


@pytest.fixture(scope="module")
def fitted(city: City) -> tuple[RiskTerrainModel, UnitCounts]:
    units = city.units(city.incidents(1))
    layers = [city.layer("bars", shapely.points(city.bars)), city.layer("decoy", shapely.points(city.decoy))]
    return RiskTerrainModel().fit(units, layers), units


def test_planted_layer_is_selected_with_rrv_above_one_and_the_decoy_is_not(fitted: tuple) -> None:
    model, _ = fitted
    kept = model.factors_
    assert list(kept["layer"]) == ["bars"]
    row = kept.iloc[0]
    assert row["rrv"] > 1.5 and row["rrv_low"] > 1.0 and row["p"] < 1e-6
    assert row["rrv_low"] < row["rrv"] < row["rrv_high"]
    assert np.isclose(row["rrv"], np.exp(row["coefficient"]))
    cands = model.candidates_
    assert not cands.loc[cands["layer"] == "decoy", "in_model"].any()
    # every layer was tried both ways at every band
    assert set(cands["type"]) == {"proximity", "density"}
    assert set(cands["band_m"]) <= {100.0, 200.0, 300.0}


def test_risk_score_is_the_product_of_rrvs_and_ranks_cells_near_bars_first(fitted: tuple, city: City) -> None:
    model, units = fitted
    rrs = model.risk_score()
    factor = model.factors_.iloc[0]
    present = model.design_[factor["factor"]].to_numpy() == 1
    assert np.allclose(rrs[present], factor["rrv"]) and np.allclose(rrs[~present], 1.0)
    d = np.hypot(units.x[:, None] - city.bars[:, 0], units.y[:, None] - city.bars[:, 1]).min(axis=1)
    assert np.median(d[present]) < np.median(d[~present]) / 3
    assert np.isclose(model.expected().sum(), units.total, rtol=0.05)


def test_held_out_incidents_concentrate_in_the_riskiest_cells(fitted: tuple, city: City) -> None:
    model, units = fitted
    later = city.units(city.incidents(2))
    ev = evaluate_terrain(model.risk_score(), later.counts, units.counts, (0.05, 0.10))
    rtm = ev[ev["model"] == "rtm"].set_index("coverage")
    assert (rtm["pai"] > 2.0).all()
    assert (rtm["pai"] <= rtm["oracle_pai"] + 1e-9).all()
    base = ev[ev["model"] == "retro_count"].set_index("coverage")
    assert (base["cells"] == rtm["cells"]).all() and (base["pai"] > 1.0).all()


def test_a_line_layer_is_found_beside_a_point_layer(city: City) -> None:
    units = city.units(city.incidents(3, near_bars=600, near_road=900))
    layers = [city.layer("bars", shapely.points(city.bars)), city.layer("road", [city.road]),
              city.layer("decoy", shapely.points(city.decoy))]
    model = _light().fit(units, layers)
    assert set(model.factors_["layer"]) == {"bars", "road"}
    assert (model.factors_["rrv_low"] > 1).all()
    assert layers[1].geom_kind == "lines"


def test_reports_say_association_not_causation(fitted: tuple) -> None:
    model, _ = fitted
    text = summary_markdown(model, None, {"category": "robbery", "cell_m": 100, "crs": CRS, "bands_cells": [1, 2, 3],
                                          "layers": {"bars": {"features": 40, "geometry": "points"}}})
    assert "not causes" in text and "bars" in text and "modifiable areal unit" in text
    table = markdown_table(model.factors_)
    assert table.count("\n") == 1 + len(model.factors_) and "rrv_low" in table
    stats = model.fit_statistics()
    assert stats["in_model"] == 1 and stats["family"] in {"poisson", "negative_binomial"}


def test_clone_keeps_parameters_and_fit_leaves_the_input_alone(fitted: tuple, city: City) -> None:
    from sklearn.base import clone

    model, units = fitted
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "factors_")
    before = units.counts.copy()
    RiskTerrainModel(bands=(1,), kinds=("proximity",)).fit(units, [city.layer("bars", shapely.points(city.bars))])
    assert np.array_equal(units.counts, before)


def test_not_fitted_and_bad_layers(city: City) -> None:
    with pytest.raises(NotFittedError):
        RiskTerrainModel().risk_score()
    units = city.units(city.incidents(4, background=200, near_bars=100))
    with pytest.raises(InputError, match="no features"):
        layer_from_frame("empty", gpd.GeoSeries([], crs=CRS), CRS)
    with pytest.raises(InputError, match="Polygon"):
        city.layer("parks", [shapely.box(X0, Y0, X0 + 500, Y0 + 500)])
    far = city.layer("far", shapely.points(city.bars + 1e6))
    with pytest.raises(InputError, match="outside the study area"):
        risk_factors(units, [far])
    empty = units.with_counts(np.zeros(units.n))
    with pytest.raises(InputError, match="no incidents"):
        RiskTerrainModel().fit(empty, [city.layer("bars", shapely.points(city.bars))])
    with pytest.raises(InputError, match="unique"):
        risk_factors(units, [city.layer("a", shapely.points(city.bars))] * 2)


def _guarded(city: City, thin: float, radius: float = 250.0) -> tuple[UnitCounts, RiskLayer]:
    """Incidents removed (with probability ``thin``) within ``radius`` m of 'guardian' places."""
    rng = np.random.default_rng(21)
    guards = np.column_stack([X0 + 300 + rng.uniform(0, SIDE - 600, 30), Y0 + 300 + rng.uniform(0, SIDE - 600, 30)])
    pts = city.incidents(5, background=4000)
    d = np.hypot(pts[:, 0, None] - guards[:, 0], pts[:, 1, None] - guards[:, 1]).min(axis=1)
    keep = ~((d < radius) & (rng.random(len(pts)) < thin))
    return city.units(pts[keep]), city.layer("guards", shapely.points(guards))


def test_a_protective_layer_gets_rrv_below_one(city: City) -> None:
    units, guards = _guarded(city, 0.8)
    model = _light().fit(units, [city.layer("bars", shapely.points(city.bars)), guards])
    row = model.factors_.set_index("layer").loc["guards"]
    assert row["rrv_high"] < 1.0 and row["rrv"] < 0.5


def test_a_factor_whose_cells_hold_no_incidents_is_reported_not_estimated(city: City) -> None:
    units, guards = _guarded(city, 1.0, radius=400.0)  # cells within 200 m hold none at all
    model = _light().fit(units, [city.layer("bars", shapely.points(city.bars)), guards])
    assert "guards" not in set(model.factors_["layer"])
    assert any("guards" in d and "separation" in d for d in model.dropped_)
    assert np.isfinite(model.factors_[["rrv_low", "rrv_high"]].to_numpy()).all()


def test_only_a_decoy_layer_keeps_no_factor_and_a_flat_terrain(city: City) -> None:
    units = city.units(city.incidents(6, near_bars=0, background=2500))
    model = _light().fit(units, [city.layer("decoy", shapely.points(city.decoy))])
    assert model.factors_.empty
    assert np.allclose(model.risk_score(), 1.0)
    assert "No layer is associated" in summary_markdown(model, None, {})
