"""The past as forecasters see it: located incidents as grid cells and ages before a cutoff.

:class:`History` is built once per ``fit`` from a canonical incident frame (columns
``occurred_at``, ``x``, ``y`` and ``category``). Times become *ages*: days between an incident
and the cutoff ``until`` (exclusive), so every forecaster works relative to the moment it
forecasts from and nothing at or after ``until`` can leak in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REQUIRED_COLUMNS = ("occurred_at", "x", "y", "category")
DAY = pd.Timedelta(days=1)
_EPOCH = pd.Timestamp(0, tz="UTC")


def parse_horizon(horizon: str | float | pd.Timedelta) -> float:
    """A horizon such as ``"7d"``, ``"1w"``, ``"28d"`` or a number of days, in days."""
    if isinstance(horizon, int | float):
        days = float(horizon)
    else:
        text = str(horizon).strip().lower()
        try:
            if text.endswith("w"):
                days = 7.0 * float(text[:-1])
            elif text.endswith("d"):
                days = float(text[:-1])
            else:
                days = pd.Timedelta(text).total_seconds() / 86400.0
        except ValueError as exc:
            raise InputError(f"cannot read horizon {horizon!r}: use e.g. 1d, 7d, 28d") from exc
    if not np.isfinite(days) or days <= 0:
        raise InputError(f"horizon must be positive, got {horizon!r}")
    return days


def default_until(incidents: pd.DataFrame) -> pd.Timestamp:
    """The day after the last incident (UTC midnight): the natural forecast origin."""
    last = pd.Timestamp(incidents["occurred_at"].max())
    return (last.tz_convert("UTC") if last.tzinfo else last.tz_localize("UTC")).floor("D") + DAY


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """Incidents before ``until`` on ``grid``.

    Attributes
    ----------
    grid : SquareGrid
        The grid cells refer to.
    until : Timestamp
        Exclusive end of the observed period (the forecast origin), UTC.
    cell : ndarray of int
        Cell of each incident (incidents outside the grid are dropped).
    age : ndarray of float
        Days from each incident to ``until`` (``> 0``).
    category : ndarray of int
        Index into ``categories`` of each incident.
    categories : tuple of str
        Category names, sorted.
    span_days : float
        Days between the first incident and ``until``.
    """

    grid: SquareGrid
    until: pd.Timestamp
    cell: IntArray
    age: FloatArray
    category: IntArray
    categories: tuple[str, ...]
    span_days: float

    @classmethod
    def build(
        cls, incidents: pd.DataFrame, grid: SquareGrid, until: pd.Timestamp,
        categories: Sequence[str] | None = None,
    ) -> History:
        """Build from a canonical frame; rows at or after ``until`` are ignored."""
        missing = [c for c in REQUIRED_COLUMNS if c not in incidents.columns]
        if missing:
            raise InputError(f"incidents lack columns: {', '.join(missing)}")
        when = pd.DatetimeIndex(incidents["occurred_at"])
        if when.tz is None:
            raise InputError("occurred_at must be timezone-aware (UTC)")
        age = (until - when).total_seconds().to_numpy(dtype=np.float64) / 86400.0
        cell = grid.cell_of(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float))
        keep = (age > 0) & (cell >= 0)
        cats = tuple(sorted(categories if categories is not None else
                            pd.unique(incidents["category"].astype(str))))
        code = pd.Categorical(incidents["category"].astype(str), categories=list(cats)).codes
        keep &= code >= 0
        span = float(age[keep].max()) if keep.any() else 0.0
        return cls(grid, until, cell[keep].astype(np.int64), age[keep],
                   code[keep].astype(np.int64), cats, span)

    def __len__(self) -> int:
        return len(self.cell)

    def counts(self, max_age: float | None = None, min_age: float = 0.0,
               weights: FloatArray | None = None, category: int | None = None) -> FloatArray:
        """Incidents per cell with ``min_age <= age < max_age`` (optionally weighted)."""
        m = self.age >= min_age
        if max_age is not None:
            m &= self.age < max_age
        if category is not None:
            m &= self.category == category
        w = None if weights is None else weights[m]
        return np.bincount(self.cell[m], weights=w, minlength=self.grid.n_cells).astype(np.float64)

    def footprint(self) -> IntArray:
        """Cells that held at least one incident."""
        return np.unique(self.cell)

    def periods(self, period_days: float, n_periods: int, by_category: bool = False) -> npt.NDArray[np.float32]:
        """Counts per cell and period back from ``until``: column ``p`` covers ages
        ``[p·period, (p+1)·period)``, so column 0 is the most recent period.

        Returns shape ``(n_cells, n_periods)``, or ``(n_categories, n_cells, n_periods)`` with
        ``by_category``.
        """
        p = np.floor(self.age / period_days).astype(np.int64)
        m = p < n_periods
        n = self.grid.n_cells
        if by_category:
            k = len(self.categories)
            flat = (self.category[m] * n + self.cell[m]) * n_periods + p[m]
            out = np.bincount(flat, minlength=k * n * n_periods).astype(np.float32)
            return out.reshape(k, n, n_periods)
        flat = self.cell[m] * n_periods + p[m]
        return np.bincount(flat, minlength=n * n_periods).astype(np.float32).reshape(n, n_periods)

    def rate_per_day(self, window_days: float = 365.0) -> float:
        """Mean incidents per day over the last ``window_days`` (or the whole history)."""
        w = min(window_days, max(self.span_days, 1.0))
        return float((self.age < w).sum()) / w


def smooth(values: FloatArray, grid: SquareGrid, sigma_m: float) -> FloatArray:
    """Gaussian kernel smoothing of per-cell values on ``grid`` (bandwidth in metres); the
    total is preserved inside the grid except for mass pushed past its edge."""
    if sigma_m <= 0:
        return values.astype(np.float64)
    img = values.reshape(grid.ny, grid.nx).astype(np.float64)
    out = ndimage.gaussian_filter(img, sigma=sigma_m / grid.cell_size, mode="constant", truncate=3.0)
    return np.asarray(out.ravel(), dtype=np.float64)


def ring_sum(values: npt.NDArray[np.floating], grid: SquareGrid, ring: int) -> FloatArray:
    """Sum of ``values`` over the cells at Chebyshev distance exactly ``ring`` (1 = the 8
    neighbours, 2 = the 16 around them)."""
    size = 2 * ring + 1
    kernel = np.ones((size, size))
    if ring > 0:
        kernel[1:-1, 1:-1] = 0.0
    img = values.reshape(grid.ny, grid.nx).astype(np.float64)
    out = ndimage.convolve(img, kernel, mode="constant", cval=0.0)
    return np.asarray(out.ravel(), dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class Timeline:
    """All located incidents of a data set as arrays, to cut a :class:`History` at any origin
    without rebuilding it from the frame (backtests cut one per fold)."""

    grid: SquareGrid
    cell: IntArray
    seconds: FloatArray
    category: IntArray
    categories: tuple[str, ...]

    @classmethod
    def build(cls, incidents: pd.DataFrame, grid: SquareGrid) -> Timeline:
        """Convert a canonical frame (rows outside the grid are dropped)."""
        far = pd.Timestamp("2262-01-01", tz="UTC")
        hist = History.build(incidents, grid, far)
        when = pd.DatetimeIndex(incidents["occurred_at"])
        cell = grid.cell_of(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float))
        code = pd.Categorical(incidents["category"].astype(str), categories=list(hist.categories)).codes
        keep = (cell >= 0) & (code >= 0) & (when < far)
        seconds = (when - _EPOCH).total_seconds().to_numpy(dtype=np.float64)
        return cls(grid, cell[keep].astype(np.int64), seconds[keep], code[keep].astype(np.int64), hist.categories)

    def before(self, until: pd.Timestamp, max_history_days: float | None = None) -> History:
        """The :class:`History` of incidents strictly before ``until``."""
        age = ((until - _EPOCH).total_seconds() - self.seconds) / 86400.0
        m = age > 0
        if max_history_days is not None:
            m &= age <= max_history_days
        span = float(age[m].max()) if m.any() else 0.0
        return History(self.grid, until, self.cell[m], age[m], self.category[m], self.categories, span)
