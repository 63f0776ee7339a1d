"""Donut masking, snapping to anonymous points and their verification (SECURITY.md PRV-02)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from crimelens.exceptions import InputError
from crimelens.geo import to_wgs84
from crimelens.governance.anchors import snap_to_anchors
from crimelens.governance.geomask import SAME_LOCATION_M, donut_candidates, donut_mask, verify_mask

CRS = "EPSG:32616"
X0, Y0 = 447_000.0, 4_636_000.0


def clustered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A dense hot spot (300 locations within ~40 m, some repeated) and 80 sparse outskirts points."""
    rng = np.random.default_rng(seed)
    hx, hy = X0 + rng.normal(0, 20, 300), Y0 + rng.normal(0, 20, 300)
    sx, sy = X0 + rng.uniform(-4_000, 4_000, 80), Y0 + rng.uniform(-4_000, 4_000, 80)
    x, y = np.concatenate([hx, sx]), np.concatenate([hy, sy])
    repeat = rng.integers(0, len(x), 60)  # several incidents at one address
    return np.concatenate([x, x[repeat]]), np.concatenate([y, y[repeat]])


def test_no_published_point_equals_an_input_point() -> None:
    x, y = clustered()
    for mask in (donut_mask(x, y, k=10, seed=1), snap_to_anchors(x, y, k=10, cell_size=50)):
        d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([mask.x, mask.y]))
        assert d.min() > SAME_LOCATION_M
        assert verify_mask(x, y, mask.x, mask.y).equal_input == 0


def test_adaptive_donut_reaches_k_where_a_fixed_radius_fails() -> None:
    x, y = clustered()
    fixed = donut_mask(x, y, k=0, min_radius=30, max_radius=30, seed=1)
    assert np.allclose(fixed.displacement, 30)
    assert verify_mask(x, y, fixed.x, fixed.y).k_anonymity.min() < 10  # the sparse points stay exposed
    for k in (5, 10, 20):
        mask = donut_mask(x, y, k=k, seed=1)
        check = verify_mask(x, y, mask.x, mask.y, k=k)
        assert check.k_anonymity.min() >= k and mask.protected.all()
        assert check.summary()["share_below_k"] == 0.0
    # adaptive: the hot spot moves far less than the outskirts
    assert np.median(mask.displacement[:300]) < 0.1 * np.median(mask.displacement[300:380])


def test_donut_is_reproducible_keyed_and_per_location() -> None:
    x, y = clustered()
    a, b, c = donut_mask(x, y, k=10, seed=7), donut_mask(x, y, k=10, seed=7), donut_mask(x, y, k=10, seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.allclose(a.x, c.x)
    # incidents at one address share one masked point: no averaging attack
    for i in range(380, len(x)):
        j = int(np.flatnonzero((x[:380] == x[i]) & (y[:380] == y[i]))[0])
        assert (a.x[i], a.y[i]) == (a.x[j], a.y[j])
    # with a fixed reference layer an address keeps its masked point in a later, different release
    ref = np.column_stack([x[:380], y[:380]])
    full = donut_mask(x[:380], y[:380], k=10, seed=7, reference=ref)
    part = donut_mask(x[:200], y[:200], k=10, seed=7, reference=ref)
    assert np.allclose(full.x[:200], part.x) and np.allclose(full.y[:200], part.y)


def test_donut_lat_lon_and_limits() -> None:
    x, y = clustered()
    mask = donut_mask(x, y, k=10, seed=3, crs=CRS, max_radius=200)
    lon, lat = to_wgs84(mask.x, mask.y, CRS)
    assert mask.lon is not None and mask.lat is not None
    assert np.allclose(mask.lon, lon) and np.allclose(mask.lat, lat)
    assert mask.protected[:300].all() and not mask.protected[300:380].all()  # sparse points need > 200 m
    frame = mask.to_frame()
    assert {"lat", "lon", "displacement", "protected"} <= set(frame.columns)


def test_snap_anchors_each_cover_k_locations() -> None:
    x, y = clustered()
    for k in (5, 10, 25):
        mask = snap_to_anchors(x, y, k=k, cell_size=25, crs=CRS)
        assert mask.anchors is not None and mask.anchor is not None
        assert mask.anchors["catchment"].min() >= k
        check = verify_mask(x, y, mask.x, mask.y, k=k)
        assert check.catchment.min() >= k and check.equal_input == 0
        # the dense hot spot gets fine anchors, so it moves less than the outskirts
        assert np.median(mask.displacement[:300]) < np.median(mask.displacement[300:380])


def test_snap_with_a_reference_layer_counts_reference_points() -> None:
    rng = np.random.default_rng(2)
    addresses = np.column_stack([X0 + rng.uniform(-500, 500, 400), Y0 + rng.uniform(-500, 500, 400)])
    pick = rng.integers(0, 400, 150)
    x, y = addresses[pick, 0], addresses[pick, 1]
    mask = snap_to_anchors(x, y, k=10, cell_size=100, reference=addresses)
    assert mask.anchors is not None and mask.anchors["catchment"].min() >= 10
    assert mask.anchors["catchment"].sum() == 400
    assert verify_mask(x, y, mask.x, mask.y, reference=addresses).equal_input == 0


def test_verify_flags_an_unmasked_release() -> None:
    x, y = clustered()
    check = verify_mask(x, y, x, y, k=5)
    assert check.equal_input == len(x) and check.k_anonymity.max() == 0
    s = check.summary()
    assert s["nearest_reference_is_true_share"] == 1.0 and s["share_below_k"] == 1.0


def test_bad_inputs() -> None:
    x, y = clustered()
    with pytest.raises(InputError, match="finite"):
        donut_mask(np.append(x, np.nan), np.append(y, 1.0), k=5)
    with pytest.raises(InputError, match="distinct reference locations"):
        donut_mask(x[:5], y[:5], k=10)
    with pytest.raises(InputError, match="distinct reference locations"):
        snap_to_anchors(x[:5], y[:5], k=10)
    with pytest.raises(InputError):
        donut_mask(x, y, k=0)


def test_donut_resists_the_annulus_attack() -> None:
    """An attacker who knows the reference layer and the parameters (not the seed) keeps only the
    addresses whose donut contains the published point; without the redraws that set falls below k."""
    x, y = clustered(3)
    rng = np.random.default_rng(3)
    extra = np.column_stack([X0 + rng.uniform(-4_000, 4_000, 400), Y0 + rng.uniform(-4_000, 4_000, 400)])
    addresses = np.vstack([np.column_stack([x, y]), extra])
    naive = donut_mask(x, y, k=10, seed=1, reference=addresses, min_candidates=0)
    assert (donut_candidates(naive.x, naive.y, addresses, k=10) < 10).any()
    mask = donut_mask(x, y, k=10, seed=1, reference=addresses)
    cand = donut_candidates(mask.x[mask.protected], mask.y[mask.protected], addresses, k=10)
    assert cand.min() >= 10 and mask.protected.mean() > 0.95
    assert verify_mask(x, y, mask.x, mask.y, reference=addresses, k=10).k_anonymity.min() >= 10
