"""Local Moran's I equals esda's reference values and labels planted clusters High-High."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import LocalMoran, count_incidents, grid_counts

from .conftest import CRS, Cluster

esda = pytest.importorskip("esda")
libpysal = pytest.importorskip("libpysal")


def _units() -> object:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(0, 2500, 500), rng.normal(700, 120, 200), rng.uniform(1800, 2200, 5)])
    y = np.concatenate([rng.uniform(0, 2500, 500), rng.normal(1800, 120, 200), rng.uniform(300, 700, 5)])
    return grid_counts(pd.DataFrame({"x": x, "y": y}), 250, CRS)


@pytest.mark.parametrize(("weights", "transform"), [("queen", "r"), ("knn", "r"), ("queen", "b")])
def test_local_moran_equals_esda(weights: str, transform: str) -> None:
    units = _units()
    est = LocalMoran(weights=weights, transform=transform, k=5).fit(units)  # type: ignore[arg-type]
    w = libpysal.weights.WSP(est._make_weights(units).to_sparse()).to_W(silence_warnings=True)
    ref = esda.Moran_Local(units.counts, w, transformation="O", permutations=0)
    np.testing.assert_allclose(est.I_, ref.Is, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.EI_, ref.EI, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.VI_, ref.VI, rtol=1e-10, atol=1e-12)
    names = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}  # PySAL quadrant codes
    assert [names[q] for q in ref.q] == list(est.quadrant_)


def test_queen_weights_on_a_grid_are_the_eight_surrounding_cells() -> None:
    units = _units()
    w = LocalMoran(transform="b")._make_weights(units)
    interior = w.row_sums.max()
    assert interior == 8


def test_planted_cluster_is_high_high(city: Callable[..., pd.DataFrame]) -> None:
    df = city(4, background=1500, clusters=[Cluster(2500, 2500, 200, 400)])
    units = grid_counts(count_incidents(df, ["cell:250"]), 250, CRS)
    est = LocalMoran().fit(units)
    pos = int(np.argmax(units.counts))
    assert est.labels_[pos] == "HH"
    assert est.result_.class_counts()["HH"] >= 3
    perm = LocalMoran(inference="permutation", n_permutations=499, random_state=1).fit(units)
    assert perm.labels_[pos] == "HH"
    assert ((perm.p_ > 0) & (perm.p_ <= 1)).all()
