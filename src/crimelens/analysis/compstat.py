"""CompStat tables: week, 28 days and year to date against the same period a year earlier.

The NYPD's CompStat report (Bratton & Malinowski 2008) puts offences in rows and, for the
CompStat week (Monday to Sunday), the 28 days ending that week and the year to date, the count
now, the count a year ago, the difference and the percentage change. Percentage change alone
misleads on small counts (2 → 4 is "+100%"), so each window also gets:

* the Poisson z-score ``(c - l) / √(c + l)`` of the change, and
* an exact two-sided test: given ``c + l`` incidents, under equal rates the current count is
  binomial with ``p0 = days_now / (days_now + days_then)`` (Przyborowski & Wilenski 1940's
  conditional test for two Poisson means), computed with ``scipy.stats.binomtest``.

Windows: the report ends on the last Sunday on or before ``as_of`` (a complete CompStat week);
the 7- and 28-day windows a year earlier are shifted by 364 days so weekdays line up; the year to
date runs from 1 January to the end date, against 1 January to the same calendar date a year
earlier (29 February maps to 28 February).

References
----------
Bratton, W. J. & Malinowski, S. W. (2008). Police performance management in practice: taking
COMPSTAT to the next level. *Policing* 2(3), 259-265.
Przyborowski, J. & Wilenski, H. (1940). Homogeneity of results in testing samples from Poisson
series. *Biometrika* 31(3/4), 313-323.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from crimelens.analysis.temporal import precise_enough
from crimelens.exceptions import InputError

WINDOWS = ("7d", "28d", "ytd")


@dataclass(frozen=True)
class Window:
    """One window: current ``[start, end]`` and last year's ``[ly_start, ly_end]`` (inclusive dates)."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    ly_start: pd.Timestamp
    ly_end: pd.Timestamp

    @property
    def days(self) -> tuple[int, int]:
        """Lengths in days of the current and last year's windows."""
        return (self.end - self.start).days + 1, (self.ly_end - self.ly_start).days + 1


