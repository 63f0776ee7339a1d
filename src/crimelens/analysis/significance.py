"""Significance of local statistics: p-values, false-discovery-rate control and confidence bins.

A map of 90,000 cells tested at 95% would show about 4,500 "hot spots" in pure noise. Like
ArcGIS's Hot Spot Analysis, crimelens can control the false discovery rate with the
Benjamini-Hochberg step-up procedure, applied separately at the 90%, 95% and 99% levels so that a
cell's confidence bin is the highest level at which it survives the correction.

Bins follow ArcGIS's ``Gi_Bin`` field: +3/+2/+1 for hot spots at 99/95/90% confidence, -3/-2/-1
for cold spots and 0 for not significant; our ``class`` names say the same in words
(``hot_99`` ... ``cold_99``). The colours live in :mod:`crimelens.analysis.palettes`.

References
----------
Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate: a practical and
powerful approach to multiple testing. *Journal of the Royal Statistical Society B* 57(1), 289-300.
Caldas de Castro, M. & Singer, B. H. (2006). Controlling the false discovery rate: a new
application to account for multiple and dependent tests in local statistics of spatial
association. *Geographical Analysis* 38(2), 180-208.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats

from crimelens.exceptions import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Confidence levels of the bins, weakest first, with their two-sided alpha.
LEVELS: Final = ((1, 0.10), (2, 0.05), (3, 0.01))

#: ``class`` name of each ``Gi_Bin`` value.
BIN_CLASS: Final[dict[int, str]] = {
    3: "hot_99",
    2: "hot_95",
    1: "hot_90",
    0: "not_significant",
    -1: "cold_90",
    -2: "cold_95",
    -3: "cold_99",
}
CLASS_BIN: Final[dict[str, int]] = {v: k for k, v in BIN_CLASS.items()}


def two_sided_normal_p(z: FloatArray) -> FloatArray:
    """Two-sided p-value of a standard normal z-score (NaN z gives p = 1)."""
    p = 2.0 * stats.norm.sf(np.abs(np.asarray(z, dtype=float)))
    return np.where(np.isnan(p), 1.0, p)


def benjamini_hochberg(p: FloatArray, alpha: float) -> npt.NDArray[np.bool_]:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at FDR ``alpha``.

    Rejects the ``k`` smallest p-values, ``k`` being the largest rank with
    ``p_(k) <= k * alpha / m`` (Benjamini & Hochberg 1995).
    """
    if not 0 < alpha < 1:
        raise InputError("alpha must lie in (0, 1)")
    pv = np.asarray(p, dtype=float)
    m = pv.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(pv, kind="stable")
    ranked = pv[order]
    below = ranked <= alpha * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below).max())
        out[order[: k + 1]] = True
    return out


def bh_adjusted(p: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject where ``q <= alpha``."""
    pv = np.asarray(p, dtype=float)
    m = pv.size
    if m == 0:
        return pv.copy()
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def confidence_bins(z: FloatArray, p: FloatArray, *, fdr: bool) -> IntArray:
    """ArcGIS ``Gi_Bin`` values (−3…+3) from z-scores (sign) and two-sided p-values.

    With ``fdr`` the significance at each level is decided by Benjamini-Hochberg at that level's
    alpha; otherwise by ``p <= alpha``.
    """
    zz = np.asarray(z, dtype=float)
    pv = np.asarray(p, dtype=float)
    level = np.zeros(pv.size, dtype=np.int64)
    for lvl, alpha in LEVELS:
        sig = benjamini_hochberg(pv, alpha) if fdr else pv <= alpha
        level[sig] = lvl
    return np.where(zz > 0, level, -level).astype(np.int64)


def bin_classes(bins: IntArray) -> npt.NDArray[np.object_]:
    """Class names (``hot_99`` ... ``cold_99``) of ``Gi_Bin`` values."""
    return np.array([BIN_CLASS[int(b)] for b in np.asarray(bins)], dtype=object)


def permutation_p(observed: FloatArray, simulated: FloatArray) -> FloatArray:
    """Two-sided pseudo p-values from simulations (``(m, n)``: ``m`` draws for ``n`` units).

    ``p = min(1, 2 * (1 + min(#sim ≥ obs, #sim ≤ obs)) / (m + 1))`` -- the folded one-sided
    pseudo p-value of Hope (1968) doubled for a two-sided test.
    """
    sim = np.asarray(simulated, dtype=float)
    obs = np.asarray(observed, dtype=float)
    m = sim.shape[0]
    ge = (sim >= obs[None, :]).sum(axis=0)
    le = (sim <= obs[None, :]).sum(axis=0)
    p = 2.0 * (1.0 + np.minimum(ge, le)) / (m + 1.0)
    return np.asarray(np.minimum(p, 1.0), dtype=float)
