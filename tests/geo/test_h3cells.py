"""H3 cells of incident points: the cross-chunk cache gives exactly the library's cells."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np

from crimelens.geo.h3cells import PointCells, h3_columns

_POOL = np.random.default_rng(0).uniform((41.6, -87.9), (42.0, -87.5), (500, 2))


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    pool_lat, pool_lon = _POOL[:, 0], _POOL[:, 1]
    pick = rng.integers(0, 500, n)
    lat, lon = pool_lat[pick].copy(), pool_lon[pick].copy()
    lat[rng.random(n) < 0.1] = np.nan  # incidents without a location
    return lat, lon


def test_cached_chunks_match_uncached_cells_and_the_library() -> None:
    rng = np.random.default_rng(3)
    cache = PointCells()
    for _ in range(4):  # the same block-level points recur in every chunk
        lat, lon = _points(rng, 2000)
        cached = h3_columns(lat, lon, cache)
        fresh = h3_columns(lat, lon)
        for res, cells in cached.items():
            assert cells.equals(fresh[res])
        ok = np.isfinite(lat)
        want = [h3i.latlng_to_cell(a, b, 9) for a, b in zip(lat[ok], lon[ok], strict=True)]
        assert cached[9][ok].tolist() == want
        assert cached[9][~ok].isna().all()
    assert 0 < len(cache) <= 500


def test_a_full_cache_starts_afresh_and_stays_correct() -> None:
    rng = np.random.default_rng(4)
    cache = PointCells(max_points=100)
    for _ in range(3):
        lat, lon = rng.uniform(41.6, 42.0, 300), rng.uniform(-87.9, -87.5, 300)
        got = h3_columns(lat, lon, cache)[9].tolist()
        assert got == [h3i.latlng_to_cell(a, b, 9) for a, b in zip(lat, lon, strict=True)]
        assert len(cache) <= 300
