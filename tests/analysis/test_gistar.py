"""Getis-Ord Gi*: equal to esda's reference, recovers planted hot spots, stays quiet on Poisson cities."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from crimelens.analysis import GetisOrd, count_incidents, grid_counts, incremental_band
from crimelens.analysis.gistar import gi_star_z
from crimelens.exceptions import InputError, NotFittedError

from .conftest import CRS, Cluster

esda = pytest.importorskip("esda")
libpysal = pytest.importorskip("libpysal")


def _small_units(seed: int = 0, cell: float = 200.0) -> object:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(0, 3000, 400), rng.normal(900, 150, 150)])
    y = np.concatenate([rng.uniform(0, 2400, 400), rng.normal(1600, 150, 150)])
    return grid_counts(pd.DataFrame({"x": x, "y": y}), cell, CRS)


@pytest.mark.parametrize("weights", ["distance", "knn"])
def test_gi_star_equals_esda_on_the_same_weights(weights: str) -> None:
    units = _small_units()
    est = GetisOrd(weights=weights, distance_band=450.0, k=6).fit(units)  # type: ignore[arg-type]
    w = libpysal.weights.WSP(est.weights_.to_sparse()).to_W(silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.G_Local(units.counts, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(est.z_, ref.Zs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(est.p_, 2 * ref.p_norm, rtol=1e-10)  # esda reports one-sided p


def test_planted_clusters_are_hot_and_bins_follow_arcgis(city: Callable[..., pd.DataFrame]) -> None:
    df = city(1, background=1500, clusters=[Cluster(1500, 1500, 120, 300)])
    units = grid_counts(count_incidents(df, ["cell:100"]), 100, CRS)
    est = GetisOrd(distance_band=200).fit(units)
    centre = units.grid.cell_of(np.array([df["x"].min() + 1500]), np.array([df["y"].min() + 1500]))
    pos = int(np.flatnonzero(units.ids == centre[0])[0])
    assert est.classes_[pos] == "hot_99" and est.labels_[pos] == 3
    frame = est.result_.to_frame()
    assert set(frame["Gi_Bin"]) <= {-3, -2, -1, 0, 1, 2, 3}
    expect = {3: "hot_99", 2: "hot_95", 1: "hot_90", 0: "not_significant", -1: "cold_90", -2: "cold_95", -3: "cold_99"}
    assert all(expect[b] == c for b, c in zip(frame["Gi_Bin"], frame["class"], strict=True))
    assert ((frame["z"] > 0) == (frame["Gi_Bin"] > 0)).all() or (frame["Gi_Bin"] <= 0).any()
    # significance is monotone in |z|: a 99% cell never has a smaller |z| than a 95% one (no FDR)
    raw = GetisOrd(distance_band=200, fdr=False).fit(units)
    z99 = np.abs(raw.z_[np.abs(raw.labels_) == 3])
    z95 = np.abs(raw.z_[np.abs(raw.labels_) == 2])
    assert z99.min() >= z95.max()


def test_recall_of_planted_hot_spots_on_the_synthetic_city(realistic_city: Any) -> None:
    """Recall ≥ 0.9 of the planted (persistent and street) hot-spot cells at 95% with FDR."""
    truth = realistic_city.truth
    inc = realistic_city.incidents
    cells = truth.hotspot_cells[truth.hotspot_cells["kind"].isin(["persistent", "street"])]
    found = planted = 0
    for cat, group in cells.groupby("category"):
        f = inc[inc["category"] == cat]
        units = grid_counts(count_incidents(f, ["cell:250"]), 250, truth.grid.crs, grid=truth.grid)
        est = GetisOrd().fit(units)
        hot = set(units.ids[est.labels_ >= 2].tolist())
        target = set(group["cell_id"].tolist())
        found += len(target & hot)
        planted += len(target)
    assert planted > 100
    assert found / planted >= 0.9


def test_poisson_city_has_few_false_hot_spots(poisson_city: Any) -> None:
    truth = poisson_city.truth
    units = grid_counts(
        count_incidents(poisson_city.incidents, ["cell:250"]),
        250,
        truth.grid.crs,
        grid=truth.grid,
    )
    with_fdr = GetisOrd().fit(units)
    without = GetisOrd(fdr=False).fit(units)
    assert (with_fdr.labels_ >= 2).mean() <= 0.05
    assert (without.labels_ >= 2).mean() <= 0.05
    assert (with_fdr.labels_ != 0).sum() <= (without.labels_ != 0).sum()


def test_permutation_inference_agrees_with_analytical_on_strong_cells() -> None:
    units = _small_units(3)
    ana = GetisOrd(distance_band=300).fit(units)
    perm = GetisOrd(distance_band=300, inference="permutation", n_permutations=999, random_state=0).fit(units)
    np.testing.assert_allclose(perm.z_, ana.z_)
    strong = np.abs(ana.z_) > 4
    assert strong.any()
    assert (perm.p_[strong] <= 0.01).all()
    weak = np.abs(ana.z_) < 0.5
    assert (perm.p_[weak] > 0.3).mean() > 0.8
    again = GetisOrd(distance_band=300, inference="permutation", n_permutations=999, random_state=0).fit(units)
    np.testing.assert_array_equal(again.p_, perm.p_)


def test_default_band_is_reported_and_sensible() -> None:
    units = _small_units()
    est = GetisOrd().fit(units)
    choice = incremental_band(units)
    assert est.distance_band_ == choice.band
    assert 200 <= choice.band <= 2000
    assert est.result_.parameters["band_rule"] == choice.rule
    assert est.result_.parameters["distance_band_m"] == choice.band


def test_estimator_contract() -> None:
    units = _small_units()
    est = GetisOrd(distance_band=300, fdr=False)
    with pytest.raises(NotFittedError):
        est.result()
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    counts_before = units.counts.copy()
    est.fit(units)
    np.testing.assert_array_equal(units.counts, counts_before)
    with pytest.raises(InputError):
        GetisOrd(inference="bootstrap").fit(units)  # type: ignore[arg-type]


def test_fit_on_a_store_counts_frame_and_constant_values() -> None:
    frame = pd.DataFrame({"cell_x": [10, 11, 12, 10], "cell_y": [5, 5, 5, 7], "count": [3, 1, 2, 5]})
    est = GetisOrd(distance_band=150, cell_size=100, crs=CRS).fit(frame)
    assert est.result_.units.n == 9  # 3 x 3 zero-filled
    assert est.result_.units.total == 11
    flat = grid_counts(pd.DataFrame({"cell_x": [0, 2], "cell_y": [0, 2], "count": [1, 1]}), 100, CRS)
    z = gi_star_z(np.ones(flat.n), flat.weights(band=150))
    assert (z == 0).all()  # no variation, no hot spot
