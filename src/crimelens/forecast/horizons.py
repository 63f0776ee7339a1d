"""Forecast windows aligned to police shifts in local time: ``8h``, ``1d``, ``7d``, ``28d``.

Patrol plans are made per shift and per local day, not per UTC interval. :class:`ShiftOrigins`
places backtest origins on shift boundaries in a local time zone (``shifts``, default 06:00,
14:00 and 22:00):

* a horizon shorter than a day (``8h``) starts a window at **every** shift boundary, and the
  window runs ``horizon`` of wall-clock time (22:00 + 8 h = 06:00 the next morning), so on
  daylight-saving days the window is an hour longer or shorter in UTC, as the shift is;
* a horizon of a day or more (``1d``, ``7d``, ``28d``) starts at the **first** shift boundary of
  the local day (the start of the early shift), every ``step`` days (default: the horizon).

Like :class:`~crimelens.forecast.evaluation.splitter.RollingOrigin`, which it extends, each fold
trains strictly before its origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time as dtime

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast.evaluation.splitter import Fold, RollingOrigin
from crimelens.forecast.history import parse_horizon

#: The horizons the CLI offers.
HORIZONS: tuple[str, ...] = ("8h", "1d", "7d", "28d")
DEFAULT_SHIFTS: tuple[str, ...] = ("06:00", "14:00", "22:00")


def parse_shifts(text: str | Sequence[str]) -> tuple[dtime, ...]:
    """Shift boundaries such as ``"06:00,14:00,22:00"`` as sorted times of day."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise InputError("give at least one shift boundary, e.g. 06:00,14:00,22:00")
    out = []
    for item in items:
        try:
            out.append(dtime.fromisoformat(item if len(item) > 2 else f"{int(item):02d}:00"))
        except ValueError as exc:
            raise InputError(f"cannot read shift boundary {item!r}: use HH:MM, e.g. 06:00") from exc
    if len(set(out)) != len(out):
        raise InputError("shift boundaries repeat")
    return tuple(sorted(out))


def _local(day: pd.Timestamp, at: dtime, tz: str) -> pd.Timestamp:
    wall = pd.Timestamp.combine(day.date(), at)
    return pd.Timestamp(wall).tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


@dataclass(frozen=True, slots=True)
class ShiftOrigins(RollingOrigin):
    """Origins on local shift boundaries from the local date of ``start`` through ``end``.

    Parameters
    ----------
    start, end : datetime-like
        First and last day (local dates; times are ignored), inclusive.
    horizon : str or float
        ``"8h"``, ``"1d"``, ``"7d"``, ``"28d"`` or any positive length.
    step : str or float, optional
        Spacing of day-or-longer windows (default: the horizon). Sub-day windows start at every
        boundary.
    tz : str
        IANA time zone the shifts are defined in (e.g. ``"America/Toronto"``).
    shifts : sequence of str
        Local shift boundaries.
    """

    tz: str = "UTC"
    shifts: tuple[str, ...] = DEFAULT_SHIFTS

    def folds(self) -> list[Fold]:
        """The folds, in time order, with origins and ends in UTC."""
        try:
            pd.Timestamp("2020-01-01").tz_localize(self.tz)
        except Exception as exc:  # pytz/zoneinfo raise different types for unknown zones
            raise InputError(f"unknown time zone {self.tz!r}") from exc
        bounds = parse_shifts(self.shifts)
        first, last = pd.Timestamp(self.start).normalize(), pd.Timestamp(self.end).normalize()
        first, last = (t.tz_localize(None) if t.tzinfo else t for t in (first, last))
        if last < first:
            raise InputError("backtest end is before its start")
        days = parse_horizon(self.horizon)
        h = pd.Timedelta(days=days)
        starts: list[pd.Timestamp] = []
        if days < 1.0:
            for day in pd.date_range(first, last, freq="D"):
                starts.extend(_local(day, b, self.tz) for b in bounds)
        else:
            step_days = parse_horizon(self.step if self.step is not None else self.horizon)
            if step_days < 1.0 or step_days != int(step_days):
                raise InputError("windows of a day or more step by whole days")
            starts = [_local(day, bounds[0], self.tz) for day in pd.date_range(first, last, freq=f"{int(step_days)}D")]
        out: list[Fold] = []
        for origin in starts:
            wall_end = origin.tz_localize(None) + h
            end = wall_end.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
            tstart = None if self.max_history_days is None else origin - pd.Timedelta(days=self.max_history_days)
            out.append(Fold(len(out), origin.tz_convert("UTC"), end.tz_convert("UTC"),
                            None if tstart is None else tstart.tz_convert("UTC")))
        return out
