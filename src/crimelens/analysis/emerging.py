"""Emerging hot spot analysis: a space-time cube, Gi* per time step, Mann-Kendall trends.

The cube holds, for every unit (cell) and every time step (week, month...), the zero-filled count
of incidents. Each time step gets its own Getis-Ord Gi* (Ord & Getis 1995) -- or, with
``time_window = k``, a space-time neighbourhood spanning the ``k`` previous steps as in ArcGIS --
and each bin is hot, cold or neither at the chosen confidence (with Benjamini-Hochberg FDR).
The Mann-Kendall test (Mann 1945; Kendall 1975) on each unit's series of Gi* z-scores says
whether its clustering intensifies or diminishes.

Patterns follow the definitions of ArcGIS's *Emerging Hot Spot Analysis* (for hot spots; cold
spots mirror them):

* **new** -- hot in the final step and never before;
* **consecutive** -- a single uninterrupted run of at least two hot steps ending in the final
  step, never hot before that run, hot in fewer than 90% of the steps;
* **intensifying** -- hot in at least 90% of the steps including the final one, with a
  significant upward trend in clustering intensity;
* **persistent** -- hot in at least 90% of the steps (final included), no significant trend;
* **diminishing** -- as persistent, with a significant downward trend;
* **sporadic** -- hot in the final step, on and off before, fewer than 90% hot, never cold;
* **oscillating** -- hot in the final step, cold in some earlier step, fewer than 90% hot;
* **historical** -- not hot in the final step but hot in at least 90% of the steps.

References
----------
Ord, J. K. & Getis, A. (1995). Local spatial autocorrelation statistics. *Geographical Analysis*
27(4), 286-306.
Mann, H. B. (1945). Nonparametric tests against trend. *Econometrica* 13(3), 245-259.
Kendall, M. G. (1975). *Rank Correlation Methods*, 4th ed. Griffin.
Esri (2024). How Emerging Hot Spot Analysis works. ArcGIS Pro documentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator

from crimelens.analysis.autocorrelation import incremental_band
from crimelens.analysis.gistar import gi_star_z
from crimelens.analysis.palettes import EMERGING_COLOURS
from crimelens.analysis.results import EmergingResult
from crimelens.analysis.significance import confidence_bins, two_sided_normal_p
from crimelens.analysis.units import StudyArea, UnitCounts, grid_counts
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.weights import FloatArray, Weights

Period = Literal["day", "week", "month"]
_FREQ = {"day": "D", "week": "W-MON", "month": "MS"}


@dataclass(frozen=True, eq=False)
class SpaceTimeCube:
    """Zero-filled counts per unit and time step.

    Attributes
    ----------
    units : UnitCounts
        The units with their total counts over all steps.
    periods : DatetimeIndex
        Start of each time step.
    values : ndarray
        ``(n_steps, n_units)`` counts.
    period : str
        ``day``, ``week`` or ``month``.
    """

    units: UnitCounts
    periods: pd.DatetimeIndex
    values: FloatArray
    period: str

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.periods), self.units.n):
            raise InputError("cube values must be (n_steps, n_units)")


def space_time_cube(
    frame: pd.DataFrame,
    cell_size: float,
    crs: str,
    *,
    period: Period = "month",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    study_area: StudyArea | npt.NDArray[np.bool_] = "extent",
) -> SpaceTimeCube:
    """Build a cube from store counts ``by=["cell:<m>", period]`` (``cell_x``, ``cell_y``, period, ``count``).

    Steps run from ``start`` (default: the first period present) to ``end`` (default: the last),
    zero-filled; cells are those of :func:`~crimelens.analysis.units.grid_counts`.
    """
    need = {"cell_x", "cell_y", period, "count"}
    if not need <= set(frame.columns):
        raise InputError(f"a space-time cube needs columns {sorted(need)} (store.counts by cell and {period})")
    f = frame.copy()
    f["_t"] = step_start(f[period], period)
    first = step_start(pd.Series([start]), period)[0] if start is not None else f["_t"].min()
    last = step_start(pd.Series([end]), period)[0] if end is not None else f["_t"].max()
    periods = pd.date_range(first, last, freq=_FREQ[period])
    if len(periods) < 2:
        raise InputError("a space-time cube needs at least two time steps")
    total = f.groupby(["cell_x", "cell_y"])["count"].sum().reset_index()
    units = grid_counts(total, cell_size, crs, study_area=study_area)
    assert units.grid is not None
    cell = units.grid.cell_of(
        (f["cell_x"].to_numpy(float) + 0.5) * cell_size, (f["cell_y"].to_numpy(float) + 0.5) * cell_size
    )
    pos = np.full(units.grid.n_cells, -1, dtype=np.int64)
    pos[np.asarray(units.ids, np.int64)] = np.arange(units.n)
    step = periods.get_indexer(pd.DatetimeIndex(f["_t"]))
    ok = (cell >= 0) & (step >= 0)
    ok[ok] &= pos[cell[ok]] >= 0
    values = np.zeros((len(periods), units.n))
    np.add.at(values, (step[ok], pos[cell[ok]]), f["count"].to_numpy(float)[ok])
    units = units.with_counts(values.sum(axis=0))
    return SpaceTimeCube(units, pd.DatetimeIndex(periods), values, period)


def step_start(values: pd.Series, period: Period) -> pd.Series:
    """Start (naive UTC) of the day, Monday-based week or month holding each timestamp."""
    ts = pd.to_datetime(values)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    day = ts.dt.normalize()
    if period == "day":
        return day
    if period == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    if period == "month":
        return day - pd.to_timedelta(day.dt.day - 1, unit="D")
    raise InputError(f"unknown period {period!r}: use day, week or month")


def mann_kendall(series: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mann-Kendall test of each row of ``series`` ``(n, T)``: ``(S, z, p)``, two-sided, tie-corrected."""
    x = np.atleast_2d(np.asarray(series, dtype=float))
    n, t = x.shape
    s = np.zeros(n)
    for i in range(t - 1):
        s += np.sign(x[:, i + 1 :] - x[:, i : i + 1]).sum(axis=1)
    srt = np.sort(x, axis=1)
    starts = np.ones_like(srt, dtype=bool)
    starts[:, 1:] = srt[:, 1:] != srt[:, :-1]
    gid = np.cumsum(starts.ravel()) - 1
    sizes = np.bincount(gid).astype(float)
    row_of_group = np.repeat(np.arange(n), starts.sum(axis=1))
    tie = np.bincount(row_of_group, weights=sizes * (sizes - 1) * (2 * sizes + 5), minlength=n)
    var = (t * (t - 1) * (2 * t + 5) - tie) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
    return s, z, 2.0 * stats.norm.sf(np.abs(z))


