"""Daily incident counts per series (area × category): the input of every spike detector.

A :class:`CountPanel` is a dense ``(series, day)`` integer matrix over contiguous UTC days. It is
built from the store's pushed-down ``GROUP BY`` (:meth:`CountPanel.from_counts` on
``store.counts(by=[area_level, "category", "day", "time_precision"])``) or from an in-memory
canonical frame, and it grows in place as incidents arrive (:meth:`CountPanel.add_incidents`),
which is what incremental evaluation needs. Incidents timed only to the month or year cannot be
put in a day and are left out (and counted in :attr:`CountPanel.dropped`).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.schema import AREA_COLUMNS, H3_RESOLUTIONS

IntMatrix = npt.NDArray[np.int64]

#: Area levels a panel can use: the schema's area columns, H3 cells, or the whole city.
AREA_LEVELS: Final = (*AREA_COLUMNS, *(f"h3_{r}" for r in H3_RESOLUTIONS), "city")
#: Category columns a panel can use.
CATEGORY_COLUMNS: Final = ("category", "category_group", "ucr_part1", "crimes_against")
#: Time precisions fine enough to place an incident in a day.
DAILY_PRECISIONS: Final = ("minute", "hour", "day")
CITY: Final = "all"


def check_level(area_level: str, category_column: str = "category") -> None:
    """Raise :class:`InputError` for an unknown area level or category column."""
    if area_level not in AREA_LEVELS:
        raise InputError(f"unknown area level {area_level!r}; use one of {', '.join(AREA_LEVELS)}")
    if category_column not in CATEGORY_COLUMNS:
        raise InputError(f"unknown category column {category_column!r}; use one of {', '.join(CATEGORY_COLUMNS)}")


def _day(values: pd.Series | pd.DatetimeIndex, tz: str = "UTC") -> pd.DatetimeIndex:
    """Local calendar days as naive midnights: aware times are converted to ``tz``; naive values
    are taken as local wall-clock labels already (as ``store.counts`` returns them)."""
    ts = pd.DatetimeIndex(pd.to_datetime(values))
    if ts.tz is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts.normalize()


def local_midnight(label: pd.Timestamp, tz: str) -> pd.Timestamp:
    """The instant a local calendar day starts (DST gaps at midnight move to the first valid time)."""
    return pd.Timestamp(label).tz_localize(tz, ambiguous=False, nonexistent="shift_forward")


class CountPanel:
    """Daily counts of ``(area, category)`` series.

    Parameters
    ----------
    keys
        One row per series with columns ``area`` and ``category`` (strings).
    start
        The first day (a local calendar day; an aware timestamp is converted to ``tz``).
    counts
        Integer matrix ``(len(keys), n_days)``.
    area_level, category_column
        What ``area`` and ``category`` mean.
    dropped
        Incidents left out because their time is coarser than a day.
    tz
        IANA time zone whose calendar days the columns are (the sources' own, as the store's
        counts use); windows start and end at local midnight.
    """

    def __init__(self, keys: pd.DataFrame, start: pd.Timestamp, counts: IntMatrix, *, area_level: str,
                 category_column: str = "category", dropped: int = 0, tz: str = "UTC") -> None:
        check_level(area_level, category_column)
        if counts.ndim != 2 or counts.shape[0] != len(keys):
            raise InputError("counts must be a (series, day) matrix with one row per key")
        self.keys = keys[["area", "category"]].reset_index(drop=True).astype(str)
        self.tz = tz
        self.start = _day(pd.DatetimeIndex([start]), tz)[0]
        self.counts = np.ascontiguousarray(counts, dtype=np.int64)
        self.area_level = area_level
        self.category_column = category_column
        self.dropped = int(dropped)
        self._index = {(a, c): i for i, (a, c) in enumerate(zip(self.keys["area"], self.keys["category"],
                                                                  strict=True))}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_counts(cls, counts: pd.DataFrame, *, area_level: str, category_column: str = "category",
                    start: Any = None, end: Any = None, tz: str | None = None) -> CountPanel:
        """Build from long counts with columns ``area_level`` (unless ``city``), ``category_column``,
        ``day`` and ``count`` (and optionally ``time_precision``).

        ``start`` (inclusive) and ``end`` (exclusive) fix the day range; by default it spans the
        data. Days without incidents are zero. ``tz`` is the zone of the ``day`` labels (default
        ``counts.attrs["timezone"]`` as the store sets it, else UTC).
        """
        check_level(area_level, category_column)
        zone = tz or str(counts.attrs.get("timezone", "UTC"))
        frame = counts
        dropped = 0
        if "time_precision" in frame.columns:
            ok = frame["time_precision"].isin(DAILY_PRECISIONS)
            dropped = int(frame.loc[~ok, "count"].sum())
            frame = frame[ok]
        area = (pd.Series(CITY, index=frame.index) if area_level == "city"
                else frame[area_level])
        long = pd.DataFrame({"area": area, "category": frame[category_column],
                             "day": _day(frame["day"], zone) if len(frame) else pd.DatetimeIndex([]),
                             "count": frame["count"].astype("int64")})
        before = int(long["count"].sum())
        long = long.dropna(subset=["area", "category"])
        dropped += before - int(long["count"].sum())  # incidents with no area or category
        return cls._from_long(long, area_level, category_column, start, end, dropped, zone)

    @classmethod
    def from_incidents(cls, incidents: pd.DataFrame, *, area_level: str, category_column: str = "category",
                       start: Any = None, end: Any = None, tz: str = "UTC") -> CountPanel:
        """Build from a canonical incident frame, with days of time zone ``tz``."""
        check_level(area_level, category_column)
        return cls.from_counts(_long_counts(incidents, area_level, category_column, tz), area_level=area_level,
                               category_column=category_column, start=start, end=end, tz=tz)

    @classmethod
    def _from_long(cls, long: pd.DataFrame, area_level: str, category_column: str,
                   start: Any, end: Any, dropped: int, tz: str) -> CountPanel:
        first = _day(pd.DatetimeIndex([pd.Timestamp(start)]), tz)[0] if start is not None else (
            long["day"].min() if len(long) else None)
        last = _day(pd.DatetimeIndex([pd.Timestamp(end)]), tz)[0] if end is not None else (
            long["day"].max() + pd.Timedelta(days=1) if len(long) else None)
        if first is None or last is None:
            raise InputError("no incidents with a daily time to build a count panel from (give start and end)")
        n_days = int((last - first) / pd.Timedelta(days=1))
        if n_days <= 0:
            raise InputError("the panel's end must be after its start")
        inside = long[(long["day"] >= first) & (long["day"] < last)]
        grouped = inside.groupby(["area", "category"], sort=True)
        keys = pd.DataFrame(list(grouped.groups), columns=["area", "category"]) if len(inside) else \
            pd.DataFrame({"area": pd.Series([], dtype=str), "category": pd.Series([], dtype=str)})
        matrix = np.zeros((len(keys), n_days), dtype=np.int64)
        if len(inside):
            row = grouped.ngroup().to_numpy()
            col = (inside["day"] - first).dt.days.to_numpy().astype(np.int64)
            np.add.at(matrix, (row, col), inside["count"].to_numpy(np.int64))
        return cls(keys, first, matrix, area_level=area_level, category_column=category_column, dropped=dropped,
                   tz=tz)

    # -- views --------------------------------------------------------------------------
    @property
    def n_series(self) -> int:
        """Number of series."""
        return int(self.counts.shape[0])

    @property
    def n_days(self) -> int:
        """Number of days."""
        return int(self.counts.shape[1])

    def day_at(self, index: int) -> pd.Timestamp:
        """The instant (aware, in ``tz``) the column ``index`` starts; ``n_days`` gives the end."""
        return local_midnight(self.start + pd.Timedelta(days=index), self.tz)

    @property
    def start_at(self) -> pd.Timestamp:
        """The instant the first day starts."""
        return self.day_at(0)

    @property
    def end(self) -> pd.Timestamp:
        """The instant after the last day (exclusive end)."""
        return self.day_at(self.n_days)

    @property
    def days(self) -> pd.DatetimeIndex:
        """The local calendar days of the columns (naive midnights)."""
        return pd.date_range(self.start, periods=self.n_days, freq="D")

    def day_index(self, when: Any) -> int:
        """Column index of the day containing ``when`` (may lie outside the panel).

        An aware time is placed in its local day; a naive one is taken as a local label.
        """
        day = _day(pd.DatetimeIndex([pd.Timestamp(when)]), self.tz)[0]
        return int((day - self.start) / pd.Timedelta(days=1))

    def series_index(self, area: str, category: str) -> int | None:
        """Row of a series, or ``None``."""
        return self._index.get((str(area), str(category)))

    def categories(self) -> list[str]:
        """Distinct categories, sorted."""
        return sorted(self.keys["category"].unique())

    # -- growth -------------------------------------------------------------------------
    def extend_to(self, end: Any) -> None:
        """Append zero days up to ``end`` (exclusive), in place."""
        extra = self.day_index(end) - self.n_days
        if extra > 0:
            self.counts = np.hstack([self.counts, np.zeros((self.n_series, extra), dtype=np.int64)])

    def add_counts(self, long: pd.DataFrame) -> np.ndarray:
        """Add long counts (columns ``area``, ``category``, ``day``, ``count``) in place.

        New series get new rows; days past the end extend the panel; days before the start are
        ignored. Returns the row indices of the series that changed.
        """
        if long.empty:
            return np.zeros(0, dtype=np.int64)
        day = _day(long["day"], self.tz)
        if len(day):
            self.extend_to(day.max() + pd.Timedelta(days=1))
        rows: list[int] = []
        new_keys: list[tuple[str, str]] = []
        for a, c in zip(long["area"].astype(str), long["category"].astype(str), strict=True):
            i = self._index.get((a, c))
            if i is None:
                i = self.n_series + len(new_keys)
                self._index[(a, c)] = i
                new_keys.append((a, c))
            rows.append(i)
        if new_keys:
            self.keys = pd.concat([self.keys, pd.DataFrame(new_keys, columns=["area", "category"])],
                                  ignore_index=True)
            self.counts = np.vstack([self.counts, np.zeros((len(new_keys), self.n_days), dtype=np.int64)])
        r = np.asarray(rows, dtype=np.int64)
        col = ((day - self.start) / pd.Timedelta(days=1)).to_numpy().astype(np.int64)
        ok = col >= 0
        np.add.at(self.counts, (r[ok], col[ok]), long["count"].to_numpy(np.int64)[ok])
        return np.unique(r[ok])

    def add_incidents(self, incidents: pd.DataFrame) -> np.ndarray:
        """Add canonical incidents in place; returns the rows of the affected series."""
        long = _long_counts(incidents, self.area_level, self.category_column, self.tz)
        if "time_precision" in long.columns:
            long = long[long["time_precision"].isin(DAILY_PRECISIONS)]
        area = pd.Series(CITY, index=long.index) if self.area_level == "city" else long[self.area_level]
        frame = pd.DataFrame({"area": area, "category": long[self.category_column], "day": long["day"],
                              "count": long["count"]}).dropna(subset=["area", "category"])
        return self.add_counts(frame)

    def copy(self) -> CountPanel:
        """An independent copy."""
        return CountPanel(self.keys.copy(), self.start, self.counts.copy(), area_level=self.area_level,
                          category_column=self.category_column, dropped=self.dropped, tz=self.tz)


def _long_counts(incidents: pd.DataFrame, area_level: str, category_column: str, tz: str) -> pd.DataFrame:
    """``[area_level, category_column, day, time_precision, count]`` from a canonical frame (local days)."""
    day = _day(incidents["occurred_at"], tz) if len(incidents) else pd.DatetimeIndex([])
    data = {category_column: incidents[category_column].to_numpy(), "day": day,
            "time_precision": incidents["time_precision"].to_numpy()}
    if area_level != "city":
        data[area_level] = incidents[area_level].to_numpy()
    frame = pd.DataFrame(data)
    keys = [k for k in (area_level, category_column) if k != "city"] + ["day", "time_precision"]
    return frame.groupby(keys, dropna=False, sort=False).size().rename("count").reset_index()
