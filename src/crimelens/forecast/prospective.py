"""``prospective``: prospective hot spotting (Bowers, Johnson & Pease 2004).

Bowers, K. J., Johnson, S. D. & Pease, K. (2004), "Prospective hot-spotting: the future of
crime mapping?", *British Journal of Criminology* 44(5), 641-658. Each recent incident raises
the risk of the cells around it with a weight that decays with distance and with time,
reflecting the near-repeat phenomenon: a cell's score is

    sum over incidents within ``bandwidth_m`` and ``window_days`` of
    1 / (1 + d) * 1 / (1 + w)

where ``d`` is the distance in cell widths between the incident's cell and the cell, and ``w``
the incident's age in whole ``time_unit_days`` (weeks in the paper). The paper used 400 m and
two months for residential burglary.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import FloatArray, History
from crimelens.geo.grid import SquareGrid


class Prospective(Forecaster):
    """Space-time decaying kernel of recent incidents.

    Parameters
    ----------
    bandwidth_m : float
        Spatial reach in metres (default 400, as in the paper).
    window_days : float
        Temporal reach in days (default 56, about two months).
    time_unit_days : float
        Unit of the temporal decay (default 7: weeks).
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.
    """

    name = "prospective"

    def __init__(self, *, bandwidth_m: float = 400.0, window_days: float = 56.0, time_unit_days: float = 7.0,
                 cell_size: float = 200.0, grid: SquareGrid | None = None) -> None:
        self.bandwidth_m = bandwidth_m
        self.window_days = window_days
        self.time_unit_days = time_unit_days
        self.cell_size = cell_size
        self.grid = grid

    def kernel(self, cell_size: float) -> FloatArray:
        """The spatial weights ``1 / (1 + d)`` (``d`` in cell widths) within the bandwidth."""
        reach = int(np.floor(float(self.bandwidth_m) / cell_size))
        off = np.arange(-reach, reach + 1, dtype=np.float64)
        d = np.hypot(off[:, None], off[None, :])
        k = 1.0 / (1.0 + d)
        k[d * cell_size > float(self.bandwidth_m)] = 0.0
        return k

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        weeks = np.floor(history.age / float(self.time_unit_days))
        weights = 1.0 / (1.0 + weeks)
        recent = history.counts(max_age=float(self.window_days), weights=weights)
        grid = history.grid
        img = recent.reshape(grid.ny, grid.nx)
        out = ndimage.convolve(img, self.kernel(grid.cell_size), mode="constant", cval=0.0)
        return np.asarray(out.ravel(), dtype=np.float64)
