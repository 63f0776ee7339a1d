"""The estimator contract every spatial forecaster follows (scikit-learn style).

``__init__`` stores keyword-only hyperparameters and does nothing else; ``fit(incidents,
until=...)`` learns from the incidents before ``until`` and returns ``self``; learned state ends
in ``_``; ``predict(horizon=...)`` checks the model is fitted and returns a
:class:`~crimelens.forecast.surface.RiskSurface` for the window starting at ``until``.
:meth:`get_params` / :meth:`set_params` follow scikit-learn, so ``sklearn.base.clone`` and
parameter searches work.

Subclasses implement :meth:`Forecaster._fit` and :meth:`Forecaster._score` on a
:class:`~crimelens.forecast.history.History`.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError, NotFittedError
from crimelens.forecast.history import (
    DAY,
    FloatArray,
    History,
    default_until,
    parse_horizon,
)
from crimelens.forecast.surface import RiskSurface
from crimelens.geo.grid import SquareGrid


class Forecaster:
    """Base class of the spatial forecasters.

    Every forecaster takes two common hyperparameters: ``cell_size`` (metres; used when no
    ``grid`` is given, to build the grid covering the training incidents) and ``grid`` (a
    :class:`~crimelens.geo.grid.SquareGrid` fixed by the caller, e.g. a backtest that needs the
    same cells in every fold).
    """

    #: Registry name.
    name: ClassVar[str] = ""

    cell_size: float
    grid: SquareGrid | None

    # -- scikit-learn parameter protocol ---------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters by name (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters by name; unknown names raise :class:`InputError`."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise InputError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if not isinstance(v, SquareGrid))
        return f"{type(self).__name__}({args})"

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, incidents: pd.DataFrame, *, until: Any = None) -> Self:
        """Learn from ``incidents`` that occurred before ``until``.

        Parameters
        ----------
        incidents : DataFrame
            Canonical incidents with at least ``occurred_at`` (UTC), ``x``, ``y`` (metres in the
            grid's CRS) and ``category``. Not modified.
        until : datetime-like, optional
            Exclusive end of the observed period, i.e. the forecast origin. Defaults to the day
            after the last incident. Rows at or after ``until`` are ignored.

        Returns
        -------
        self
        """
        if len(incidents) == 0:
            raise InputError("cannot fit a forecaster on no incidents")
        end = default_until(incidents) if until is None else _utc(until)
        grid = self.grid
        if grid is None:
            crs = _crs_of(incidents)
            grid = SquareGrid.covering(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float),
                                       float(self.cell_size), crs)
        history = History.build(incidents, grid, end)
        if len(history) == 0:
            raise InputError("no located incidents before the forecast origin inside the grid")
        return self._fit_history(history)

    def _fit_history(self, history: History) -> Self:
        """Fit on an already built :class:`History` (used by ensembles to share one)."""
        self.grid_ = history.grid
        self.until_ = history.until
        self.categories_ = history.categories
        self.area_ = history.footprint()
        self.daily_rate_ = history.rate_per_day()
        self.n_train_ = len(history)
        self._fit(history)
        self.history_ = history
        return self

    def _fit(self, history: History) -> None:
        """Learn model state from ``history`` (override; default: nothing to learn)."""

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        """Scores per cell for ``[until, until + horizon)`` (override)."""
        raise NotImplementedError

    # -- prediction --------------------------------------------------------------------------
    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` has run."""
        if not hasattr(self, "history_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(incidents) first")

    def predict(self, *, horizon: str | float = "7d") -> RiskSurface:
        """The risk surface for the window ``[until_, until_ + horizon)``.

        Parameters
        ----------
        horizon : str or float
            Window length, e.g. ``"1d"``, ``"7d"``, ``"28d"`` or a number of days.

        Returns
        -------
        RiskSurface
        """
        self.check_fitted()
        days = parse_horizon(horizon)
        score = np.asarray(self._score(self.history_, days), dtype=np.float64)
        return RiskSurface(
            grid=self.grid_,
            score=score,
            start=self.until_,
            end=self.until_ + pd.Timedelta(days=days),
            model=self.name,
            params={k: v for k, v in self.get_params().items() if k != "grid"},
            expected_total=self.daily_rate_ * days,
            area=self.area_,
        )

    def fit_predict(self, incidents: pd.DataFrame, *, until: Any = None, horizon: str | float = "7d") -> RiskSurface:
        """:meth:`fit` then :meth:`predict`."""
        return self.fit(incidents, until=until).predict(horizon=horizon)


def _utc(when: Any) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


def _crs_of(incidents: pd.DataFrame) -> str:
    if "crs" in incidents.columns:
        vals = incidents["crs"].dropna().unique()
        if len(vals) == 1:
            return str(vals[0])
        if len(vals) > 1:
            raise InputError(f"incidents mix coordinate systems: {sorted(map(str, vals))[:3]}")
    return "unknown"


__all__ = ["DAY", "Forecaster"]
