"""Per-cell, per-period features for the gradient-boosted forecaster, leak-free by construction.

History is binned into periods of the forecast horizon counted back from the origin (column 0
of :meth:`~crimelens.forecast.history.History.periods` is the most recent period). A training
example is a (cell, origin ``j`` periods back) pair: its target is the count of period ``j - 1``
and its features read only columns ``>= j``, i.e. incidents before that origin. The forecast
itself uses origin ``j = 0``. Features (Mohler & Porter 2018; Wheeler & Steenbeek 2021,
"Mapping the risk terrain for crime using machine learning", *J. Quant. Criminol.* 37):

* counts of the cell and of its first and second rings of neighbours over several lookbacks;
* exponentially decayed counts; periods since the last incident; how many recent periods
  held an incident (stability);
* the cell's category mix over the last year;
* the count in the same season a year earlier, the season of the target window;
* the city-wide recent trend (last periods against the last year).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from crimelens.forecast.history import History, ring_sum
from crimelens.geo.grid import SquareGrid

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which features to build, in periods of the horizon.

    Attributes
    ----------
    period_days : float
        Period length (the horizon), days.
    lookback_days : tuple of float
        Lookbacks of the count features, days (converted to whole periods).
    rings : tuple of int
        Neighbour rings summed (1: the 8 neighbours; 2: the 16 around them).
    half_life_days : float
        Half-life of the decayed count.
    n_categories : int
        Category-mix features for up to this many of the most frequent categories.
    """

    period_days: float
    lookback_days: tuple[float, ...] = (7.0, 28.0, 91.0, 182.0, 365.0, 730.0)
    rings: tuple[int, ...] = (1, 2)
    half_life_days: float = 180.0
    n_categories: int = 6

    def lookbacks(self) -> list[int]:
        """Lookbacks in periods (distinct, at least 1)."""
        return sorted({max(1, round(d / self.period_days)) for d in self.lookback_days})

    @property
    def year(self) -> int:
        """Periods in a year."""
        return max(1, round(365.25 / self.period_days))

    def periods_needed(self, n_origins: int) -> int:
        """Columns of history needed to build features for origins ``0..n_origins``."""
        return n_origins + max(max(self.lookbacks()), self.year + 3) + 1

    def names(self) -> list[str]:
        """Feature names in column order."""
        out: list[str] = []
        for lb in self.lookbacks():
            out.append(f"cell_{lb}p")
            out += [f"ring{r}_{lb}p" for r in self.rings]
        out += ["cell_decay", "ring1_decay", "since_last", "active_share", "same_season_last_year"]
        out += [f"mix_top{k + 1}" for k in range(self.n_categories)]
        out += ["season_sin", "season_cos", "city_trend"]
        return out


