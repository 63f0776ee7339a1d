"""The data every driver model fits on, its checks, and the result every model returns.

:func:`build_design` turns an area table into a :class:`DriverData` (response, covariates, optional
exposure offset, centroids, weights) and refuses, with one clear reason, what a regression cannot
use: non-numeric or missing values, a covariate with no variance, perfectly collinear covariates
(rank-deficient design), a response with no events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from crimelens.drivers.weights import SpatialWeights
from crimelens.exceptions import InputError


@dataclass(slots=True)
class DriverData:
    """Inputs of a driver model: ``y`` (n,), ``X`` (n, k) without constant, names, extras."""

    y: np.ndarray
    X: np.ndarray
    y_name: str
    x_names: list[str]
    ids: list[str]
    offset: np.ndarray | None = None  # exposure (population), not logged
    offset_name: str | None = None
    coords: np.ndarray | None = None  # (n, 2) metric centroids
    weights: SpatialWeights | None = None


def _numeric(frame: pd.DataFrame, col: str, role: str) -> np.ndarray:
    if col not in frame.columns:
        known = ", ".join(map(str, frame.columns))
        raise InputError(f"{role} {col!r} is not a column of the area layer (columns: {known})")
    s = frame[col]
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        converted = pd.to_numeric(s, errors="coerce")
        if converted.isna().sum() > s.isna().sum():
            raise InputError(f"{role} {col!r} is not numeric (e.g. {s[converted.isna() & s.notna()].iloc[0]!r})")
        s = converted
    values = s.to_numpy(dtype=float)
    if np.isnan(values).any():
        raise InputError(f"{role} {col!r} has {int(np.isnan(values).sum())} missing value(s)")
    return values


def build_design(
    frame: pd.DataFrame, y: str, xs: list[str], *, ids: list[str], offset: str | None = None,
    coords: np.ndarray | None = None, weights: SpatialWeights | None = None, count: bool = False,
) -> DriverData:
    """Validate and assemble the model inputs (see the module docstring for what is refused)."""
    if not xs:
        raise InputError("--x needs at least one covariate")
    if len(set(xs)) != len(xs):
        raise InputError("--x lists a covariate twice")
    yv = _numeric(frame, y, "response")
    if count and yv.sum() == 0:
        raise InputError(f"response {y!r} has no incidents in any area: nothing to explain")
    if np.ptp(yv) == 0:
        raise InputError(f"response {y!r} has the same value in every area: nothing to explain")
    X = np.column_stack([_numeric(frame, c, "covariate") for c in xs])
    for j, c in enumerate(xs):
        if np.ptp(X[:, j]) == 0:
            raise InputError(f"covariate {c!r} has no variance (every area has {X[0, j]:g}); drop it")
    design = np.column_stack([np.ones(len(yv)), X])
    rank = int(np.linalg.matrix_rank(design))
    if rank < design.shape[1]:
        raise InputError(f"covariates {', '.join(xs)} are perfectly collinear (design rank {rank} < "
                         f"{design.shape[1]}); drop one of them")
    if len(yv) <= design.shape[1] + 1:
        raise InputError(f"{len(yv)} areas are too few for {len(xs)} covariate(s)")
    off = None
    if offset is not None:
        off = _numeric(frame, offset, "offset")
        if (off <= 0).any():
            raise InputError(f"offset {offset!r} must be positive in every area ({int((off <= 0).sum())} are not)")
    return DriverData(y=yv, X=X, y_name=y, x_names=list(xs), ids=list(ids), offset=off, offset_name=offset,
                      coords=coords, weights=weights)


@dataclass(slots=True)
class ModelResult:
    """What a driver model reports: coefficients, fit statistics, diagnostics, spatial parameters."""

    model: str
    coefficients: pd.DataFrame  # name, estimate, std_error, statistic, p_value, ci_low, ci_high
    fit: dict[str, float | None]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    spatial: dict[str, float | None] = field(default_factory=dict)
    residuals: np.ndarray | None = None
    local: pd.DataFrame | None = None  # GWR: per-area estimates and t values
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table."""
        return self.coefficients.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result."""
        return {
            "model": self.model, "params": self.params,
            "coefficients": self.coefficients.to_dict(orient="records"),
            "fit": self.fit, "diagnostics": self.diagnostics, "spatial": self.spatial, "notes": self.notes,
        }


def coef_table(names: list[str], est: Any, se: Any, *, df: int | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Coefficient table with Wald statistics, two-sided p and ``1 - alpha`` intervals (t with ``df``
    degrees of freedom, normal when ``df`` is ``None``)."""
    est_a = np.asarray(est, dtype=float).ravel()
    se_a = np.asarray(se, dtype=float).ravel()
    stat = est_a / se_a
    dist = stats.t(df) if df is not None else stats.norm()
    p = 2 * dist.sf(np.abs(stat))
    q = float(dist.ppf(1 - alpha / 2))
    return pd.DataFrame({"name": names, "estimate": est_a, "std_error": se_a, "statistic": stat, "p_value": p,
                         "ci_low": est_a - q * se_a, "ci_high": est_a + q * se_a})


def pair(value: Any) -> dict[str, float]:
    """A (statistic, p) pair from spreg as a dict."""
    stat, p = value
    return {"statistic": float(stat), "p_value": float(p)}


class DriverModel(Protocol):
    """What every driver estimator offers: ``fit(data)`` returning itself, then ``result_``."""

    result_: ModelResult

    def fit(self, data: DriverData) -> DriverModel:
        """Fit on ``data`` and return ``self``."""
        ...
