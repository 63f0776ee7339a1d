"""Control charts over a series' recent windows: EWMA (Roberts 1959) and CUSUM (Page 1954).

Each window count is first turned into a normal score by the probability integral transform of
its predictive distribution (:mod:`crimelens.alerts.expected`), ``u = Φ⁻¹(1 − mid-p)``, so one
chart design fits counts of any size and dispersion: under no change the scores are roughly
independent standard normal.

* **EWMA** ``Z_t = λ u_t + (1 − λ) Z_{t−1}``, ``Z_0 = 0``; its null standard deviation is
  ``σ_t = √(λ/(2 − λ) · (1 − (1 − λ)^{2t}))``, so ``Z_t/σ_t`` is a z-score and its upper tail a
  p-value that can enter the false discovery rate procedure with the other comparisons. Small
  ``λ`` accumulates evidence of a sustained moderate rise.
* **CUSUM** ``S_t = max(0, S_{t−1} + u_t − k)`` signals when ``S_t > h``. With reference value
  ``k`` (half the shift to detect, in standard deviations) the in-control average run length for a
  threshold ``h`` follows Siegmund's (1985) approximation
  ``ARL₀ ≈ (e^{2kb} − 2kb − 1)/(2k²)``, ``b = h + 1.166``; :func:`cusum_threshold` inverts it so
  that ``m`` charts watched together raise on average at most ``α`` false signals per window
  (``ARL₀ = m/α``) -- a threshold calibrated across all comparisons.

References
----------
Page, E. S. (1954). Continuous inspection schemes. *Biometrika* 41(1/2), 100-115.
Roberts, S. W. (1959). Control chart tests based on geometric moving averages. *Technometrics*
1(3), 239-250.
Siegmund, D. (1985). *Sequential Analysis: Tests and Confidence Intervals*. Springer.
Lucas, J. M. (1985). Counted data CUSUM's. *Technometrics* 27(2), 129-144.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from crimelens.exceptions import InputError

FloatArray = npt.NDArray[np.float64]


def ewma(scores: npt.ArrayLike, lam: float = 0.3) -> tuple[FloatArray, FloatArray]:
    """Final EWMA value of each row of ``scores`` (series × time, oldest first) and its null sd."""
    if not 0 < lam <= 1:
        raise InputError(f"EWMA lambda must be in (0, 1], got {lam}")
    u = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    z = np.zeros(u.shape[0])
    for t in range(u.shape[1]):
        z = lam * u[:, t] + (1 - lam) * z
    steps = u.shape[1]
    sd = math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * steps))) if steps else 1.0
    return z, np.full(u.shape[0], sd)


def ewma_p_value(scores: npt.ArrayLike, lam: float = 0.3) -> FloatArray:
    """Upper-tail p-value of the final EWMA of each row."""
    z, sd = ewma(scores, lam)
    return np.asarray(stats.norm.sf(z / sd), dtype=np.float64)


def cusum(scores: npt.ArrayLike, k: float = 0.5) -> FloatArray:
    """Final upper CUSUM of each row of ``scores`` (series × time, oldest first)."""
    if k < 0:
        raise InputError("CUSUM reference value k must not be negative")
    u = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    s = np.zeros(u.shape[0])
    for t in range(u.shape[1]):
        s = np.maximum(0.0, s + u[:, t] - k)
    return s


def siegmund_arl(h: float, k: float) -> float:
    """In-control average run length of a standard normal CUSUM (Siegmund's approximation)."""
    if k == 0:
        b = h + 1.166
        return b * b
    b = h + 1.166
    x = 2 * k * b
    return (math.exp(x) - x - 1) / (2 * k * k)


def cusum_threshold(arl0: float, k: float = 0.5) -> float:
    """The decision interval ``h`` whose in-control ARL is ``arl0`` (bisection on Siegmund's formula)."""
    if arl0 <= 1:
        raise InputError("the in-control ARL must exceed 1")
    lo, hi = 0.0, 1.0
    while siegmund_arl(hi, k) < arl0:
        hi *= 2
        if hi > 1e4:
            raise InputError("in-control ARL too large to calibrate")
    for _ in range(80):
        mid = (lo + hi) / 2
        if siegmund_arl(mid, k) < arl0:
            lo = mid
        else:
            hi = mid
    return hi


def family_cusum_threshold(n_charts: int, alpha: float, k: float = 0.5) -> float:
    """Threshold so that ``n_charts`` charts together give at most ``alpha`` false signals per window."""
    if n_charts < 1 or not 0 < alpha < 1:
        raise InputError("need at least one chart and alpha in (0, 1)")
    return cusum_threshold(max(n_charts / alpha, 2.0), k)