def classify_pattern(bins: npt.NDArray[np.int64], trend_z: float, trend_p: float, trend_alpha: float) -> str:
    """ArcGIS emerging hot spot category of one unit from its per-step ``Gi_Bin`` history."""
    for sign, kind in ((1, "hot"), (-1, "cold")):
        hot = (bins * sign) > 0
        opposite = (bins * sign) < 0
        if not hot[-1]:
            continue
        frac = hot.mean()
        up = trend_p <= trend_alpha and trend_z * sign > 0
        down = trend_p <= trend_alpha and trend_z * sign < 0
        if frac >= 0.9:
            name = "intensifying" if up else "diminishing" if down else "persistent"
        elif not hot[:-1].any():
            name = "new"
        else:
            run = len(hot) - (np.flatnonzero(~hot).max() + 1)
            if run >= 2 and not hot[: len(hot) - run].any():
                name = "consecutive"
            elif opposite[:-1].any():
                name = "oscillating"
            else:
                name = "sporadic"
        return f"{name}_{kind}_spot"
    for sign, kind in ((1, "hot"), (-1, "cold")):
        if ((bins * sign) > 0).mean() >= 0.9:
            return f"historical_{kind}_spot"
    return "no_pattern"


class EmergingHotSpots(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
    """Emerging hot spot analysis of a :class:`SpaceTimeCube`.

    Parameters
    ----------
    distance_band : float, optional
        Gi* distance band in metres; default from :func:`incremental_band` on the total counts.
    time_window : int
        0 = Gi* per time step with that step's moments; ``k`` ≥ 1 = neighbourhood of the same
        cells in the ``k`` previous steps too, with moments over the whole cube (ArcGIS's
        neighbourhood time step).
    alpha : float
        A bin is hot or cold at this confidence (``0.10`` = 90%, ArcGIS's threshold).
    fdr : bool
        Benjamini-Hochberg correction per time step.
    trend_alpha : float
        Significance of the Mann-Kendall trend (intensifying / diminishing).

    Attributes
    ----------
    z_ : ndarray
        ``(n_steps, n_units)`` Gi* z-scores.
    bins_ : ndarray
        ``(n_steps, n_units)`` Gi_Bin per step.
    labels_ : ndarray of str
        Pattern per unit (``new_hot_spot`` ... ``historical_cold_spot``, ``no_pattern``).
    result_ : EmergingResult
    """

    def __init__(
        self,
        *,
        distance_band: float | None = None,
        time_window: int = 0,
        alpha: float = 0.10,
        fdr: bool = True,
        trend_alpha: float = 0.05,
    ) -> None:
        self.distance_band = distance_band
        self.time_window = time_window
        self.alpha = alpha
        self.fdr = fdr
        self.trend_alpha = trend_alpha

    def fit(self, cube: SpaceTimeCube, y: None = None) -> EmergingHotSpots:
        """Gi* per step, Mann-Kendall per unit, and the pattern of every unit."""
        if not isinstance(cube, SpaceTimeCube):
            raise InputError("emerging hot spots need a SpaceTimeCube (see space_time_cube)")
        units = cube.units
        band = float(self.distance_band) if self.distance_band is not None else incremental_band(units).band
        w = units.weights(method="distance", band=band, include_self=True)
        z = self._z(cube.values, w)
        p = two_sided_normal_p(z)
        bins = np.vstack([self._bins(z[t], p[t]) for t in range(z.shape[0])])
        _, tz, tp = mann_kendall(z.T)
        _, cz, cp = mann_kendall(cube.values.T)
        labels = np.array(
            [
                classify_pattern(bins[:, i], float(tz[i]), float(tp[i]), self.trend_alpha)
                if cube.values[:, i].any()
                else "no_pattern"
                for i in range(units.n)
            ],
            dtype=object,
        )
        self.z_, self.bins_, self.labels_, self.distance_band_ = z, bins, labels, band
        history = np.array([",".join(str(int(b)) for b in bins[:, i]) for i in range(units.n)], dtype=object)
        params: dict[str, Any] = {
            "analysis": "emerging hot spots",
            "units": units.label(),
            "n_units": units.n,
            "period": cube.period,
            "n_steps": len(cube.periods),
            "first_step": str(cube.periods[0].date()),
            "last_step": str(cube.periods[-1].date()),
            **w.describe(),
            "time_window": self.time_window,
            "alpha": self.alpha,
            "fdr": "Benjamini-Hochberg per step" if self.fdr else "none",
            "trend": "Mann-Kendall on Gi* z",
            "trend_alpha": self.trend_alpha,
        }
        self.result_ = EmergingResult(
            "emerging",
            units,
            {
                "class": labels,
                "trend_z": tz,
                "trend_p": tp,
                "count_trend_z": cz,
                "count_trend_p": cp,
                "hot_steps": (bins > 0).sum(axis=0),
                "cold_steps": (bins < 0).sum(axis=0),
                "final_z": z[-1],
                "history": history,
            },
            params,
            palette=dict(EMERGING_COLOURS),
        )
        return self

    def _z(self, values: FloatArray, w: Weights) -> FloatArray:
        k = int(self.time_window)
        if k < 0:
            raise InputError("time_window must be 0 or more")
        if k == 0:
            return gi_star_z(values, w)
        t_steps = values.shape[0]
        lagged = w.lag(values)
        num_lag = np.zeros_like(values)
        n_steps_in = np.zeros(t_steps)
        for t in range(t_steps):
            lo = max(0, t - k)
            num_lag[t] = lagged[lo : t + 1].sum(axis=0)
            n_steps_in[t] = t + 1 - lo
        total_n = values.size
        mean = values.mean()
        s = np.sqrt(max((values**2).mean() - mean**2, 0.0))
        wi = w.row_sums[None, :] * n_steps_in[:, None]
        s1 = w.row_sums_sq[None, :] * n_steps_in[:, None]
        den = s * np.sqrt(np.maximum((total_n * s1 - wi**2) / (total_n - 1), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (num_lag - mean * wi) / den, 0.0)

    def _bins(self, z: FloatArray, p: FloatArray) -> npt.NDArray[np.int64]:
        b = confidence_bins(z, p, fdr=self.fdr)
        level = {0.10: 1, 0.05: 2, 0.01: 3}.get(round(self.alpha, 4))
        if level is None:
            raise InputError("alpha must be 0.10, 0.05 or 0.01 (ArcGIS's confidence levels)")
        return np.where(np.abs(b) >= level, b, 0).astype(np.int64)

    def result(self) -> EmergingResult:
        """The fitted :class:`EmergingResult`."""
        if not hasattr(self, "result_"):
            raise NotFittedError("EmergingHotSpots is not fitted: call fit(cube) first")
        return self.result_
