"""``ensemble``: a weighted average of member forecasters' normalised surfaces.

Each member's surface is divided by its total, so members on different scales (counts, rates,
kernel sums) contribute shares of risk; the weighted mean of the shares is the ensemble score.
Forecast combination rarely hurts and often helps (Bates & Granger 1969, "The combination of
forecasts", *Operational Research Quarterly* 20; Clemen 1989, *Int. J. Forecasting* 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone

from crimelens.exceptions import InputError
from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import FloatArray, History
from crimelens.geo.grid import SquareGrid


def default_members() -> tuple[Forecaster, ...]:
    """The default members: smoothed long-run counts, the SEPP and the boosted model."""
    from crimelens.forecast.gbm import GBMForecaster
    from crimelens.forecast.retro_kde import RetroKDE
    from crimelens.forecast.sepp import SEPP

    return (RetroKDE(), SEPP(), GBMForecaster())


class Ensemble(Forecaster):
    """Weighted mean of member surfaces, each normalised to sum to one.

    Parameters
    ----------
    members : sequence of Forecaster, optional
        The members (default: :func:`default_members`). They are cloned, never fitted in place.
    weights : sequence of float, optional
        One weight per member (default: equal).
    horizon : str or float
        Passed to members that are trained for a horizon.
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.

    Attributes
    ----------
    members_ : list of Forecaster
        The fitted members.
    """

    name = "ensemble"

    def __init__(self, *, members: Sequence[Forecaster] | None = None, weights: Sequence[float] | None = None,
                 horizon: str | float = "7d", cell_size: float = 200.0, grid: SquareGrid | None = None) -> None:
        self.members = members
        self.weights = weights
        self.horizon = horizon
        self.cell_size = cell_size
        self.grid = grid

    def _fit(self, history: History) -> None:
        members = list(self.members) if self.members is not None else list(default_members())
        if not members:
            raise InputError("an ensemble needs at least one member")
        w = np.ones(len(members)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if len(w) != len(members) or (w < 0).any() or w.sum() <= 0:
            raise InputError("ensemble weights must be non-negative, one per member, not all zero")
        fitted: list[Forecaster] = []
        for m in members:
            est = clone(m)
            params: dict[str, object] = {"grid": history.grid}
            if "horizon" in est.get_params():
                params["horizon"] = self.horizon
            est.set_params(**params)
            est._fit_history(history)
            fitted.append(est)
        self.members_ = fitted
        self.weights_ = w / w.sum()

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        out = np.zeros(history.grid.n_cells)
        for est, w in zip(self.members_, self.weights_, strict=True):
            s = np.clip(np.nan_to_num(est._score(history, horizon_days)), 0.0, None)
            total = s.sum()
            if total > 0:
                out += w * s / total
        return out * history.rate_per_day() * horizon_days
