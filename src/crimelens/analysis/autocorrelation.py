"""Global spatial autocorrelation and the choice of a distance band.

Global Moran's I (Moran 1950; Cliff & Ord 1981) says whether high counts sit near high counts
anywhere on the map. Evaluated over a series of distance bands, its z-score rises while the band
still captures the scale of clustering and falls once it dilutes it; the first peak is the
distance band that ArcGIS's *Incremental Spatial Autocorrelation* and *Optimized Hot Spot Analysis*
use for Gi*. :func:`incremental_band` does the same on the unit centroids (exact and fast on grids,
where the weights are convolutions).

References
----------
Moran, P. A. P. (1950). Notes on continuous stochastic phenomena. *Biometrika* 37, 17-23.
Cliff, A. D. & Ord, J. K. (1981). *Spatial Processes: Models and Applications*. Pion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import stats

from crimelens.analysis.units import UnitCounts
from crimelens.exceptions import InputError
from crimelens.geo.weights import FloatArray, GridBandWeights, Weights

#: Candidate bands, in multiples of the unit spacing, searched by :func:`incremental_band`.
CANDIDATE_STEPS: Final = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)


@dataclass(frozen=True)
class GlobalMoran:
    """Global Moran's I with its expectation, variance (normality assumption), z and p."""

    I: float  # noqa: E741 -- the statistic's conventional name
    expected: float
    variance: float
    z: float
    p: float


def global_moran(values: FloatArray, weights: Weights) -> GlobalMoran:
    """Global Moran's I of ``values`` under binary or general weights without self weights.

    ``I = (n / S0) Σ_i Σ_j w_ij z_i z_j / Σ_i z_i²`` with ``z = x - mean``; the variance is the
    normality-assumption variance of Cliff & Ord (1981), two-sided p from the normal.
    """
    if weights.include_self:
        raise InputError("global Moran's I needs weights without self-neighbours")
    x = np.asarray(values, dtype=float)
    n = x.size
    z = x - x.mean()
    den = float(z @ z)
    rs = weights.row_sums
    s0 = float(rs.sum())
    if n < 3 or den == 0 or s0 == 0:
        return GlobalMoran(float("nan"), -1.0 / max(n - 1, 1), float("nan"), 0.0, 1.0)
    i_stat = n / s0 * float(z @ weights.lag(z)) / den
    if isinstance(weights, GridBandWeights):  # symmetric binary: S1 = 2 S0, S2 = 4 Σ w_i.²
        s1 = 2.0 * float(weights.row_sums_sq.sum())
        s2 = 4.0 * float((rs**2).sum())
    else:
        mat = weights.to_sparse()
        sym = mat + mat.T
        s1 = 0.5 * float(sym.multiply(sym).sum())
        col = np.asarray(mat.sum(axis=0), dtype=float).ravel()
        s2 = float(((rs + col) ** 2).sum())
    e = -1.0 / (n - 1)
    var = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - e * e
    zz = (i_stat - e) / np.sqrt(var) if var > 0 else 0.0
    return GlobalMoran(float(i_stat), e, float(var), float(zz), float(2 * stats.norm.sf(abs(zz))))


@dataclass(frozen=True)
class BandChoice:
    """The chosen distance band and the z-score profile it was chosen from."""

    band: float
    rule: str
    bands: tuple[float, ...]
    z: tuple[float, ...]


def incremental_band(units: UnitCounts, steps: tuple[float, ...] = CANDIDATE_STEPS) -> BandChoice:
    """Distance band at the first peak of global Moran's z over increasing bands.

    Bands are ``steps × spacing`` (spacing = cell size, or the median nearest-neighbour distance of
    the units). The first band whose z is above the previous band's and at least the next one's is
    chosen. When z keeps rising (typical of whole cities, where a broad centre-suburb gradient
    dominates), there is no scale of clustering to pick, and the band falls back to the mean distance
    from a unit to its ``K`` nearest neighbours with ``K = 5% of the units`` (between 3 and 30), in the
    spirit of ArcGIS Optimized Hot Spot Analysis. Without any variation: ``1.5 × spacing``.
    """
    spacing = units.spacing()
    bands = tuple(s * spacing for s in steps)
    zs: list[float] = []
    for b in bands:
        w = units.weights(method="distance", band=b, include_self=False)
        zs.append(global_moran(units.counts, w).z if w.row_sums.sum() > 0 else float("nan"))
    z = np.array(zs)
    if not np.isfinite(z).any() or np.nanmax(np.abs(z)) == 0:
        return BandChoice(1.5 * spacing, "default 1.5 x spacing (no variation)", bands, tuple(zs))
    for i in range(len(z) - 1):
        rising = i == 0 or z[i] > z[i - 1]
        if np.isfinite(z[i]) and rising and z[i] >= z[i + 1]:
            return BandChoice(bands[i], "first peak of global Moran's z", bands, tuple(zs))
    from scipy.spatial import cKDTree

    k = int(min(30, max(3, round(0.05 * units.n))))
    k = min(k, units.n - 1)
    pts = np.column_stack([units.x, units.y])
    d, _ = cKDTree(pts).query(pts, k=k + 1)
    band = float(d[:, 1:].mean())
    return BandChoice(band, f"no peak of global Moran's z: mean distance to {k} nearest neighbours", bands, tuple(zs))