def _year_back(d: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(d.year - 1, d.month, min(d.day, 28) if (d.month, d.day) == (2, 29) else d.day)


def compstat_windows(as_of: Any, *, complete_weeks: bool = True) -> dict[str, Window]:
    """The 7-day, 28-day and year-to-date windows ending at the CompStat week end on or before ``as_of``."""
    d = pd.Timestamp(as_of).tz_localize(None) if pd.Timestamp(as_of).tzinfo else pd.Timestamp(as_of)
    end = d.normalize()
    if complete_weeks:
        end = end - pd.Timedelta(days=(end.weekday() + 1) % 7)  # back to Sunday (weekday 6)
    shift = pd.Timedelta(days=364)
    out = {}
    for name, length in (("7d", 7), ("28d", 28)):
        s = end - pd.Timedelta(days=length - 1)
        out[name] = Window(name, s, end, s - shift, end - shift)
    jan1 = pd.Timestamp(end.year, 1, 1)
    out["ytd"] = Window("ytd", jan1, end, pd.Timestamp(end.year - 1, 1, 1), _year_back(end))
    return out


def change_test(current: float, last: float, days_now: int, days_then: int) -> tuple[float, float]:
    """Poisson z and exact conditional binomial two-sided p of ``current`` vs ``last``."""
    z, p = change_tests([current], [last], days_now, days_then)
    return float(z[0]), float(p[0])


def change_tests(
    current: npt.ArrayLike, last: npt.ArrayLike, days_now: npt.ArrayLike, days_then: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`change_test` of many rows at once (the days per row, or one pair for all).

    The p-value is ``scipy.stats.binomtest(round(c), round(c + l), p0).pvalue`` (two-sided, the
    likelihood method), computed for every row together: scipy's own search for the other tail,
    run on arrays, so the values are the same as calling it row by row at a fraction of the cost.
    """
    cur = np.asarray(current, dtype=np.float64)
    prev = np.asarray(last, dtype=np.float64)
    dn = np.broadcast_to(np.asarray(days_now, np.float64), cur.shape)
    dt = np.broadcast_to(np.asarray(days_then, np.float64), cur.shape)
    n = np.rint(cur + prev).astype(np.int64)
    k = np.rint(cur).astype(np.int64)
    some = n > 0
    z = np.zeros(cur.shape)
    z[some] = (cur[some] - prev[some]) / np.sqrt(cur[some] + prev[some])
    p0 = dn / (dn + dt)
    pv = np.ones(cur.shape)
    low, high = some & (k < p0 * n), some & (k > p0 * n)
    rows = low | high
    if rows.any():
        binom = stats.binom
        nn, kk, pp, lo_side = n[rows], k[rows], p0[rows], low[rows]
        d = binom.pmf(kk, nn, pp) * (1 + 1e-7)
        # below the mode the other tail lies above it, where the pmf falls (searched negated), and
        # the other way round: one search for both sides
        sign = np.where(lo_side, -1.0, 1.0)
        lo = np.where(lo_side, np.ceil(pp * nn), 0).astype(np.int64)
        hi = np.where(lo_side, nn, np.floor(pp * nn)).astype(np.int64)
        ix = _search(lambda x: sign * binom.pmf(x, nn, pp), sign * d, lo, hi)
        y = nn - ix + (d == binom.pmf(ix, nn, pp)).astype(np.int64)
        pv[rows] = np.where(lo_side, binom.cdf(kk, nn, pp) + binom.sf(nn - y, nn, pp),
                            binom.cdf(ix, nn, pp) + binom.sf(kk - 1, nn, pp))
    return z, np.minimum(1.0, pv)


def _search(
    a: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]], d: npt.NDArray[np.float64],
    lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """scipy's ``_binary_search_for_binom_tst`` on arrays: per row, ``i`` in [lo, hi] with
    ``a(i) <= d < a(i + 1)`` (``a`` ascending on the range)."""
    lo, hi = lo.copy(), hi.copy()
    out = np.zeros(len(lo), np.int64)
    done = np.zeros(len(lo), bool)
    active = lo < hi
    while active.any():
        mid = lo + (hi - lo) // 2
        val = a(mid)
        less, more = active & (val < d), active & (val > d)
        hit = active & ~less & ~more
        out[hit], done[hit] = mid[hit], True
        lo[less] = mid[less] + 1
        hi[more] = mid[more] - 1
        active = active & ~hit & (lo < hi)
    last = np.where(a(lo) <= d, lo, lo - 1)
    return np.where(done, out, last)


@dataclass(frozen=True, eq=False)
class CompStatResult:
    """A CompStat table: rows are offences (per area if asked), columns per window.

    ``table`` has, for each window ``w`` in ``7d``, ``28d``, ``ytd``: ``w_current``,
    ``w_last_year``, ``w_diff``, ``w_pct_change`` (NaN when last year is 0), ``w_z``, ``w_p``.
    """

    table: pd.DataFrame
    windows: dict[str, Window]
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = "compstat"

    def to_frame(self) -> pd.DataFrame:
        """The table with its row keys as columns."""
        return self.table.reset_index()

    def summary(self) -> dict[str, Any]:
        """Windows and the table as records."""
        wins = {
            k: {
                "from": str(w.start.date()),
                "to": str(w.end.date()),
                "last_year_from": str(w.ly_start.date()),
                "last_year_to": str(w.ly_end.date()),
            }
            for k, w in self.windows.items()
        }
        recs = self.to_frame().replace({np.nan: None}).to_dict("records")
        return {"method": self.method, "windows": wins, "rows": recs, "parameters": self.parameters}

    def to_text(self) -> str:
        """A compact printable table."""
        show = self.table.copy()
        for w in WINDOWS:
            show[f"{w}_pct_change"] = show[f"{w}_pct_change"].map(lambda v: "n/a" if pd.isna(v) else f"{v:+.0f}%")
            show[f"{w}_p"] = show[f"{w}_p"].map(lambda v: f"{v:.3f}")
            show = show.drop(columns=[f"{w}_z"])
        return show.to_string()


def compstat(
    counts: pd.DataFrame,
    *,
    as_of: Any = None,
    by: Sequence[str] = ("category",),
    complete_weeks: bool = True,
) -> CompStatResult:
    """CompStat table from ``store.counts(by=["day", *by, "time_precision"])``.

    Parameters
    ----------
    counts : DataFrame
        Daily counts with the ``by`` columns (offence category, optionally an area).
    as_of : date-like, optional
        Report date; default the last day in ``counts``.
    by : sequence of str
        Row keys, e.g. ``("category",)`` or ``("district", "category")``.
    complete_weeks : bool
        End the report on the last complete Monday-Sunday week.
    """
    need = {"day", "count", *by}
    if not need <= set(counts.columns):
        raise InputError(f"CompStat needs columns {sorted(need)}")
    c, dropped = precise_enough(counts, "day")
    day = pd.to_datetime(c["day"])
    if getattr(day.dt, "tz", None) is not None:
        day = day.dt.tz_convert("UTC").dt.tz_localize(None)
    day = day.dt.normalize()
    if as_of is None:
        if day.empty:
            raise InputError("no day-precise incidents for a CompStat table")
        as_of = day.max()
    wins = compstat_windows(as_of, complete_weeks=complete_weeks)
    keys = list(by)
    cols: dict[str, pd.Series] = {}
    for name, w in wins.items():
        now = (day >= w.start) & (day <= w.end)
        then = (day >= w.ly_start) & (day <= w.ly_end)
        cols[f"{name}_current"] = c["count"].where(now, 0).groupby([c[k] for k in keys]).sum()
        cols[f"{name}_last_year"] = c["count"].where(then, 0).groupby([c[k] for k in keys]).sum()
    table = pd.DataFrame(cols).fillna(0.0)
    if len(keys) == 1:
        table.loc["Total"] = table.sum()
    else:
        totals = table.groupby(level=list(range(len(keys) - 1))).sum()
        outer = [i if isinstance(i, tuple) else (i,) for i in totals.index]
        totals.index = pd.MultiIndex.from_tuples([(*i, "Total") for i in outer], names=table.index.names)
        table = pd.concat([table, totals]).sort_index(
            key=lambda ix: ix.map(lambda v: (v == "Total", str(v))) if ix.name == keys[-1] else ix
        )
    for name in wins:
        cur, last = table[f"{name}_current"], table[f"{name}_last_year"]
        table[f"{name}_diff"] = cur - last
        table[f"{name}_pct_change"] = np.where(last > 0, 100.0 * (cur - last) / last.where(last > 0, 1), np.nan)
    # every window's exact tests in one pass over the rows
    names = list(wins)
    z, p = change_tests(np.concatenate([table[f"{key}_current"].to_numpy() for key in names]),
                        np.concatenate([table[f"{key}_last_year"].to_numpy() for key in names]),
                        np.repeat([wins[key].days[0] for key in names], len(table)),
                        np.repeat([wins[key].days[1] for key in names], len(table)))
    for i, key in enumerate(names):
        part = slice(i * len(table), (i + 1) * len(table))
        table[f"{key}_z"], table[f"{key}_p"] = z[part], p[part]
    order = [f"{w}_{k}" for w in WINDOWS for k in ("current", "last_year", "diff", "pct_change", "z", "p")]
    table = table[order]
    params = {
        "as_of": str(pd.Timestamp(as_of).date()),
        "week": "Monday-Sunday",
        "complete_weeks": complete_weeks,
        "last_year_shift": "364 days (7d, 28d); same calendar dates (YTD)",
        "test": "exact conditional binomial (two Poisson counts), two-sided",
        "excluded_imprecise": dropped,
    }
    return CompStatResult(table, wins, params)