class FeatureBuilder:
    """Builds feature matrices for any origin ``j`` from one history (see module docstring)."""

    def __init__(self, history: History, spec: FeatureSpec, n_origins: int, cells: npt.NDArray[np.int64]) -> None:
        self.spec = spec
        self.grid: SquareGrid = history.grid
        self.cells = cells
        self.n_periods = spec.periods_needed(n_origins)
        counts = history.periods(spec.period_days, self.n_periods)
        self.counts = counts
        zero = np.zeros((len(cells), 1), dtype=np.float64)
        self.cum = np.concatenate([zero, np.cumsum(counts[cells], axis=1, dtype=np.float64)], axis=1)
        self.cum_rings = {}
        for r in spec.rings:
            ringed = _ring_stack(counts, self.grid, r)[cells]
            self.cum_rings[r] = np.concatenate([zero, np.cumsum(ringed, axis=1)], axis=1)
        freq = np.bincount(history.category, minlength=len(history.categories))
        self.top_categories = [int(i) for i in np.argsort(-freq, kind="stable")[: spec.n_categories] if freq[i] > 0]
        self.cat_cum = self._category_cumsum(history)
        self.city = counts.sum(axis=0)
        self.until_doy = float(history.until.day_of_year)
        self.data_periods = int(np.ceil(history.span_days / spec.period_days))
        self.decay = np.power(0.5, (np.arange(self.n_periods) + 0.5) * spec.period_days / spec.half_life_days)

    def _category_cumsum(self, history: History) -> npt.NDArray[np.float64]:
        """Cumulative counts ``(top category, feature cell, period)`` along periods."""
        k, n, p_max = len(self.top_categories), len(self.cells), self.n_periods
        pos = np.full(self.grid.n_cells, -1, dtype=np.int64)
        pos[self.cells] = np.arange(n)
        rank = np.full(len(history.categories), -1, dtype=np.int64)
        rank[self.top_categories] = np.arange(k)
        p = np.floor(history.age / self.spec.period_days).astype(np.int64)
        m = (p < p_max) & (pos[history.cell] >= 0) & (rank[history.category] >= 0)
        flat = (rank[history.category[m]] * n + pos[history.cell[m]]) * p_max + p[m]
        cube = np.bincount(flat, minlength=k * n * p_max).reshape(k, n, p_max)
        return np.concatenate([np.zeros((k, n, 1)), np.cumsum(cube, axis=2, dtype=np.float64)], axis=2)

    def _window(self, cum: npt.NDArray[np.float64], j: int, length: int) -> npt.NDArray[np.float64]:
        end = min(j + length, self.n_periods)
        avail = max(1, min(end, self.data_periods) - j)
        return np.asarray((cum[:, end] - cum[:, j]) / avail, dtype=np.float64)

    def target(self, j: int) -> F32:
        """Counts of period ``j - 1`` (the window after origin ``j``) in the feature cells."""
        return np.asarray(self.counts[self.cells, j - 1], dtype=np.float32)

    def offset(self, j: int) -> npt.NDArray[np.float64]:
        """Log of the cell's mean count per period over the year before origin ``j`` (with half an
        incident of prior), the base rate the boosted trees correct multiplicatively."""
        yr = self.spec.year
        end = min(j + yr, self.n_periods)
        avail = max(1, min(end, self.data_periods) - j)
        return np.asarray(np.log((self.cum[:, end] - self.cum[:, j] + 0.5) / avail), dtype=np.float64)

    def features(self, j: int) -> F32:
        """Feature matrix ``(len(cells), n_features)`` for origin ``j`` (reads columns ``>= j``)."""
        c = self.cells
        cols: list[npt.NDArray[np.float64]] = []
        for lb in self.spec.lookbacks():
            cols.append(self._window(self.cum, j, lb))
            cols += [self._window(self.cum_rings[r], j, lb) for r in self.spec.rings]
        w = self.decay[: self.n_periods - j]
        recent = self.counts[:, j:]
        cell_decay = recent @ w
        cols.append(cell_decay[c])
        cols.append(ring_sum(cell_decay, self.grid, 1)[c])
        nonzero = recent[c] > 0
        first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), recent.shape[1]).astype(np.float64)
        cols.append(np.minimum(first, self.spec.periods_needed(0)))
        yr = min(self.spec.year, recent.shape[1])
        cols.append(nonzero[:, :yr].mean(axis=1))
        lo, hi = j + self.spec.year - 2, j + self.spec.year + 2
        cols.append((self.cum[:, min(hi, self.n_periods)] - self.cum[:, min(lo, self.n_periods)]) / 4.0)
        end = min(j + self.spec.year, self.n_periods)
        total = self.cat_cum[:, :, end] - self.cat_cum[:, :, j]
        denom = np.maximum(total.sum(axis=0), 1.0)
        cols += [total[r] / denom for r in range(len(self.top_categories))]
        cols += [np.zeros(len(c))] * (self.spec.n_categories - len(self.top_categories))
        doy = self.until_doy - (j - 0.5) * self.spec.period_days
        angle = 2 * np.pi * doy / 365.25
        cols += [np.full(len(c), np.sin(angle)), np.full(len(c), np.cos(angle))]
        short = self.city[j: j + 4].mean()
        long = max(self.city[j: j + self.spec.year].mean(), 1e-9)
        cols.append(np.full(len(c), short / long))
        return np.column_stack(cols).astype(np.float32)


def _ring_stack(counts: F32, grid: SquareGrid, ring: int) -> npt.NDArray[np.float64]:
    """:func:`~crimelens.forecast.history.ring_sum` of every period column at once."""
    size = 2 * ring + 1
    kernel = np.ones((size, size, 1))
    kernel[1:-1, 1:-1, 0] = 0.0
    img = counts.reshape(grid.ny, grid.nx, counts.shape[1]).astype(np.float64)
    out = ndimage.convolve(img, kernel, mode="constant", cval=0.0)
    return np.asarray(out.reshape(grid.n_cells, counts.shape[1]), dtype=np.float64)
