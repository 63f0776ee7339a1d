"""Spatial weights: the FFT grid weights equal their explicit sparse form; kNN has k neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from crimelens.exceptions import InputError
from crimelens.geo.weights import GridBandWeights, SparseWeights, band_offsets, without_self


def test_band_offsets_are_the_cells_within_the_band() -> None:
    offs = band_offsets(100.0, 150.0)
    assert len(offs) == 9  # queen neighbourhood and the cell itself
    assert len(band_offsets(100.0, 100.0)) == 5  # rook
    assert all((dr * dr + dc * dc) * 100**2 <= 250**2 for dr, dc in band_offsets(100.0, 250.0))


@pytest.mark.parametrize("band", [100.0, 150.0, 320.0, 700.0])
@pytest.mark.parametrize("include_self", [True, False])
def test_grid_lag_equals_sparse_matrix_product(band: float, include_self: bool) -> None:
    rng = np.random.default_rng(0)
    ny, nx = 17, 23
    keep = np.flatnonzero(rng.random(ny * nx) < 0.8)  # a masked study area
    w = GridBandWeights((ny, nx), keep, 100.0, band, include_self=include_self)
    v = rng.poisson(3, (4, keep.size)).astype(float)
    m = w.to_sparse()
    np.testing.assert_allclose(w.lag(v), (m @ v.T).T, atol=1e-9)
    np.testing.assert_allclose(w.lag(v[0]), m @ v[0], atol=1e-9)
    np.testing.assert_allclose(w.row_sums, np.asarray(m.sum(axis=1)).ravel())
    assert (m != m.T).nnz == 0


def test_sparse_distance_band_matches_grid_weights() -> None:
    ny, nx, size = 9, 11, 50.0
    idx = np.arange(ny * nx)
    gw = GridBandWeights((ny, nx), idx, size, 120.0, include_self=True)
    x = (idx % nx + 0.5) * size
    y = (idx // nx + 0.5) * size
    sw = SparseWeights.distance_band(x, y, 120.0, include_self=True)
    assert (gw.to_sparse() != sw.to_sparse()).nnz == 0


def test_knn_gives_exactly_k_other_neighbours() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1000, 200), rng.uniform(0, 1000, 200)
    w = SparseWeights.knn(x, y, 6, include_self=False)
    m = w.to_sparse()
    assert (np.asarray(m.getnnz(axis=1)) == 6).all()
    assert m.diagonal().sum() == 0
    assert (w.row_sums == 6).all()
    ws = SparseWeights.knn(x, y, 6, include_self=True)
    assert (ws.to_sparse().diagonal() == 1).all()
    with pytest.raises(InputError):
        SparseWeights.knn(x, y, 200, include_self=False)


def test_without_self_drops_the_diagonal() -> None:
    w = GridBandWeights((5, 5), np.arange(25), 10.0, 15.0, include_self=True)
    assert without_self(w).to_sparse().diagonal().sum() == 0
    s = SparseWeights.distance_band(np.arange(5.0), np.zeros(5), 1.0, include_self=True)
    assert without_self(s).to_sparse().diagonal().sum() == 0
    assert without_self(s).to_sparse().nnz == s.to_sparse().nnz - 5
