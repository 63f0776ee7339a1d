"""Local Moran's I (Anselin 1995): clusters of high or low values and spatial outliers.

With ``z = (x - x̄) / s`` (``s`` the population standard deviation) and spatial weights ``w_ij``
(no self weight, row-standardised by default), the local statistic is

.. math:: I_i = (n - 1)\\, z_i \\sum_j w_{ij} z_j \\,/\\, \\sum_j z_j^2 ,

the scaling used by PySAL's esda. Its sign and the sign of the spatial lag place each unit in a
quadrant of the Moran scatterplot: **HH** (high among high: a hot spot cluster), **LL** (low among
low), **HL** (a high outlier among low values) and **LH** (a low outlier among high values).

Inference is analytical -- the expectation and variance of ``I_i`` under total randomisation
(Anselin 1995, in the form of Sokal, Oden & Thomson 1998), two-sided normal p -- or by
conditional permutation (each unit keeps its value while the others are shuffled), with
GeoDa's folded pseudo p-value ``(1 + min(#≥, #<)) / (m + 1)``.

References
----------
Anselin, L. (1995). Local indicators of spatial association -- LISA. *Geographical Analysis*
27(2), 93-115.
Sokal, R. R., Oden, N. L. & Thomson, B. A. (1998). Local spatial autocorrelation in a biological
model. *Geographical Analysis* 30(4), 331-354.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from crimelens.analysis.gistar import _as_units
from crimelens.analysis.palettes import LISA_COLOURS
from crimelens.analysis.results import LocalMoranResult
from crimelens.analysis.significance import benjamini_hochberg, two_sided_normal_p
from crimelens.analysis.units import UnitCounts
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.weights import FloatArray, SparseWeights, Weights


def row_standardise(w: Weights) -> SparseWeights:
    """Row-standardised copy of ``w`` (each row sums to one; isolated units keep zeros)."""
    m = w.to_sparse().astype(float)
    rs = np.asarray(m.sum(axis=1), dtype=float).ravel()
    inv = np.divide(1.0, rs, out=np.zeros_like(rs), where=rs > 0)
    from scipy import sparse

    desc = dict(w.describe())  # keeps the neighbour count of the binary weights
    desc["transform"] = "row-standardised"
    return SparseWeights(sparse.diags(inv) @ m, include_self=w.include_self, description=desc)


def local_moran_moments(z: FloatArray, w: Weights) -> tuple[FloatArray, FloatArray]:
    """Expectation and variance of ``I_i`` under total randomisation (Sokal et al. 1998, A3-A4)."""
    n = z.size
    m2 = float((z * z).sum()) / n
    m4 = float((z**4).sum()) / n
    b2 = m4 / m2**2 if m2 > 0 else 0.0
    wi = w.row_sums
    wi2 = w.row_sums_sq
    e = -wi / (n - 1)
    v = wi2 * (n - b2) / (n - 1) + (wi**2 - wi2) * (2 * b2 - n) / ((n - 1) * (n - 2)) - (wi / (n - 1)) ** 2
    return e, v


class LocalMoran(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
    """Local Moran's I cluster and outlier analysis (Anselin 1995).

    Parameters
    ----------
    weights : {"queen", "distance", "knn"}
        ``queen`` = units within 1.5 × spacing (the 8 surrounding cells on a grid); a distance
        band of ``distance_band`` metres; or ``k`` nearest neighbours.
    distance_band : float, optional
        Band in metres for ``weights="distance"``.
    k : int
        Neighbours for ``weights="knn"``.
    transform : {"r", "b"}
        Row-standardised (default, as GeoDa) or binary weights.
    inference : {"analytical", "permutation"}
        Normal approximation or conditional permutation.
    n_permutations : int
        Permutations for ``inference="permutation"``.
    alpha : float
        Significance level of the cluster map.
    fdr : bool
        Benjamini-Hochberg correction at ``alpha``.
    cell_size, crs : optional
        Needed only to fit directly on a store counts frame.
    random_state : int, optional
        Seed of the permutations.

    Attributes
    ----------
    I_ : ndarray
        Local Moran's I per unit.
    z_, p_ : ndarray
        z-score (analytical) and p-value per unit.
    quadrant_ : ndarray of str
        HH, LL, HL or LH per unit (regardless of significance).
    labels_ : ndarray of str
        The quadrant where significant, else ``not_significant``.
    result_ : LocalMoranResult
    """

    def __init__(
        self,
        *,
        weights: Literal["queen", "distance", "knn"] = "queen",
        distance_band: float | None = None,
        k: int = 8,
        transform: Literal["r", "b"] = "r",
        inference: Literal["analytical", "permutation"] = "analytical",
        n_permutations: int = 999,
        alpha: float = 0.05,
        fdr: bool = False,
        cell_size: float | None = None,
        crs: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.weights = weights
        self.distance_band = distance_band
        self.k = k
        self.transform = transform
        self.inference = inference
        self.n_permutations = n_permutations
        self.alpha = alpha
        self.fdr = fdr
        self.cell_size = cell_size
        self.crs = crs
        self.random_state = random_state

    def _make_weights(self, units: UnitCounts) -> Weights:
        if self.weights == "knn":
            w = units.weights(method="knn", k=self.k, include_self=False)
        elif self.weights == "queen":
            w = units.weights(method="distance", band=1.5 * units.spacing(), include_self=False)
        elif self.weights == "distance":
            if self.distance_band is None:
                raise InputError("weights='distance' needs distance_band (metres)")
            w = units.weights(method="distance", band=float(self.distance_band), include_self=False)
        else:
            raise InputError(f"unknown weights {self.weights!r}")
        if self.transform == "r":
            return row_standardise(w)
        if self.transform != "b":
            raise InputError("transform must be 'r' or 'b'")
        return w

    def fit(self, counts: UnitCounts | pd.DataFrame, y: None = None) -> LocalMoran:
        """Compute Local Moran's I, its inference and the cluster labels."""
        units = _as_units(counts, self.cell_size, self.crs)
        w = self._make_weights(units)
        x = units.counts
        n = x.size
        if n < 3:
            raise InputError("Local Moran's I needs at least three units")
        sd = x.std()
        z = (x - x.mean()) / sd if sd > 0 else np.zeros(n)
        den = float((z * z).sum()) or 1.0
        lag = w.lag(z)
        i_stat = (n - 1) * z * lag / den
        e, v = local_moran_moments(z, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            zscore = np.where(v > 0, (i_stat - e) / np.sqrt(v), 0.0)
        p = two_sided_normal_p(zscore) if self.inference == "analytical" else self._permutation_p(z, w, i_stat)
        quad = np.where(z > 0, np.where(lag > 0, "HH", "HL"), np.where(lag > 0, "LH", "LL")).astype(object)
        sig = benjamini_hochberg(p, self.alpha) if self.fdr else p <= self.alpha
        sig &= z != 0
        labels = np.where(sig, quad, "not_significant").astype(object)
        self.I_, self.z_, self.p_, self.EI_, self.VI_ = i_stat, zscore, p, e, v
        self.quadrant_, self.labels_, self.lag_ = quad, labels, lag
        params: dict[str, Any] = {
            "statistic": "Local Moran's I",
            "units": units.label(),
            "n_units": units.n,
            **({"cell_size_m": units.grid.cell_size} if units.grid is not None else {}),
            **w.describe(),
            "neighbourhood": self.weights,
            "inference": self.inference,
            **(
                {"n_permutations": self.n_permutations, "random_state": self.random_state}
                if self.inference == "permutation"
                else {}
            ),
            "alpha": self.alpha,
            "fdr": "Benjamini-Hochberg" if self.fdr else "none",
        }
        self.result_ = LocalMoranResult(
            "lisa",
            units,
            {"I": i_stat, "z": zscore, "p": p, "quadrant": quad, "class": labels},
            params,
            palette=LISA_COLOURS,
        )
        return self

    def _permutation_p(self, z: FloatArray, w: Weights, i_stat: FloatArray) -> FloatArray:
        if self.n_permutations < 1:
            raise InputError("n_permutations must be at least 1")
        rng = np.random.default_rng(self.random_state)
        n = z.size
        den = float((z * z).sum()) or 1.0
        batch = max(1, min(self.n_permutations, int(2e7 // max(n, 1))))
        ge = np.zeros(n)
        done = 0
        while done < self.n_permutations:
            m = min(batch, self.n_permutations - done)
            perm = np.stack([rng.permutation(z) for _ in range(m)])
            sims = (n - 1) * z[None, :] * w.lag(perm) / den
            ge += (sims >= i_stat[None, :]).sum(axis=0)
            done += m
        folded = np.minimum(ge, self.n_permutations - ge)
        return np.asarray((folded + 1.0) / (self.n_permutations + 1.0), dtype=float)

    def result(self) -> LocalMoranResult:
        """The fitted :class:`LocalMoranResult`."""
        if not hasattr(self, "result_"):
            raise NotFittedError("LocalMoran is not fitted: call fit(counts) first")
        return self.result_
