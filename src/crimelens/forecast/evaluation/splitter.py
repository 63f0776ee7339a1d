"""Rolling-origin splits for backtests, leak-free by construction.

A :class:`RollingOrigin` places forecast origins every ``step`` from ``start`` through ``end``
(both inclusive). At each origin the model may see only incidents that occurred strictly
before it; it is scored on the incidents of ``[origin, origin + horizon)`` (Tashman 2000,
"Out-of-sample tests of forecasting accuracy", *International Journal of Forecasting* 16).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast.history import parse_horizon


def _utc(when: Any) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


@dataclass(frozen=True, slots=True)
class Fold:
    """One backtest fold: train on ``[train_start, origin)``, test on ``[origin, end)``."""

    index: int
    origin: pd.Timestamp
    end: pd.Timestamp
    train_start: pd.Timestamp | None = None


@dataclass(frozen=True, slots=True)
class RollingOrigin:
    """Forecast origins every ``step`` from ``start`` through ``end``.

    Parameters
    ----------
    start, end : datetime-like
        First and last origin (inclusive). Naive values are UTC.
    horizon : str or float
        Test window length (``"7d"``).
    step : str or float
        Spacing of origins (default: the horizon).
    max_history_days : float, optional
        Only the last ``max_history_days`` before each origin are passed to the model.
    """

    start: Any
    end: Any
    horizon: str | float = "7d"
    step: str | float | None = None
    max_history_days: float | None = None

    def folds(self) -> list[Fold]:
        """The folds, in time order."""
        first, last = _utc(self.start), _utc(self.end)
        if last < first:
            raise InputError("backtest end is before its start")
        h = pd.Timedelta(days=parse_horizon(self.horizon))
        step = pd.Timedelta(days=parse_horizon(self.step if self.step is not None else self.horizon))
        out: list[Fold] = []
        origin = first
        while origin <= last:
            tstart = None if self.max_history_days is None else origin - pd.Timedelta(days=self.max_history_days)
            out.append(Fold(len(out), origin, origin + h, tstart))
            origin = origin + step
        return out

    def split(self, incidents: pd.DataFrame) -> Iterator[tuple[Fold, pd.DataFrame, pd.DataFrame]]:
        """Yield ``(fold, train, test)`` frames: ``train`` strictly before the origin."""
        when = incidents["occurred_at"]
        for fold in self.folds():
            m = when < fold.origin
            if fold.train_start is not None:
                m &= when >= fold.train_start
            test = (when >= fold.origin) & (when < fold.end)
            yield fold, incidents[m], incidents[test]

    def __len__(self) -> int:
        return len(self.folds())
