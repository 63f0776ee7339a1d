"""``recent``: the naive baseline, counts in the last period.

The score of a cell is the number of incidents in it during the ``lookback_days`` before the
forecast origin, the "last week's hot spots" map many agencies still use. It is the reference
that short-memory methods must beat (Chainey, Tompson & Uhlig 2008, *Security Journal* 21).
"""

from __future__ import annotations

from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import FloatArray, History
from crimelens.geo.grid import SquareGrid


class Recent(Forecaster):
    """Counts per cell over the last ``lookback_days``.

    Parameters
    ----------
    lookback_days : float
        Length of the recent period (default 7 days).
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.
    """

    name = "recent"

    def __init__(self, *, lookback_days: float = 7.0, cell_size: float = 200.0,
                 grid: SquareGrid | None = None) -> None:
        self.lookback_days = lookback_days
        self.cell_size = cell_size
        self.grid = grid

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        return history.counts(max_age=self.lookback_days)
