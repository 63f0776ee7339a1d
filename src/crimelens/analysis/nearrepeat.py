"""Near-repeat analysis: the Knox test over space × time bands, as in Ratcliffe's Near Repeat Calculator.

After a burglary, the same house and its neighbours run a raised risk for a few weeks (Johnson &
Bowers 2004; Townsley, Homel & Chaseling 2003). Knox (1964) tests this by counting pairs of
incidents that are close in both space and time. Every pair ``(i, j)`` falls into a spatial band
(``Same location``, ``1 to 100`` metres, ``101 to 200``, ..., ``More than 500``) and a temporal band
(``0 to 14`` days, ``15 to 28``, ..., ``More than 70``); distances are rounded to whole metres and
time differences are whole calendar days, exactly as the Near Repeat Calculator labels them.

The expected count of each cell is estimated by Monte Carlo: the dates are shuffled among the
locations (which keeps both the spatial and the temporal distributions and breaks only their
interaction) ``n_permutations`` times. The table of **observed / mean expected** ratios is
Ratcliffe's "Knox ratio" table; each cell has the one-sided pseudo p-value
``(1 + #{simulated ≥ observed}) / (n_permutations + 1)``.

Only pairs within the largest spatial band are enumerated (k-d tree); the ``More than`` row follows
from the permutation-invariant number of pairs per time band, so the test scales to tens of
thousands of incidents.

References
----------
Knox, G. (1964). The detection of space-time interactions. *Journal of the Royal Statistical
Society C* 13(1), 25-30.
Ratcliffe, J. H. (2009). *Near Repeat Calculator* (version 1.3). Temple University, Philadelphia,
and the National Institute of Justice, Washington, DC.
Johnson, S. D. & Bowers, K. J. (2004). The burglary as clue to the future: the beginnings of
prospective hot-spotting. *European Journal of Criminology* 1(2), 237-255.
Townsley, M., Homel, R. & Chaseling, J. (2003). Infectious burglaries: a test of the near repeat
hypothesis. *British Journal of Criminology* 43(3), 615-633.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator

from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.weights import FloatArray, IntArray

#: Time precisions fine enough for day-level bands.
DAY_PRECISIONS = ("minute", "hour", "day")


def spatial_labels(bandwidth: int, n_bands: int, unit: str = "") -> list[str]:
    """Row labels: ``Same location``, ``1 to 100``, ``101 to 200``, ..., ``More than N``."""
    u = f" {unit}" if unit else ""
    out = ["Same location", f"1 to {bandwidth}{u}"]
    out += [f"{k * bandwidth + 1} to {(k + 1) * bandwidth}{u}" for k in range(1, n_bands)]
    return [*out, f"More than {n_bands * bandwidth}{u}"]


def temporal_labels(bandwidth: int, n_bands: int) -> list[str]:
    """Column labels: ``0 to 14 days``, ``15 to 28 days``, ..., ``More than N days``."""
    out = [f"0 to {bandwidth} days"]
    out += [f"{k * bandwidth + 1} to {(k + 1) * bandwidth} days" for k in range(1, n_bands)]
    return [*out, f"More than {n_bands * bandwidth} days"]


def _time_band(dt: IntArray, bandwidth: int, n_bands: int) -> IntArray:
    """Band index of whole-day differences (0..n_bands, the last being 'more than')."""
    b = np.where(dt <= bandwidth, 0, (dt - 1) // bandwidth)
    return np.minimum(b, n_bands).astype(np.int64)


def _pairs_per_time_band(days: IntArray, bandwidth: int, n_bands: int) -> FloatArray:
    """Number of all pairs in each temporal band (invariant under permuting dates)."""
    t = np.sort(days)
    n = t.size
    edges = [bandwidth + k * bandwidth for k in range(n_bands)]  # upper bounds (inclusive)
    cum = []
    for e in edges:  # pairs with difference <= e
        cum.append(float((np.searchsorted(t, t + e, side="right") - np.arange(n) - 1).sum()))
    total = n * (n - 1) / 2.0
    per = np.diff(np.array([0.0, *cum, total]))
    return per


@dataclass(frozen=True, eq=False)
class NearRepeatResult:
    """Knox / Near Repeat Calculator tables and the overall Knox test of the closest cell.

    Attributes
    ----------
    observed, expected, ratio, p : DataFrame
        Pair counts, mean simulated counts, observed / expected, and pseudo p-values; rows are
        spatial bands and columns temporal bands, labelled as the Near Repeat Calculator does.
    knox_statistic : float
        Pairs within the first spatial band (same location included) and the first time band.
    knox_expected : float
        Its mean under permutation.
    knox_p : float
        Its one-sided Monte Carlo p-value.
    parameters : dict
    """

    observed: pd.DataFrame
    expected: pd.DataFrame
    ratio: pd.DataFrame
    p: pd.DataFrame
    knox_statistic: float
    knox_expected: float
    knox_p: float
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = "near_repeat"

    def to_frame(self) -> pd.DataFrame:
        """Long table: distance, time, observed, expected, ratio, p and significant (p <= 0.05)."""
        long = pd.DataFrame({"observed": self.observed.stack()})
        long["expected"] = self.expected.stack()
        long["ratio"] = self.ratio.stack()
        long["p"] = self.p.stack()
        long["significant"] = long["p"] <= 0.05
        return long.reset_index(names=["distance", "time"])

    def to_text(self) -> str:
        """The observed / expected table as plain text, significant ratios starred."""
        shown = self.ratio.copy().astype(object)
        for r in shown.index:
            for c in shown.columns:
                v = self.ratio.loc[r, c]
                star = "*" if self.p.loc[r, c] <= 0.05 and v > 1 else ""
                shown.loc[r, c] = "-" if not np.isfinite(v) else f"{v:.2f}{star}"
        head = "Observed over mean expected frequencies (* p <= 0.05)"
        return head + "\n" + shown.to_string()

    def summary(self) -> dict[str, Any]:
        """The Knox test of the closest cell, the strongest significant ratio, parameters."""
        sig = (self.p <= 0.05) & (self.ratio > 1)
        cells = [
            {
                "distance": r,
                "time": c,
                "ratio": round(float(self.ratio.loc[r, c]), 3),
                "p": float(self.p.loc[r, c]),
            }
            for r in self.ratio.index
            for c in self.ratio.columns
            if bool(sig.loc[r, c])
        ]
        return {
            "method": self.method,
            "knox_statistic": self.knox_statistic,
            "knox_expected": round(self.knox_expected, 3),
            "knox_ratio": round(self.knox_statistic / self.knox_expected, 3) if self.knox_expected else None,
            "knox_p": self.knox_p,
            "significant_cells": cells,
            "parameters": self.parameters,
        }


class KnoxTest(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
    """Knox space-time interaction test with Near Repeat Calculator bands.

    Parameters
    ----------
    spatial_bandwidth : int
        Width of each spatial band in metres (the Calculator's "spatial bandwidth").
    n_spatial_bands : int
        Number of spatial bands after ``Same location``.
    temporal_bandwidth : int
        Width of each temporal band in days.
    n_temporal_bands : int
        Number of temporal bands before ``More than``.
    n_permutations : int
        Monte Carlo iterations (99 gives p down to 0.01, 999 down to 0.001).
    random_state : int, optional
        Seed.

    Attributes
    ----------
    result_ : NearRepeatResult
    p_ : float
        Knox p-value of the closest space-time cell.
    """

    def __init__(
        self,
        *,
        spatial_bandwidth: int = 100,
        n_spatial_bands: int = 5,
        temporal_bandwidth: int = 14,
        n_temporal_bands: int = 5,
        n_permutations: int = 99,
        random_state: int | None = None,
    ) -> None:
        self.spatial_bandwidth = spatial_bandwidth
        self.n_spatial_bands = n_spatial_bands
        self.temporal_bandwidth = temporal_bandwidth
        self.n_temporal_bands = n_temporal_bands
        self.n_permutations = n_permutations
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: None = None) -> KnoxTest:
        """Run the test on located, day-precise incidents (``x``, ``y``, ``occurred_at``)."""
        x, yy, days, dropped = _prepare(X)
        sb, ns = int(self.spatial_bandwidth), int(self.n_spatial_bands)
        tb, nt = int(self.temporal_bandwidth), int(self.n_temporal_bands)
        if min(sb, ns, tb, nt) < 1 or self.n_permutations < 1:
            raise InputError("bandwidths, band counts and n_permutations must be positive")
        n = x.size
        if n < 3:
            raise InputError("the Knox test needs at least three located, day-precise incidents")
        pts = np.column_stack([x, yy])
        pairs = cKDTree(pts).query_pairs(ns * sb + 0.5, output_type="ndarray")
        dist = np.rint(np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T)).astype(np.int64)
        keep = dist <= ns * sb
        pairs, dist = pairs[keep], dist[keep]
        srow = np.where(dist == 0, 0, (dist - 1) // sb + 1).astype(np.int64)  # 0 = same location
        per_band = _pairs_per_time_band(days, tb, nt)
        n_rows, n_cols = ns + 2, nt + 1

        def table(d: IntArray) -> FloatArray:
            dt = np.abs(d[pairs[:, 0]] - d[pairs[:, 1]])
            close = np.bincount(srow * n_cols + _time_band(dt, tb, nt), minlength=(ns + 1) * n_cols)
            close = close.reshape(ns + 1, n_cols).astype(float)
            return np.vstack([close, per_band - close.sum(axis=0)])

        obs = table(days)
        rng = np.random.default_rng(self.random_state)
        total = np.zeros_like(obs)
        ge = np.zeros_like(obs)
        knox_obs = obs[0, 0] + obs[1, 0]
        knox_sims = np.zeros(self.n_permutations)
        for i in range(self.n_permutations):
            sim = table(rng.permutation(days))
            total += sim
            ge += sim >= obs - 1e-9
            knox_sims[i] = sim[0, 0] + sim[1, 0]
        expected = total / self.n_permutations
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(expected > 0, obs / expected, np.nan)
        p = (1.0 + ge) / (self.n_permutations + 1.0)
        rows, cols = spatial_labels(sb, ns), temporal_labels(tb, nt)
        assert obs.shape == (n_rows, n_cols)

        def frame(a: npt.NDArray[Any]) -> pd.DataFrame:
            return pd.DataFrame(a, index=pd.Index(rows, name="distance"), columns=pd.Index(cols, name="time"))

        knox_exp = float(knox_sims.mean())
        knox_p = float((1.0 + (knox_sims >= knox_obs - 1e-9).sum()) / (self.n_permutations + 1.0))
        params = {
            "spatial_bandwidth_m": sb,
            "n_spatial_bands": ns,
            "temporal_bandwidth_days": tb,
            "n_temporal_bands": nt,
            "n_permutations": int(self.n_permutations),
            "random_state": self.random_state,
            "incidents": int(n),
            "excluded_imprecise": int(dropped),
            "distance": "Euclidean, whole metres",
            "null": "dates permuted among locations",
        }
        self.p_ = knox_p
        self.result_ = NearRepeatResult(
            frame(obs), frame(expected), frame(ratio), frame(p), float(knox_obs), knox_exp, knox_p, params
        )
        return self

    def result(self) -> NearRepeatResult:
        """The fitted :class:`NearRepeatResult`."""
        if not hasattr(self, "result_"):
            raise NotFittedError("KnoxTest is not fitted: call fit(incidents) first")
        return self.result_


def _prepare(X: pd.DataFrame) -> tuple[FloatArray, FloatArray, IntArray, int]:
    if not isinstance(X, pd.DataFrame) or not {"x", "y", "occurred_at"} <= set(X.columns):
        raise InputError("the Knox test needs a frame with x, y (metres) and occurred_at")
    ok = X["x"].notna() & X["y"].notna() & X["occurred_at"].notna()
    if "time_precision" in X:
        ok &= X["time_precision"].isin(DAY_PRECISIONS)
    f = X[ok]
    ts = pd.to_datetime(f["occurred_at"], utc=True)
    days = (ts.dt.floor("D") - pd.Timestamp("1970-01-01", tz="UTC")).dt.days.to_numpy(np.int64)
    x = np.asarray(f["x"].to_numpy(float), dtype=np.float64)
    y = np.asarray(f["y"].to_numpy(float), dtype=np.float64)
    return x, y, np.asarray(days, dtype=np.int64), int((~ok).sum())
