"""Are a surface's ``expected`` counts right? Reliability by decile and PIT histograms.

A ranking can be excellent while its expected counts are off by a factor; analysts who plan with
"about 3 incidents expected in this cell next week" need the counts themselves to be calibrated.
Two checks, pooled over backtest folds:

* **Reliability by decile**: cells of each window are split into ten equal groups by expected
  count; per group the total expected is compared with the total observed (a calibrated surface
  has observed ≈ expected in every decile).
* **PIT histogram** of the predictive count distribution, Poisson(expected) or negative binomial
  with mean ``expected`` and size ``r``: the non-randomised probability integral transform for
  counts (Czado, Gneiting & Held 2009, *Biometrics* 65), ten bins. A calibrated forecast has a
  flat histogram; a U shape means over-confident (counts more dispersed than predicted), a hump
  means the predictive distributions are too wide.

Per-fold parts are sums, so folds add up: :func:`fold_parts` gives one row of numbers per window
and :func:`summarise` turns the rows of one model into the summary the leaderboard reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, stats

FloatArray = npt.NDArray[np.float64]
N_BINS = 10


def decile_sums(expected: FloatArray, observed: FloatArray, n_bins: int = N_BINS) -> tuple[FloatArray, FloatArray]:
    """Total expected and observed counts in each of ``n_bins`` equal groups of cells ranked by
    expected count (lowest first; ties kept in cell order)."""
    e = np.asarray(expected, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    order = np.argsort(e, kind="stable")
    groups = np.array_split(order, n_bins)
    return np.array([e[g].sum() for g in groups]), np.array([y[g].sum() for g in groups])


def predictive_cdf(counts: FloatArray, expected: FloatArray, size: float | None = None) -> FloatArray:
    """``P(Y <= counts)`` under Poisson(expected), or the negative binomial with that mean and
    size ``size`` (variance ``mu + mu² / size``) when given."""
    mu = np.clip(np.asarray(expected, dtype=np.float64), 1e-12, None)
    k = np.asarray(counts, dtype=np.float64)
    if size is None:
        return np.asarray(stats.poisson.cdf(k, mu), dtype=np.float64)
    r = float(size)
    return np.asarray(stats.nbinom.cdf(k, r, r / (r + mu)), dtype=np.float64)


def pit_histogram(expected: FloatArray, observed: FloatArray, *, size: float | None = None,
                  n_bins: int = N_BINS) -> FloatArray:
    """Non-randomised PIT histogram (bin masses summing to one) of counts ``observed`` under the
    predictive distributions with means ``expected`` (Poisson, or negative binomial with ``size``)."""
    y = np.asarray(observed, dtype=np.float64)
    lo = predictive_cdf(y - 1, expected, size)
    hi = predictive_cdf(y, expected, size)
    u = np.linspace(0.0, 1.0, n_bins + 1)
    width = np.where(hi > lo, hi - lo, 1.0)
    # F(u | y) = 0 below lo, linear between lo and hi, 1 above hi; mean over cells
    f = np.clip((u[:, None] - lo[None, :]) / width[None, :], 0.0, 1.0)
    f = np.where(hi[None, :] > lo[None, :], f, (u[:, None] >= hi[None, :]).astype(np.float64))
    mean_f = f.mean(axis=1)
    return np.asarray(np.diff(mean_f), dtype=np.float64)


def fit_size(expected: FloatArray, observed: FloatArray) -> float:
    """Maximum-likelihood negative binomial size ``r`` for counts with the given means
    (large = close to Poisson)."""
    mu = np.clip(np.asarray(expected, dtype=np.float64), 1e-12, None)
    y = np.asarray(observed, dtype=np.float64)

    def nll(log_r: float) -> float:
        r = np.exp(log_r)
        return float(-stats.nbinom.logpmf(y, r, r / (r + mu)).sum())

    res = optimize.minimize_scalar(nll, bounds=(np.log(1e-2), np.log(1e4)), method="bounded")
    return float(np.exp(res.x))


def fold_parts(expected: FloatArray, observed: FloatArray, size: float | None = None) -> dict[str, float]:
    """One window's additive calibration parts: ``exp_0..9``, ``obs_0..9`` (decile sums, lowest
    decile first), ``pit_0..9`` (PIT bin masses × cells) and ``cells``."""
    e_sum, y_sum = decile_sums(expected, observed)
    pit = pit_histogram(expected, observed, size=size) * len(observed)
    out = {f"exp_{i}": float(v) for i, v in enumerate(e_sum)}
    out.update({f"obs_{i}": float(v) for i, v in enumerate(y_sum)})
    out.update({f"pit_{i}": float(v) for i, v in enumerate(pit)})
    out["cells"] = float(len(observed))
    return out


@dataclass(frozen=True, slots=True)
class CalibrationSummary:
    """Calibration of one model's expected counts over all folds.

    Attributes
    ----------
    ratio : float
        Observed over expected, all cells (1 = right total).
    reliability_error : float
        Σ |observed − expected| over deciles divided by Σ expected (0 = calibrated in every decile).
    top_decile_ratio : float
        Observed over expected in the top decile (the cells a hot spot map flags).
    pit_max_dev : float
        Largest relative departure of a PIT bin from flat (``max |10·mass − 1|``; 0 = flat).
    reliability : list of (expected, observed)
        Totals per decile, lowest first.
    pit : list of float
        PIT bin masses.
    """

    ratio: float
    reliability_error: float
    top_decile_ratio: float
    pit_max_dev: float
    reliability: list[tuple[float, float]]
    pit: list[float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


def summarise(parts: pd.DataFrame | Mapping[str, float]) -> CalibrationSummary:
    """Add up :func:`fold_parts` rows (one per window) into a :class:`CalibrationSummary`."""
    frame = pd.DataFrame([parts]) if isinstance(parts, Mapping) else parts
    tot = frame.sum(numeric_only=True)
    e = np.array([tot[f"exp_{i}"] for i in range(N_BINS)])
    y = np.array([tot[f"obs_{i}"] for i in range(N_BINS)])
    pit = np.array([tot[f"pit_{i}"] for i in range(N_BINS)]) / max(float(tot["cells"]), 1.0)
    return CalibrationSummary(
        ratio=float(y.sum() / e.sum()) if e.sum() > 0 else float("nan"),
        reliability_error=float(np.abs(y - e).sum() / e.sum()) if e.sum() > 0 else float("nan"),
        top_decile_ratio=float(y[-1] / e[-1]) if e[-1] > 0 else float("nan"),
        pit_max_dev=float(np.max(np.abs(N_BINS * pit - 1.0))),
        reliability=[(float(a), float(b)) for a, b in zip(e, y, strict=True)],
        pit=[float(v) for v in pit],
    )
