"""``retro_count``: retrospective hot spots, incident counts over a long lookback.

The score of a cell is its number of incidents over the ``lookback_days`` (365 by default)
before the origin. Long-run counts are the strongest simple predictor of where crime will
concentrate (Weisburd 2015, "The law of crime concentration at place", *Criminology* 53), and
the baseline every model in the leaderboard is compared with. ``half_life_days`` turns the box
window into an exponentially decaying one.
"""

from __future__ import annotations

import numpy as np

from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import FloatArray, History
from crimelens.geo.grid import SquareGrid


class RetroCount(Forecaster):
    """Counts per cell over the last ``lookback_days``.

    Parameters
    ----------
    lookback_days : float
        Length of the lookback window (default 365 days).
    half_life_days : float, optional
        When given, each incident is weighted by ``0.5 ** (age / half_life_days)``.
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.
    """

    name = "retro_count"

    def __init__(self, *, lookback_days: float = 365.0, half_life_days: float | None = None,
                 cell_size: float = 200.0, grid: SquareGrid | None = None) -> None:
        self.lookback_days = lookback_days
        self.half_life_days = half_life_days
        self.cell_size = cell_size
        self.grid = grid

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        weights = None
        if self.half_life_days:
            weights = np.power(0.5, history.age / float(self.half_life_days))
        return history.counts(max_age=self.lookback_days, weights=weights)
