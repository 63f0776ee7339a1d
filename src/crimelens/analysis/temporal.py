"""Temporal analysis: zero-filled series, seasonal-trend decomposition, hour × weekday, month × year.

All functions take store counts (``store.counts(by=[key, "time_precision"])``), never incidents,
and respect the precision of the timestamps: an incident known only to the month cannot be put in
a day, and one known only to the day cannot be put in an hour. Such rows are left out and
reported; if nothing is left (police.uk gives months only) a :class:`TimePrecisionError`
explains why the chart cannot be drawn.

Seasonal-trend decomposition uses STL (Cleveland et al. 1990) from statsmodels, with a robust
fit so that a one-off spike does not bend the trend; the season length is 7 for daily series,
52 for weekly and 12 for monthly ones.

References
----------
Cleveland, R. B., Cleveland, W. S., McRae, J. E. & Terpenning, I. (1990). STL: a seasonal-trend
decomposition procedure based on loess. *Journal of Official Statistics* 6(1), 3-73.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError

Period = Literal["day", "week", "month"]

#: Time precisions, finest first.
PRECISION_ORDER: Final = ("minute", "hour", "day", "month", "year")
#: The coarsest precision each key can use.
NEEDS: Final[dict[str, str]] = {
    "hour": "hour",
    "weekday": "day",
    "day": "day",
    "week": "day",
    "month": "month",
}
SEASON: Final[dict[str, int]] = {"day": 7, "week": 52, "month": 12}
_FREQ: Final[dict[str, str]] = {"day": "D", "week": "W-MON", "month": "MS"}
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TimePrecisionError(InputError):
    """The timestamps are too coarse for the requested chart (e.g. hour of day from monthly data)."""


def precise_enough(counts: pd.DataFrame, key: str) -> tuple[pd.DataFrame, int]:
    """Rows whose ``time_precision`` supports ``key``, and the number of incidents left out.

    Raises :class:`TimePrecisionError` when no incident is precise enough.
    """
    if "time_precision" not in counts.columns:
        return counts, 0
    allowed = PRECISION_ORDER[: PRECISION_ORDER.index(NEEDS[key]) + 1]
    ok = counts["time_precision"].isin(allowed)
    dropped = int(counts.loc[~ok, "count"].sum())
    if not ok.any() and len(counts):
        have = ", ".join(sorted(counts["time_precision"].dropna().unique()))
        raise TimePrecisionError(
            f"no incident is timed precisely enough for a {key} breakdown: the data give {have} "
            f"precision, and a {key} breakdown needs {NEEDS[key]} precision or finer"
        )
    return counts[ok], dropped


def _period_start(values: pd.Series, period: str) -> pd.Series:
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    day = ts.dt.normalize()
    if period == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    if period == "month":
        return day - pd.to_timedelta(day.dt.day - 1, unit="D")
    return day


@dataclass(frozen=True, eq=False)
class TrendResult:
    """A zero-filled count series with its optional STL decomposition.

    Attributes
    ----------
    series : Series
        Counts per period (index: period start).
    period : str
        ``day``, ``week`` or ``month``.
    components : DataFrame or None
        ``trend``, ``seasonal``, ``resid`` from STL.
    parameters : dict
    excluded : int
        Incidents left out for coarse time precision.
    """

    series: pd.Series
    period: str
    components: pd.DataFrame | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    excluded: int = 0
    method: str = "trend"

    def to_frame(self) -> pd.DataFrame:
        """``period_start``, ``count`` and the STL components when computed."""
        df = self.series.rename("count").to_frame()
        if self.components is not None:
            df = df.join(self.components)
        df.index.name = "period_start"
        return df.reset_index()

    def summary(self) -> dict[str, Any]:
        """Totals, the last period against the mean of the previous ones, and the trend direction."""
        s = self.series
        out: dict[str, Any] = {
            "method": self.method,
            "period": self.period,
            "periods": len(s),
            "incidents": int(s.sum()),
            "first": str(s.index[0].date()) if len(s) else None,
            "last": str(s.index[-1].date()) if len(s) else None,
            "mean_per_period": round(float(s.mean()), 3) if len(s) else 0.0,
            "excluded_imprecise": self.excluded,
        }
        if self.components is not None and len(self.components) > 1:
            tr = self.components["trend"]
            out["trend_change"] = round(float(tr.iloc[-1] - tr.iloc[0]), 3)
        out["parameters"] = self.parameters
        return out


def time_series(
    counts: pd.DataFrame,
    period: Period = "day",
    *,
    start: Any = None,
    end: Any = None,
    stl: bool = False,
    robust: bool = True,
    complete_periods: bool = True,
) -> TrendResult:
    """Zero-filled counts per ``period`` from ``store.counts(by=[period, "time_precision"])``.

    Parameters
    ----------
    counts : DataFrame
        Column ``period`` (or ``day``, re-aggregated) and ``count``; ``time_precision`` optional.
    period : {"day", "week", "month"}
        Series resolution; weeks start on Monday.
    start, end : date-like, optional
        Days the data cover (inclusive); default the first and last day present (a month-precise
        incident covers its whole month).
    stl : bool
        Also decompose with STL (needs two full seasons).
    robust : bool
        Robust STL fit.
    complete_periods : bool
        Leave out a first or last period that the covered days only partly span (a week that
        starts before the data would otherwise show as a sudden dip).
    """
    if period not in _FREQ:
        raise InputError(f"unknown period {period!r}: use day, week or month")
    key = period if period in counts.columns else "day" if "day" in counts.columns else None
    if key is None or "count" not in counts.columns:
        raise InputError(f"a {period} series needs a {period!r} (or 'day') column and 'count'")
    c, dropped = precise_enough(counts, period)
    t = _period_start(c[key], period)
    s = c["count"].groupby(t.to_numpy()).sum()
    if s.empty and (start is None or end is None):
        raise InputError("no incidents in the selected period")
    first_day = _period_start(c[key], "day")
    row_end = first_day
    if key != "day":  # counts by week or month only say which period
        row_end = _period_start(c[key], key) + pd.tseries.frequencies.to_offset(_FREQ[key]) - pd.Timedelta(days=1)
    elif "time_precision" in c.columns:
        monthly = c["time_precision"].isin(("month", "year")).to_numpy()
        row_end = first_day.where(~monthly, first_day + pd.offsets.MonthEnd(0))
    cov_lo = pd.Timestamp(start).tz_localize(None).normalize() if start is not None else first_day.min()
    cov_hi = pd.Timestamp(end).tz_localize(None).normalize() if end is not None else row_end.max()
    lo = _period_start(pd.Series([cov_lo]), period)[0]
    hi = _period_start(pd.Series([cov_hi]), period)[0]
    idx = pd.date_range(lo, hi, freq=_FREQ[period])
    partial = 0
    if complete_periods and period != "day":
        ends = idx + pd.tseries.frequencies.to_offset(_FREQ[period]) - pd.Timedelta(days=1)
        full = (idx >= cov_lo) & (ends <= cov_hi)
        partial = int((~full).sum())
        idx = idx[full]
        if len(idx) == 0:
            raise InputError(f"the data cover no complete {period}: use a shorter period")
    series = s.reindex(idx, fill_value=0).astype(float)
    series.index.name = "period_start"
    comps = stl_decompose(series, period, robust=robust) if stl else None
    params = {
        "period": period,
        "weeks_start": "Monday",
        "zero_filled": True,
        "covered": f"{cov_lo.date()} to {cov_hi.date()}",
        **({"partial_periods_left_out": partial} if partial else {}),
        **({"stl_season": SEASON[period], "stl_robust": robust} if stl else {}),
    }
    return TrendResult(series, period, comps, params, dropped)


def stl_decompose(series: pd.Series, period: str, *, robust: bool = True) -> pd.DataFrame:
    """STL trend, seasonal and residual components of a zero-filled series."""
    from statsmodels.tsa.seasonal import STL

    season = SEASON[period]
    if len(series) < 2 * season:
        raise InputError(
            f"STL of a {period} series needs at least {2 * season} periods (two seasons of {season}); got {len(series)}"
        )
    fit = STL(series.to_numpy(float), period=season, robust=robust).fit()
    return pd.DataFrame({"trend": fit.trend, "seasonal": fit.seasonal, "resid": fit.resid}, index=series.index)


@dataclass(frozen=True, eq=False)
class MatrixResult:
    """A two-way count table (hour × weekday, month × year) with its context."""

    table: pd.DataFrame
    title: str
    parameters: dict[str, Any] = field(default_factory=dict)
    excluded: int = 0
    method: str = "matrix"

    def to_frame(self) -> pd.DataFrame:
        """The table with its row labels as a column."""
        return self.table.reset_index()

    def summary(self) -> dict[str, Any]:
        """Total, peak cell and exclusions."""
        t = self.table
        arr = t.to_numpy()
        r, c = (int(v) for v in np.unravel_index(int(np.argmax(arr)), arr.shape))
        return {
            "method": self.method,
            "title": self.title,
            "incidents": int(t.to_numpy().sum()),
            "peak": {"row": str(t.index[r]), "column": str(t.columns[c]), "count": int(arr[r, c])},
            "excluded_imprecise": self.excluded,
            "parameters": self.parameters,
        }


def hour_weekday(counts: pd.DataFrame) -> MatrixResult:
    """Weekday (rows, Monday first) × hour (0-23) from ``counts(by=["hour", "weekday", ...])``."""
    if not {"hour", "weekday", "count"} <= set(counts.columns):
        raise InputError("hour x weekday needs hour, weekday and count columns")
    c, dropped = precise_enough(counts, "hour")
    m = np.zeros((7, 24))
    np.add.at(m, (c["weekday"].to_numpy(int), c["hour"].to_numpy(int)), c["count"].to_numpy(float))
    table = pd.DataFrame(m, index=pd.Index(WEEKDAYS, name="weekday"), columns=pd.Index(range(24), name="hour"))
    return MatrixResult(
        table.astype(np.int64),
        "Incidents by hour of day and day of week",
        {"weekday_0": "Monday"},
        dropped,
        "hour_weekday",
    )


def month_year(counts: pd.DataFrame) -> MatrixResult:
    """Year (rows) × month (columns) counts from ``counts(by=["month", "time_precision"])``."""
    key = "month" if "month" in counts.columns else "day"
    if key not in counts.columns or "count" not in counts.columns:
        raise InputError("month x year needs a month (or day) column and count")
    c, dropped = precise_enough(counts, "month")
    t = pd.to_datetime(c[key])
    years = sorted(t.dt.year.unique().tolist())
    m = np.zeros((len(years), 12))
    np.add.at(
        m,
        (np.searchsorted(years, t.dt.year.to_numpy()), t.dt.month.to_numpy() - 1),
        c["count"].to_numpy(float),
    )
    table = pd.DataFrame(m, index=pd.Index(years, name="year"), columns=pd.Index(MONTHS, name="month"))
    return MatrixResult(table.astype(np.int64), "Incidents by month and year", {}, dropped, "month_year")
