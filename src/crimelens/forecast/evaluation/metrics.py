"""Hot spot forecast metrics, computed here and nowhere else, for every model.

For a forecast that flags the ``k`` riskiest cells of a study area of ``A`` cells, and a test
window in which ``N`` incidents occurred in the area, ``n`` of them in the flagged cells:

* **hit rate** ``n / N`` (Bowers, Johnson & Pease 2004; Chainey, Tompson & Uhlig 2008);
* **PAI**, the predictive accuracy index, ``(n / N) / (a / A)`` with ``a / A = k / A`` the
  flagged share of the area (Chainey, Tompson & Uhlig 2008, *Security Journal* 21);
* **PEI\\***, the predictive efficiency index, ``n / n*`` where ``n*`` is the most incidents
  any ``k`` cells captured (the PEI of Hunt 2016, NIJ Real-Time Crime Forecasting Challenge, in
  the same-number-of-cells form PEI\\* of Joshi et al. 2021, *ISPRS Int. J. Geo-Information*
  10, 597). ``n*`` also gives the **oracle** PAI, the ceiling no forecast can pass in that window.

``k`` is ``round(coverage * A)`` (at least 1). Ties in score at the ``k``-th place are resolved
by expectation, as random tie-breaking would be on average, so a model gains nothing from the
order of cell ids. The **Poisson log score** is the mean log-probability of the observed count
in each area cell under Poisson(expected count), with expected counts from the surface mixed
with a small uniform share so that no cell gets zero intensity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from crimelens.exceptions import InputError

FloatArray = npt.NDArray[np.float64]


def n_flagged(coverage: float, area_cells: int) -> int:
    """Number of cells flagged at ``coverage`` of an area of ``area_cells`` cells."""
    if not 0 < coverage <= 1:
        raise InputError(f"coverage must be in (0, 1], got {coverage}")
    return max(1, min(area_cells, round(coverage * area_cells)))


def captured(score: FloatArray, observed: FloatArray, k: int) -> float:
    """Expected incidents in the top ``k`` cells by ``score``, ties broken at random.

    Cells strictly above the ``k``-th score count in full; the cells tied with it share the
    remaining places, contributing their mean observed count per place.
    """
    s = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    y = np.asarray(observed, dtype=np.float64)
    if k <= 0:
        return 0.0
    if k >= len(s):
        return float(y.sum())
    thr = np.partition(-s, k - 1)[k - 1] * -1.0
    above = s > thr
    tied = s == thr
    return float(y[above].sum() + (k - above.sum()) * y[tied].mean())


def best_possible(observed: FloatArray, k: int) -> float:
    """``n*``: the most incidents any ``k`` cells hold."""
    y = np.asarray(observed, dtype=np.float64)
    if k >= len(y):
        return float(y.sum())
    return float(np.partition(y, len(y) - k)[len(y) - k:].sum())


@dataclass(frozen=True, slots=True)
class CoverageScore:
    """The metrics of one surface at one coverage level in one window."""

    coverage: float
    k: int
    area_cells: int
    n: float
    n_total: float
    n_star: float
    hit_rate: float
    pai: float
    pei: float
    oracle_pai: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict."""
        return {k: float(v) for k, v in asdict(self).items()}


def score_coverage(score: FloatArray, observed: FloatArray, coverage: float) -> CoverageScore:
    """Hit rate, PAI, PEI* and oracle PAI at one coverage.

    Parameters
    ----------
    score, observed : ndarray
        Scores and observed counts of the study-area cells (same order).
    coverage : float
        Share of the study area flagged, e.g. 0.01.
    """
    a = len(observed)
    k = n_flagged(coverage, a)
    n_total = float(np.sum(observed))
    n = captured(score, observed, k)
    n_star = best_possible(observed, k)
    share = k / a
    hit = n / n_total if n_total > 0 else float("nan")
    star_hit = n_star / n_total if n_total > 0 else float("nan")
    return CoverageScore(
        coverage=coverage, k=k, area_cells=a, n=n, n_total=n_total, n_star=n_star,
        hit_rate=hit, pai=hit / share, pei=n / n_star if n_star > 0 else float("nan"),
        oracle_pai=star_hit / share,
    )


def hit_rate(score: FloatArray, observed: FloatArray, coverage: float) -> float:
    """Share of incidents in the flagged cells."""
    return score_coverage(score, observed, coverage).hit_rate


def pai(score: FloatArray, observed: FloatArray, coverage: float) -> float:
    """Predictive accuracy index ``(n / N) / (a / A)``."""
    return score_coverage(score, observed, coverage).pai


def pei(score: FloatArray, observed: FloatArray, coverage: float) -> float:
    """Predictive efficiency index ``n / n*`` (same number of cells)."""
    return score_coverage(score, observed, coverage).pei


def oracle_pai(observed: FloatArray, coverage: float) -> float:
    """The PAI of the best possible selection of cells."""
    return score_coverage(observed, observed, coverage).oracle_pai


def poisson_log_score(expected: FloatArray, observed: FloatArray, floor_share: float = 1e-3) -> float:
    """Mean Poisson log-likelihood per cell of ``observed`` under ``expected`` counts.

    ``expected`` is mixed with a uniform share ``floor_share`` of its total, so a cell the model
    gave zero intensity still has a finite score. Higher is better.
    """
    lam = np.clip(np.asarray(expected, dtype=np.float64), 0.0, None)
    y = np.asarray(observed, dtype=np.float64)
    total = lam.sum()
    if total <= 0:
        lam = np.full_like(y, max(y.sum(), 1.0) / len(y))
    else:
        lam = (1 - floor_share) * lam + floor_share * total / len(lam)
    return float(np.mean(y * np.log(lam) - lam - gammaln(y + 1)))
